"""The ingest handler's DLQ sender: per-entry outcomes kept across chunks, chunks bounded by count and bytes,
failures logged with their codes (never bodies), and no second DLQ copy when a half-failed batch is redelivered."""

from __future__ import annotations

import collections
import json
from typing import Any

from botocore.exceptions import ClientError

from rampart.ingest.batch import Rejected, process_batch
from rampart.ingest.dead_letters import MAX_BATCH_BYTES, TOO_LARGE, SqsDeadLetters, entry_size
from tests.conftest import make_event
from tests.helpers import FakeSqs, sqs_record
from tests.unit.test_batch import MemorySink


class LogLines:
    def __init__(self) -> None:
        self.lines: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, message: str, **fields: Any) -> None:
        self.lines.append((message, fields))

    def codes(self) -> dict[str, str]:
        return {f["message_id"]: f["error_code"] for _, f in self.lines if "error_code" in f}


def _rejected(n: int, size: int = 10, prefix: str = "m") -> list[Rejected]:
    return [Rejected(f"{prefix}-{i}", f"{i:05d}" + "x" * (size - 5), "schema violation") for i in range(n)]


def test_chunks_hold_at_most_ten_entries() -> None:
    sqs = FakeSqs()
    sent = SqsDeadLetters("q", sqs).send(_rejected(25))
    assert [len(c) for c in sqs.calls] == [10, 10, 5]
    assert sent == {f"m-{i}" for i in range(25)}


def test_chunks_hold_at_most_256_kib_in_total() -> None:
    sqs = FakeSqs()
    sent = SqsDeadLetters("q", sqs).send(_rejected(7, size=100 * 1024))
    assert [len(c) for c in sqs.calls] == [2, 2, 2, 1]
    assert all(sum(entry_size(e) for e in chunk) <= MAX_BATCH_BYTES for chunk in sqs.calls)
    assert len(sent) == 7


def test_a_message_that_fits_no_batch_is_left_to_the_redrive_policy() -> None:
    sqs, log = FakeSqs(), LogLines()
    records = [*_rejected(2), Rejected("huge", "x" * MAX_BATCH_BYTES, "record is too large")]
    sent = SqsDeadLetters("q", sqs, log=log).send(records)
    assert sent == {"m-0", "m-1"}
    assert log.codes() == {"huge": TOO_LARGE}


def test_a_failed_chunk_costs_only_its_entries_and_is_logged_with_its_code() -> None:
    sqs, log = FakeSqs(fail_calls={2}), LogLines()
    records = _rejected(25)
    sent = SqsDeadLetters("q", sqs, log=log).send(records)
    assert sent == {f"m-{i}" for i in [*range(10), *range(20, 25)]}  # chunks 1 and 3 went, chunk 2 did not
    assert log.codes() == {f"m-{i}": "ConnectionError" for i in range(10, 20)}
    logged = json.dumps(log.lines)
    assert not any(r.body in logged for r in records)  # ids and codes, never bodies


def test_entries_sqs_refuses_are_logged_with_sqs_error_code() -> None:
    records = _rejected(4)
    sqs, log = FakeSqs(fail_bodies={records[1].body}, fail_code="KMS.ThrottlingException"), LogLines()
    assert SqsDeadLetters("q", sqs, log=log).send(records) == {"m-0", "m-2", "m-3"}
    assert log.codes() == {"m-1": "KMS.ThrottlingException"}


def test_a_service_error_is_logged_with_the_services_code() -> None:
    class Refusing:
        def send_message_batch(self, **_kw: Any) -> dict[str, Any]:
            raise ClientError({"Error": {"Code": "AWS.SimpleQueueService.NonExistentQueue"}}, "SendMessageBatch")

    log = LogLines()
    assert SqsDeadLetters("q", Refusing(), log=log).send(_rejected(1)) == set()
    assert log.codes() == {"m-0": "AWS.SimpleQueueService.NonExistentQueue"}


def test_redelivery_after_a_half_failed_send_makes_no_second_dlq_copy() -> None:
    """25 poison records; the second SendMessageBatch call fails. Only its 10 records are reported failed, so only
    they come back (SQS deletes the rest); the retry sends them, and every record lands in the DLQ exactly once."""
    sqs = FakeSqs(fail_calls={2})
    dead_letters = SqsDeadLetters("q", sqs)
    records = [sqs_record(json.dumps(make_event(source=f"Bad{i}"))) for i in range(25)]
    first = process_batch(records, MemorySink(), dead_letters)
    assert sorted(first.retry) == sorted(r["messageId"] for r in records[10:20])
    redelivered = [r for r in records if r["messageId"] in set(first.retry)]
    second = process_batch(redelivered, MemorySink(), dead_letters)
    assert second.retry == []
    copies = collections.Counter(e["MessageBody"] for e in sqs.delivered)
    assert copies == collections.Counter(r["body"] for r in records)  # each body once, none twice
