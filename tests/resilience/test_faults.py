"""Faults on the whole local twin: nothing lost, nothing duplicated (issue 6)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from rampart.local.stack import Stack, StackConfig
from tests.resilience.conftest import ROOT, db_query, drain_dlq, queue_depth, stored_ids, wait_until

pytestmark = pytest.mark.e2e


def _events(source: str, n: int) -> list[dict[str, Any]]:
    now = dt.datetime.now(dt.UTC)
    return [
        {
            "event_id": str(uuid.uuid4()),
            "source": source,
            "type": "fault.check",
            "occurred_at": (now - dt.timedelta(seconds=i)).isoformat(),
            "payload": {"i": i},
        }
        for i in range(n)
    ]


def _get(stack: Stack, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=10)
    try:
        conn.request("GET", "/v1" + path, headers={"x-api-key": stack.api_key.value})
        resp = conn.getresponse()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read()
    finally:
        conn.close()


def test_postgres_outage_mid_ingestion_loses_and_duplicates_nothing(stack: Stack) -> None:
    assert stack.postgres is not None and stack.resources is not None
    source = f"outage-{uuid.uuid4().hex[:8]}"
    events = _events(source, 5000)
    published: list[Any] = []
    publisher = threading.Thread(target=lambda: published.append(stack.publish(json.dumps(e) for e in events)))
    publisher.start()
    wait_until(lambda: len(stored_ids(stack, source)) >= 500, timeout=120)

    stack.postgres.pause()
    outage_started = time.monotonic()
    try:
        # While PostgreSQL is down the API answers 503 with Retry-After and the error envelope, never a 500.
        for path in ("/health", "/events?limit=5", "/stats"):
            status, headers, body = _get(stack, path)
            assert status == 503, (path, status, body[:200])
            assert headers["retry-after"] == "5"
            assert json.loads(body)["error"]["code"] == "unavailable"
        time.sleep(max(0.0, 6 - (time.monotonic() - outage_started)))
        assert stack.check() == [], "a function process died during the outage"
    finally:
        stack.postgres.resume()

    publisher.join(300)
    assert not publisher.is_alive()
    assert not published[0].failed, "publishing must not fail while only the database is down"
    # Recovery without a restart: the same processes reconnect by themselves.
    wait_until(lambda: _get(stack, "/health")[0] == 200, timeout=30)

    def settled() -> bool:
        return queue_depth(stack, stack.resources.queue_url) == 0  # type: ignore[union-attr]

    wait_until(settled, timeout=240, interval=0.5)
    stored = stored_ids(stack, source)
    dead = [json.loads(m["Body"])["event_id"] for m in drain_dlq(stack)]
    assert len(stored) + len(dead) == 5000
    assert len(set(stored)) == len(stored)
    assert set(stored).isdisjoint(dead)
    assert set(stored) | set(dead) == {e["event_id"] for e in events}
    assert stack.check() == [], "the event source mapping runner died"


def test_poison_mix_ends_exactly_in_the_dlq(stack: Stack) -> None:
    assert stack.resources is not None
    source = f"poison-{uuid.uuid4().hex[:8]}"
    good = _events(source, 950)
    far_future = (dt.datetime.now(dt.UTC) + dt.timedelta(days=365)).isoformat()
    poison: list[str] = []
    for i in range(50):
        kind = i % 4
        if kind == 0:
            poison.append('{"event_id": "not-even-json"')
        elif kind == 1:
            poison.append(json.dumps(_events(source, 1)[0] | {"payload": {"blob": "x" * 40_000}}))
        elif kind == 2:
            poison.append(json.dumps(_events(source, 1)[0] | {"payload": {"text": "nul\u0000inside"}}))
        else:
            poison.append(json.dumps(_events(source, 1)[0] | {"occurred_at": far_future}))
    bodies = [json.dumps(e) for e in good] + poison
    # Interleave so that poison shares batches with good records.
    mixed = [b for pair in zip(bodies[:950:19], poison, strict=True) for b in pair] + [
        b for i, b in enumerate(bodies[:950]) if i % 19
    ]
    assert len(mixed) == 1000
    drain_dlq(stack)
    stack.publish(mixed)
    wait_until(lambda: len(stored_ids(stack, source)) >= 950, timeout=120)
    wait_until(lambda: queue_depth(stack, stack.resources.queue_url) == 0, timeout=60)  # type: ignore[union-attr]
    dead = drain_dlq(stack)
    assert sorted(m["Body"] for m in dead) == sorted(poison)
    assert all(m["MessageAttributes"]["rampart_failure_reason"]["StringValue"] for m in dead)
    assert sorted(stored_ids(stack, source)) == sorted(e["event_id"] for e in good)


def test_a_crash_after_storing_redelivers_and_stores_once(tmp_path: Path) -> None:
    marker = tmp_path / "crashes"
    config = StackConfig(
        name="rampart-crash",
        visibility_timeout_s=3,
        max_receive_count=10,
        batch_size=10,
        ingest_concurrency=1,
        ingest_handler="tests.resilience.faults.crash_after_store",
        ingest_env={"PYTHONPATH": str(ROOT), "RAMPART_TEST_CRASH_MARKER": str(marker)},
    )
    with Stack(config) as local:
        assert local.resources is not None
        source = f"crash-{uuid.uuid4().hex[:8]}"
        events = _events(source, 40)
        local.publish(json.dumps(e) for e in events)
        wait_until(marker.exists, timeout=30)
        # The crashed batch was stored but not deleted: it must come back after the visibility timeout.
        wait_until(lambda: queue_depth(local, local.resources.queue_url) == 0, timeout=60)  # type: ignore[union-attr]
        rows = db_query(
            local, "SELECT count(*), count(DISTINCT event_id) FROM rampart.events WHERE source = %s", (source,)
        )
        assert rows == [(40, 40)]
        assert queue_depth(local, local.resources.dlq_url) == 0
        assert marker.read_text().strip() != ""
