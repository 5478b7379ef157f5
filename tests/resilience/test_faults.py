"""Faults on the whole local twin: nothing lost, nothing duplicated (issue 6)."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import threading
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


def _batches_sent_back(stack: Stack) -> int:
    """How many times an ingest function returned a whole batch to the queue because PostgreSQL was away."""
    return sum(
        path.read_text(encoding="utf-8", errors="replace").count("cannot store the batch")
        for path in Path(stack.logs_dir).glob("ingest-*.log")
    )


def test_postgres_outage_mid_ingestion_loses_and_duplicates_nothing(stack: Stack) -> None:
    """Every event is valid, so the only right ending is: all 5,000 stored exactly once, none dead-lettered.

    A handler that dead-lettered the records it could not store, or stored some twice, or dropped some, fails.
    """
    assert stack.postgres is not None and stack.resources is not None
    drain_dlq(stack)
    source = f"outage-{uuid.uuid4().hex[:8]}"
    events = _events(source, 5000)
    published: list[Any] = []
    publisher = threading.Thread(target=lambda: published.append(stack.publish(json.dumps(e) for e in events)))
    publisher.start()
    wait_until(lambda: len(stored_ids(stack, source)) >= 500, timeout=120)

    sent_back_before = _batches_sent_back(stack)
    stack.postgres.pause()
    try:
        # While PostgreSQL is down the API answers 503 with Retry-After and the error envelope, never a 500.
        for path in ("/health", "/events?limit=5", "/stats"):
            status, headers, body = _get(stack, path)
            assert status == 503, (path, status, body[:200])
            assert headers["retry-after"] == "5"
            assert json.loads(body)["error"]["code"] == "unavailable"
        # The outage must really hit ingestion (else this test proves nothing): wait until a batch went back.
        wait_until(lambda: _batches_sent_back(stack) > sent_back_before, timeout=120, interval=0.2)
        assert stack.check() == [], "a function process died during the outage"
    finally:
        stack.postgres.resume()

    publisher.join(300)
    assert not publisher.is_alive()
    assert not published[0].failed, "publishing must not fail while only the database is down"
    assert published[0].sent == len(events)
    # Recovery without a restart: the same processes reconnect by themselves.
    wait_until(lambda: _get(stack, "/health")[0] == 200, timeout=60)
    wait_until(lambda: queue_depth(stack, stack.resources.queue_url) == 0, timeout=300, interval=0.5)  # type: ignore[union-attr]

    published_ids = {e["event_id"] for e in events}
    rows = db_query(stack, "SELECT count(*), count(DISTINCT event_id) FROM rampart.events WHERE source = %s", (source,))
    assert rows == [(5000, 5000)], f"stored (rows, distinct ids) = {rows[0]}, expected every event once"
    assert set(stored_ids(stack, source)) == published_ids, "the stored ids are not the published ones"
    dead = drain_dlq(stack)
    assert [m["Body"][:200] for m in dead] == [], "valid events were dead-lettered during the outage"
    assert queue_depth(stack, stack.resources.dlq_url) == 0
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
        # This tree's src first: the function must run the code under test, not whatever `rampart` is installed
        # (make prove-controls runs this test in a mutated copy of the tree).
        ingest_env={
            "PYTHONPATH": os.pathsep.join([str(ROOT / "src"), str(ROOT)]),
            "RAMPART_TEST_CRASH_MARKER": str(marker),
        },
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
        assert set(stored_ids(local, source)) == {e["event_id"] for e in events}
        # The redelivered batch was recognised as already stored, not refused: nothing dead-lettered, no record
        # rejected (a non-idempotent insert would reject every redelivered record as a duplicate key).
        assert drain_dlq(local) == []
        ingest_log = "".join(p.read_text(encoding="utf-8") for p in Path(local.logs_dir).glob("ingest-*.log"))
        assert "record rejected" not in ingest_log
        assert '"duplicates"' in ingest_log and marker.read_text().strip() != ""
