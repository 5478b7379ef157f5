"""The real ingest handler against the real PostgreSQL (TLS, verify-full, the ingest role)."""

from __future__ import annotations

import datetime as dt
import json
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import psycopg2
import pytest
from moto import mock_aws

from rampart.local.postgres import EmbeddedPostgres
from tests.conftest import make_event
from tests.e2e.conftest import wait_until
from tests.helpers import FakeContext, sns_envelope, sqs_event, sqs_record
from tests.integration.conftest import Pipeline


def _count(admin: Any) -> int:
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM rampart.events")
        return int(cur.fetchone()[0])


@pytest.fixture
def dlq(monkeypatch: pytest.MonkeyPatch, ingest: Any) -> Iterator[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-1")
        url = sqs.create_queue(QueueName="rampart-test-events-dlq")["QueueUrl"]
        monkeypatch.setenv("RAMPART_DLQ_URL", url)
        yield sqs, url


def _dead_letters(sqs: Any, url: str) -> list[dict[str, Any]]:
    out = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageAttributeNames=["All"])
    return list(out.get("Messages", []))


def test_batch_is_stored_and_redelivery_writes_nothing_twice(ingest: Any, admin: Any) -> None:
    bodies = [json.dumps(make_event()) for _ in range(25)]
    event = sqs_event(*bodies)
    assert ingest.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    assert _count(admin) == 25
    assert ingest.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    assert _count(admin) == 25


def test_sns_envelope_and_raw_delivery_both_store(ingest: Any, admin: Any) -> None:
    raw, wrapped = json.dumps(make_event()), sns_envelope(json.dumps(make_event()))
    assert ingest.lambda_handler(sqs_event(raw, wrapped), FakeContext()) == {"batchItemFailures": []}
    assert _count(admin) == 2


def test_stored_values_round_trip(ingest: Any, admin: Any) -> None:
    ev = make_event(payload={"nested": {"list": [1, 2.5, None, True, "ünïcødé ✓"]}})
    ingest.lambda_handler(sqs_event(json.dumps(ev)), FakeContext())
    with admin.cursor() as cur:
        cur.execute("SELECT source, type, payload, received_at IS NOT NULL FROM rampart.events")
        assert cur.fetchone() == (ev["source"], ev["type"], ev["payload"], True)


def test_poison_records_go_to_the_dlq_with_their_reason(ingest: Any, admin: Any, dlq: Any) -> None:
    sqs, url = dlq
    good = [json.dumps(make_event()) for _ in range(5)]
    poison = [
        "not json",
        json.dumps(make_event(payload={"k": "nul\u0000byte"})),
        json.dumps(make_event(occurred_at="2999-01-01T00:00:00Z")),
        json.dumps(make_event(payload={"blob": "x" * 40_000})),
    ]
    event = sqs_event(*good[:2], *poison, *good[2:])
    assert ingest.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    assert _count(admin) == 5
    dead = _dead_letters(sqs, url)
    assert sorted(m["Body"] for m in dead) == sorted(poison)
    reasons = {m["Body"]: m["MessageAttributes"]["rampart_failure_reason"]["StringValue"] for m in dead}
    assert "not valid JSON" in reasons["not json"]
    assert "NUL" in reasons[poison[1]]
    assert "future" in reasons[poison[2]]
    assert "bytes" in reasons[poison[3]]


def test_without_dlq_poison_is_reported_failed_for_redrive(ingest: Any, admin: Any) -> None:
    event = sqs_event(json.dumps(make_event()), "{broken")
    result = ingest.lambda_handler(event, FakeContext())
    assert result == {"batchItemFailures": [{"itemIdentifier": event["Records"][1]["messageId"]}]}
    assert _count(admin) == 1


def test_database_down_fails_the_whole_batch_then_recovers(ingest: Any, pg: EmbeddedPostgres) -> None:
    first = sqs_event(json.dumps(make_event()))
    ingest.lambda_handler(first, FakeContext())  # warm: a connection is open and reused
    event = sqs_event(*(json.dumps(make_event()) for _ in range(10)))
    pg.pause()
    try:
        result = ingest.lambda_handler(event, FakeContext())
    finally:
        pg.resume()
    assert sorted(f["itemIdentifier"] for f in result["batchItemFailures"]) == sorted(
        r["messageId"] for r in event["Records"]
    )
    # The same warm handler reconnects by itself; the retried batch is stored exactly once.
    assert ingest.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    admin = psycopg2.connect(pg.dsn("rampart_admin"))
    try:
        assert _count(admin) == 11
    finally:
        admin.close()


def test_database_dropping_the_connection_mid_batch_reconnects_once(ingest: Any, admin: Any) -> None:
    ingest.lambda_handler(sqs_event(json.dumps(make_event())), FakeContext())
    with admin.cursor() as cur:
        cur.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'rampart_ingest'")
    event = sqs_event(*(json.dumps(make_event()) for _ in range(3)))
    assert ingest.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    assert _count(admin) == 4


