"""Batch accounting without a database: every record ends stored, duplicate, dead-lettered or retried."""

import json
from collections.abc import Sequence
from typing import Any

import psycopg2

from rampart.db.connection import DatabaseUnavailableError
from rampart.events import StorageRow
from rampart.ingest.batch import Rejected, process_batch, record_body
from tests.conftest import make_event
from tests.helpers import sns_envelope, sqs_record


class MemorySink:
    """Stores what the real statement would: the five canonical values of each row."""

    def __init__(self, fail: Exception | None = None, reject_source: str | None = None) -> None:
        self.rows: dict[str, list[Any]] = {}
        self.fail = fail
        self.reject_source = reject_source
        self.calls = 0

    def insert_events(self, rows: Sequence[StorageRow]) -> int:
        self.calls += 1
        self.received = [json.loads(row) for _, row in rows]
        if self.fail:
            raise self.fail
        if self.reject_source and any(r[1] == self.reject_source for r in self.received):
            raise psycopg2.DataError("value rejected")
        before = len(self.rows)
        for event_id, source, type_, occurred_at, payload in self.received:
            self.rows.setdefault(event_id, [event_id, source, type_, occurred_at, payload])
        return len(self.rows) - before


class MemoryDLQ:
    def __init__(self, broken: bool = False) -> None:
        self.sent: list[Rejected] = []
        self.broken = broken

    def send(self, rejected: Sequence[Rejected]) -> set[str]:
        if self.broken:
            raise ConnectionError("dlq down")
        self.sent.extend(rejected)
        return {r.message_id for r in rejected}


def test_envelope_and_raw_bodies_are_both_understood() -> None:
    raw = json.dumps(make_event())
    assert record_body(sqs_record(raw)) == raw
    assert record_body(sqs_record(sns_envelope(raw))) == raw


def test_valid_batch_is_stored_in_one_statement() -> None:
    sink, dlq = MemorySink(), MemoryDLQ()
    records = [sqs_record(json.dumps(make_event())) for _ in range(10)]
    result = process_batch(records, sink, dlq)
    assert (result.stored, result.duplicates, result.retry, sink.calls) == (10, 0, [], 1)


def test_the_store_receives_the_validated_canonical_values_not_the_producers_text() -> None:
    sink = MemorySink()
    event_id = "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"
    body = json.dumps(make_event(event_id=event_id, occurred_at="2026-01-01t10:00:00.1234567+02:00"))
    process_batch([sqs_record(body)], sink, MemoryDLQ())
    [(stored_id, source, type_, occurred_at, payload)] = sink.received
    assert stored_id == event_id.lower()
    assert (source, type_) == ("billing", "invoice.paid")
    # The UTC instant, floored to the microsecond, in one fixed format PostgreSQL cannot read two ways.
    assert occurred_at == "2026-01-01T08:00:00.123456+00:00"
    assert payload == json.loads(body)["payload"]


def test_redelivery_counts_duplicates() -> None:
    sink = MemorySink()
    records = [sqs_record(json.dumps(make_event())) for _ in range(3)]
    process_batch(records, sink, MemoryDLQ())
    again = process_batch(records, sink, MemoryDLQ())
    assert (again.stored, again.duplicates) == (0, 3)


def test_same_event_twice_in_one_batch_is_stored_once() -> None:
    body = json.dumps(make_event())
    result = process_batch([sqs_record(body), sqs_record(body)], MemorySink(), MemoryDLQ())
    assert (result.stored, result.duplicates) == (1, 1)


def test_poison_goes_to_dlq_and_does_not_hold_back_the_rest() -> None:
    sink, dlq = MemorySink(), MemoryDLQ()
    good = [sqs_record(json.dumps(make_event())) for _ in range(4)]
    bad = sqs_record("not json")
    result = process_batch([*good[:2], bad, *good[2:]], sink, dlq)
    assert result.stored == 4
    assert [r.message_id for r in dlq.sent] == [bad["messageId"]]
    assert "not valid JSON" in dlq.sent[0].reason
    assert result.retry == []


def test_when_the_dlq_is_unreachable_poison_is_retried_for_redrive() -> None:
    bad = sqs_record("{}")
    result = process_batch([bad], MemorySink(), MemoryDLQ(broken=True))
    assert result.retry == [bad["messageId"]]


def test_without_a_dlq_poison_is_left_to_the_redrive_policy() -> None:
    bad = sqs_record("{}")
    assert process_batch([bad], MemorySink(), None).retry == [bad["messageId"]]


def test_database_down_retries_every_valid_record() -> None:
    records = [sqs_record(json.dumps(make_event())) for _ in range(5)]
    result = process_batch(records, MemorySink(fail=DatabaseUnavailableError("down")), MemoryDLQ())
    assert sorted(result.retry) == sorted(r["messageId"] for r in records)
    assert result.stored == 0


def test_operational_error_from_the_driver_is_treated_as_unavailable() -> None:
    records = [sqs_record(json.dumps(make_event()))]
    result = process_batch(records, MemorySink(fail=psycopg2.OperationalError("gone")), MemoryDLQ())
    assert result.retry == [records[0]["messageId"]]


def test_a_value_postgres_rejects_is_isolated_and_dead_lettered() -> None:
    sink, dlq = MemorySink(reject_source="evil"), MemoryDLQ()
    good = [sqs_record(json.dumps(make_event())) for _ in range(3)]
    bad = sqs_record(json.dumps(make_event(source="evil")))
    result = process_batch([good[0], bad, *good[1:]], sink, dlq)
    assert result.stored == 3
    assert [r.message_id for r in dlq.sent] == [bad["messageId"]]
    assert "rejected by PostgreSQL" in dlq.sent[0].reason


def test_malformed_sqs_record_is_dead_lettered() -> None:
    dlq = MemoryDLQ()
    result = process_batch([{"messageId": "m1"}], MemorySink(), dlq)
    assert [r.message_id for r in dlq.sent] == ["m1"]
    assert result.retry == []


def test_a_system_fault_from_the_database_retries_and_never_dead_letters() -> None:
    dlq = MemoryDLQ()
    records = [sqs_record(json.dumps(make_event())) for _ in range(3)]
    fault = psycopg2.errors.InsufficientPrivilege("permission denied for table events")
    result = process_batch(records, MemorySink(fail=fault), dlq)
    assert sorted(result.retry) == sorted(r["messageId"] for r in records)
    assert dlq.sent == []
