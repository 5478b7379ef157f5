"""Process one SQS batch: validate each record, store the valid ones in one statement, account for every record.

Outcomes per record:
- stored (new) or duplicate (already stored): done, the message is deleted;
- rejected (can never succeed: not JSON, wrong schema, oversized, rejected by PostgreSQL): sent to the DLQ
  with its reason, then done; if that send fails it is reported failed, and the redrive policy moves it;
- retry (the database is unavailable, or something unexpected happened): reported in ``batchItemFailures``,
  so SQS delivers it again after the visibility timeout.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import psycopg2

from rampart.db.connection import DatabaseUnavailableError
from rampart.events import Event, InvalidEventError, parse_event


class EventSink(Protocol):
    def insert_events(self, events: Sequence[Event]) -> set[uuid.UUID]: ...


class DeadLetters(Protocol):
    def send(self, rejected: Sequence[Rejected]) -> set[str]:
        """Send the records to the DLQ; return the message ids that were sent."""
        ...


@dataclass(frozen=True)
class Rejected:
    message_id: str
    body: str
    reason: str


@dataclass
class BatchResult:
    stored: int = 0
    duplicates: int = 0
    rejected: list[Rejected] = field(default_factory=list)
    retry: list[str] = field(default_factory=list)

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
    valid: list[tuple[str, Event]] = []
    bodies: dict[str, str] = {}
    for record in records:
        message_id = str(record.get("messageId", ""))
        try:
            body = record_body(record)
            bodies[message_id] = body
            valid.append((message_id, parse_event(body)))
        except InvalidEventError as exc:
            result.rejected.append(Rejected(message_id, str(record.get("body", "")), exc.reason))
        except (KeyError, TypeError) as exc:
            result.rejected.append(Rejected(message_id, "", f"malformed SQS record: {type(exc).__name__}"))

    if valid:
        try:
            _store(valid, sink, result, bodies)
        except DatabaseUnavailableError:
            warn("database unavailable: the batch goes back to the queue", retry=len(valid))
            result.retry.extend(mid for mid, _ in valid)

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


def _store(valid: list[tuple[str, Event]], sink: EventSink, result: BatchResult, bodies: dict[str, str]) -> None:
    try:
        inserted = sink.insert_events([event for _, event in valid])
    except psycopg2.DatabaseError as exc:
        if isinstance(exc, psycopg2.OperationalError | psycopg2.InterfaceError):
            raise DatabaseUnavailableError("the database is unavailable") from exc
        # PostgreSQL rejected a value in the batch. Find which by storing the records one at a time, so the
        # rest of the batch is not held back by one bad record.
        inserted = set()
        isolated: list[tuple[str, Event]] = []
        for message_id, event in valid:
            try:
                inserted |= sink.insert_events([event])
                isolated.append((message_id, event))
            except psycopg2.DatabaseError as one_exc:
                if isinstance(one_exc, psycopg2.OperationalError | psycopg2.InterfaceError):
                    raise DatabaseUnavailableError("the database is unavailable") from one_exc
                reason = f"rejected by PostgreSQL: {type(one_exc).__name__}"
                result.rejected.append(Rejected(message_id, bodies.get(message_id, ""), reason))
        valid = isolated
    seen: set[uuid.UUID] = set()
    for _, event in valid:
        if event.event_id in inserted and event.event_id not in seen:
            result.stored += 1
            seen.add(event.event_id)
        else:
            result.duplicates += 1