def test_concurrent_redeliveries_store_each_event_once(ingest: Any, admin: Any) -> None:
    bodies = [json.dumps(make_event()) for _ in range(200)]
    results: list[dict[str, Any]] = []

    def deliver() -> None:
        results.append(ingest.lambda_handler(sqs_event(*bodies), FakeContext()))

    threads = [threading.Thread(target=deliver) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert results == [{"batchItemFailures": []}] * 4
    assert _count(admin) == 200


def test_misconfiguration_retries_everything_and_never_raises(
    ingest: Any, monkeypatch: pytest.MonkeyPatch, pg: EmbeddedPostgres
) -> None:
    monkeypatch.setenv("RAMPART_DB_AUTH", "nonsense")
    event = {"Records": [sqs_record(json.dumps(make_event())), sqs_record("x")]}
    result = ingest.lambda_handler(event, FakeContext())
    assert len(result["batchItemFailures"]) == 2


def test_logs_carry_no_password(
    ingest: Any, pg: EmbeddedPostgres, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    ingest.lambda_handler(sqs_event(json.dumps(make_event()), "poison"), FakeContext())
    logged = " ".join(str(vars(r)) for r in caplog.records) + capsys.readouterr().out
    assert "batch processed" in logged
    assert "record rejected" in logged
    assert pg.passwords["rampart_ingest"] not in logged


def test_an_epoch_like_occurred_at_is_dead_lettered_and_reading_stays_healthy(pipeline: Pipeline, admin: Any) -> None:
    """The issue's report: "1764000229" passed validation as Unix seconds and PostgreSQL stored it in year 176400,
    after which every page that included it answered 500. One parser now decides, and it refuses the text."""
    epoch_like = json.dumps(make_event(occurred_at="1764000229"))
    good = json.dumps(make_event())
    assert pipeline.publish(epoch_like, good)["response"] == {"batchItemFailures": []}
    assert _count(admin) == 1
    assert list(pipeline.dlq.reasons()) == [epoch_like]
    assert "occurred_at" in pipeline.dlq.reasons()[epoch_like]
    status, body = pipeline.get("/v1/events")
    assert status == 200 and len(json.loads(body)["items"]) == 1


def test_the_database_stores_the_canonical_values(pipeline: Pipeline, admin: Any) -> None:
    event_id = "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"
    body = json.dumps(make_event(event_id=event_id, occurred_at="2026-01-01t01:30:00.1234567+01:30"))
    body = body.replace('"amount": 42', '"amount": 12345678901234567890.123456789012345678901234567890')
    assert pipeline.publish(body)["response"] == {"batchItemFailures": []}
    with admin.cursor() as cur:
        cur.execute("SELECT event_id::text, occurred_at, payload->>'amount' FROM rampart.events")
        assert cur.fetchone() == (
            event_id.lower(),
            dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=dt.UTC),
            "12345678901234567890.123456789012345678901234567890",
        )
    # A redelivery spelled in lowercase is the same event.
    assert pipeline.publish(body.replace(event_id, event_id.lower()))["response"] == {"batchItemFailures": []}
    assert _count(admin) == 1
    status, text = pipeline.get(f"/v1/events/{event_id.lower()}")
    assert status == 200
    item = json.loads(text, parse_float=Decimal)
    assert item["payload"]["amount"] == Decimal("12345678901234567890.123456789012345678901234567890")
    assert item["occurred_at"] == "2026-01-01T00:00:00.123456+00:00"


def _deadlocks(admin: Any) -> int:
    with admin.cursor() as cur:
        cur.execute("SELECT deadlocks FROM pg_stat_database WHERE datname = current_database()")
        return int(cur.fetchone()[0])


def _lock_waiters(admin: Any) -> int:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'rampart_ingest' AND wait_event_type = 'Lock'"
        )
        return int(cur.fetchone()[0])


def test_overlapping_batches_in_opposite_orders_never_deadlock(ingest: Any, admin: Any, pg: EmbeddedPostgres) -> None:
    """Rows go in sorted by event_id, so concurrent batches that share events take their locks in one order.

    The interleaving that deadlocks arrival-order inserts is forced, not hoped for: another transaction holds the
    middle event uncommitted until both batches wait for it. In arrival order the forward batch then holds the
    lower half and the reversed batch the upper half, each about to need the other's: a deadlock, every time."""
    events = sorted((make_event() for _ in range(200)), key=lambda e: e["event_id"])
    bodies = [json.dumps(e) for e in events]
    middle = events[100]
    blocker = psycopg2.connect(pg.dsn("rampart_admin"))
    deadlocks_before = _deadlocks(admin)
    results: list[dict[str, Any]] = []

    def deliver(order: list[str]) -> None:
        results.append(ingest.lambda_handler(sqs_event(*order), FakeContext()))

    threads = [threading.Thread(target=deliver, args=(order,)) for order in (bodies, bodies[::-1])]
    try:
        with blocker.cursor() as cur:
            cur.execute(
                "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload) VALUES (%s,%s,%s,%s,%s)",
                (middle["event_id"], "blocker", "blocker", middle["occurred_at"], "{}"),
            )
        for t in threads:
            t.start()
        assert wait_until(lambda: _lock_waiters(admin) >= 2, timeout=60), "the batches never queued on the lock"
    finally:
        blocker.rollback()
        blocker.close()
        for t in threads:
            t.join(60)
    assert results == [{"batchItemFailures": []}] * 2
    assert _deadlocks(admin) == deadlocks_before
    with admin.cursor() as cur:
        cur.execute("SELECT event_id::text, source FROM rampart.events")
        stored = cur.fetchall()
    assert sorted(stored) == sorted((e["event_id"], "billing") for e in events)  # each exactly once


def test_one_id_twice_in_a_batch_keeps_the_first_delivery(ingest: Any, admin: Any) -> None:
    # Rows are sorted by event_id before the insert (lock order); the sort is stable, so of two records with the
    # same id the first one delivered is stored, as it would be had they come in two batches.
    first = make_event(payload={"n": "b"})
    second = {**first, "payload": {"n": "a"}}
    response = ingest.lambda_handler(sqs_event(json.dumps(first), json.dumps(second)), FakeContext())
    assert response == {"batchItemFailures": []}
    with admin.cursor() as cur:
        cur.execute("SELECT payload FROM rampart.events")
        assert cur.fetchall() == [({"n": "b"},)]
