"""Batch accounting without a database: every record ends stored, duplicate, dead-lettered or retried."""

import dataclasses
import json
from collections.abc import Sequence
from typing import Any

import psycopg2
import pytest

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


# -- found by mutation testing (docs/mutation.md): each test below failed against a surviving mutant -------------
class ScriptedSink(MemorySink):
    """A MemorySink whose n-th call raises the n-th scripted exception (None: behave normally)."""

    def __init__(self, script: list[Exception | None]) -> None:
        super().__init__()
        self.script = script

    def insert_events(self, rows: Sequence[StorageRow]) -> int:
        step = self.script[self.calls] if self.calls < len(self.script) else None
        if step is not None:
            self.calls += 1
            raise step
        return super().insert_events(rows)


def test_a_rejection_is_an_immutable_value() -> None:
    rejected = Rejected("m1", "body", "reason")
    with pytest.raises(dataclasses.FrozenInstanceError):
        rejected.reason = "something else"  # type: ignore[misc]
    assert len({rejected, Rejected("m1", "body", "reason")}) == 1


def test_a_batch_of_poison_only_counts_nothing_stored_and_no_duplicates() -> None:
    result = process_batch([sqs_record("not json"), sqs_record("{}")], MemorySink(), MemoryDLQ())
    assert (result.stored, result.duplicates) == (0, 0)


def test_duplicates_are_the_valid_records_the_statement_did_not_insert() -> None:
    sink = MemorySink()
    old = [sqs_record(json.dumps(make_event())) for _ in range(3)]
    process_batch(old, sink, MemoryDLQ())
    new = [sqs_record(json.dumps(make_event())) for _ in range(2)]
    result = process_batch([*old, *new], sink, MemoryDLQ())
    assert (result.stored, result.duplicates) == (2, 3)


def test_one_record_at_a_time_still_counts_stored_and_duplicates() -> None:
    # PostgreSQL rejects one value, so the batch is stored record by record: two redeliveries, one new event.
    sink = MemorySink(reject_source="evil")
    old = [sqs_record(json.dumps(make_event())) for _ in range(2)]
    process_batch(old, sink, MemoryDLQ())
    new, bad = sqs_record(json.dumps(make_event())), sqs_record(json.dumps(make_event(source="evil")))
    result = process_batch([old[0], old[1], bad, new], sink, MemoryDLQ())
    assert (result.stored, result.duplicates) == (1, 2)
    assert [r.message_id for r in result.rejected] == [bad["messageId"]]


def test_the_database_going_away_mid_fallback_retries_every_valid_record_and_dead_letters_none_of_them() -> None:
    # The batch statement hits a bad value, the first single insert is rejected too, then the database goes away:
    # the verdict on that record came from a database that is now gone, so it is retried like the rest.
    sink = ScriptedSink([psycopg2.DataError("bad value"), psycopg2.DataError("bad value"), DatabaseUnavailableError()])
    dlq = MemoryDLQ()
    valid = [sqs_record(json.dumps(make_event())) for _ in range(3)]
    poison = sqs_record("not json")
    result = process_batch([*valid, poison], sink, dlq)
    assert [r.message_id for r in dlq.sent] == [poison["messageId"]]
    assert sorted(result.retry) == sorted(r["messageId"] for r in valid)
    assert (result.stored, result.duplicates) == (0, 0)


def test_a_truncated_sns_envelope_is_dead_lettered_as_invalid_json_and_the_batch_goes_on() -> None:
    dlq, good = MemoryDLQ(), sqs_record(json.dumps(make_event()))
    broken = sqs_record(sns_envelope(json.dumps(make_event()))[:-5])
    result = process_batch([broken, good], MemorySink(), dlq)
    assert result.stored == 1
    assert [r.message_id for r in dlq.sent] == [broken["messageId"]]
    assert "not valid JSON" in dlq.sent[0].reason


@pytest.mark.parametrize("kind", ["SubscriptionConfirmation", "UnsubscribeConfirmation", "Alert", "notification"])
def test_only_an_sns_notification_is_unwrapped(kind: str) -> None:
    # Anything else that looks like an envelope is the record's own body: an event with extra fields, refused.
    envelope = json.loads(sns_envelope(json.dumps(make_event())))
    envelope["Type"] = kind
    dlq = MemoryDLQ()
    result = process_batch([sqs_record(json.dumps(envelope))], MemorySink(), dlq)
    assert result.stored == 0
    assert "schema violation" in dlq.sent[0].reason


def test_an_envelope_without_a_topic_arn_is_not_unwrapped() -> None:
    envelope = json.loads(sns_envelope(json.dumps(make_event())))
    del envelope["TopicArn"]
    dlq = MemoryDLQ()
    result = process_batch([sqs_record(json.dumps(envelope))], MemorySink(), dlq)
    assert result.stored == 0
    assert "schema violation" in dlq.sent[0].reason


def test_a_body_that_does_not_start_with_a_brace_is_never_unwrapped() -> None:
    dlq = MemoryDLQ()
    result = process_batch([sqs_record(" " + sns_envelope(json.dumps(make_event())))], MemorySink(), dlq)
    assert result.stored == 0
    assert "schema violation" in dlq.sent[0].reason
