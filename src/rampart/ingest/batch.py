"""Process one SQS batch: validate each record, store the valid ones in one statement, account for every record.

Outcomes per record:
- stored (new) or duplicate (already stored): done, the message is deleted;
- rejected (can never succeed: not JSON, wrong schema, oversized, rejected by PostgreSQL): sent to the DLQ
  with its reason, then done; if that send fails it is reported failed, and the redrive policy moves it;
- retry (the database is unavailable, or something unexpected happened): reported in ``batchItemFailures``,
  so SQS delivers it again after the visibility timeout.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg2

from rampart.db.connection import DatabaseUnavailableError
from rampart.events import InvalidEventError, StorageRow, parse_event, storage_row

# Only these say "this record's data can never be stored" (SQLSTATE classes 22 and 23). Anything else the
# database raises (privileges, a missing table, an unavailable server) is about the system, not the record:
# the whole batch is retried, and nothing is dead-lettered for a fault that is not its own.
_RECORD_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError)


class EventSink(Protocol):
    def insert_events(self, rows: Sequence[StorageRow]) -> int:
        """Store validated events (rampart.events.storage_row) idempotently; return how many were new."""
        ...


class DeadLetters(Protocol):
    def send(self, rejected: Sequence[Rejected]) -> set[str]:
        """Send the records to the DLQ; return the message ids that were sent."""
        ...


@dataclass(frozen=True)
class Rejected:
    message_id: str
    body: str
    reason: str


# A record that passed validation: (message id, its SQS body as received, its storage row).
_Valid = tuple[str, str, StorageRow]


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)
    # The validated occurred_at (UTC) of every record that passed validation, by message id: what a freshness
    # metric can read instead of parsing each body a second time (docs/benchmarks.md: that costs ~3 µs a record).
    occurred_at: dict[str, dt.datetime] = field(default_factory=dict)

    def response(self) -> dict[str, list[dict[str, str]]]:
        return {"batchItemFailures": [{"itemIdentifier": mid} for mid in self.retry]}


def record_body(record: dict[str, Any]) -> str:
    """The event text of an SQS record: the body itself (raw delivery) or the SNS envelope's Message."""
    body = record["body"]
    if not isinstance(body, str):
        raise InvalidEventError("SQS record body is not a string")
    if body.startswith("{") and '"TopicArn"' in body and '"Message"' in body:
        try:
            envelope = json.loads(body)
        except ValueError:
            return body
        if (
            isinstance(envelope, dict)
            and envelope.get("Type") == "Notification"
            and isinstance(envelope.get("Message"), str)
        ):
            return str(envelope["Message"])
    return body


def process_batch(
    records: Sequence[dict[str, Any]],
    sink: EventSink,
    dead_letters: DeadLetters | None,
    log: Callable[..., None] | None = None,
) -> BatchResult:
    result = BatchResult()
    warn = log or (lambda *_a, **_k: None)
    valid: list[_Valid] = []
    now = dt.datetime.now(dt.UTC)  # one clock reading for the batch's occurred_at window
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            body = record_body(record)
            event = parse_event(body, now)
            valid.append((message_id, record["body"], storage_row(event)))
            result.occurred_at[message_id] = event["occurred_at"]
        except InvalidEventError as exc:
            result.rejected.append(Rejected(message_id, str(record.get("body", "")), exc.reason))
        except (KeyError, TypeError) as exc:
            result.rejected.append(Rejected(message_id, "", f"malformed SQS record: {type(exc).__name__}"))

    if valid:
        try:
            _store(valid, sink, result)
        except (DatabaseUnavailableError, psycopg2.Error) as exc:
            warn("cannot store the batch: it goes back to the queue", retry=len(valid), error=type(exc).__name__)
            result.stored = result.duplicates = 0
            result.rejected = [r for r in result.rejected if r.message_id not in {v[0] for v in valid}]
            result.retry.extend(v[0] for v in valid)

    if result.rejected:
        for rej in result.rejected:
            warn("record rejected", message_id=rej.message_id, reason=rej.reason)
        sent: set[str] = set()
        if dead_letters is not None:
            try:
                sent = dead_letters.send(result.rejected)
            except Exception as exc:  # noqa: BLE001 - any DLQ failure falls back to redrive, never to a loss
                warn(
                    "could not send rejected records to the DLQ; redrive will move them",
                    error=type(exc).__name__,
                )
        result.retry.extend(rej.message_id for rej in result.rejected if rej.message_id not in sent)
    return result


def _store(valid: list[_Valid], sink: EventSink, result: BatchResult) -> None:
    try:
        result.stored = sink.insert_events([row for _, _, row in valid])
        result.duplicates = len(valid) - result.stored
        return
    except _RECORD_ERRORS:
        pass
    # PostgreSQL rejected a value in the batch. Find which by storing the records one at a time, so the rest of
    # the batch is not held back by one bad record.
    for message_id, sqs_body, row in valid:
        try:
            new = sink.insert_events([row])
        except _RECORD_ERRORS as one_exc:
            reason = f"rejected by PostgreSQL: {type(one_exc).__name__}"
            result.rejected.append(Rejected(message_id, sqs_body, reason))
            continue
        result.stored += new
        result.duplicates += 1 - new
