"""Process one SQS batch: validate each record, store the valid ones in one transaction, account for every record.

A batch is stored with one statement; a large one (``STREAM_CHUNK`` twice or more) with the same statement once per
chunk while its later records are still being validated, so that Python and PostgreSQL work at the same time
(EventStore.insert_events_streamed). Either way the rows go in in event_id order, all or nothing.

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
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import itemgetter
from typing import Any, Protocol, runtime_checkable

import psycopg2

from rampart.db.connection import DatabaseUnavailableError
from rampart.db.store import RowStream
from rampart.events import InvalidEventError, StorageRow, parse_event, storage_row

# Only these say "this record's data can never be stored" (SQLSTATE classes 22 and 23). Anything else the
# database raises (privileges, a missing table, an unavailable server) is about the system, not the record:
# the whole batch is retried, and nothing is dead-lettered for a fault that is not its own.
_RECORD_ERRORS = (psycopg2.DataError, psycopg2.IntegrityError)


class EventSink(Protocol):
    def insert_events(self, rows: Sequence[StorageRow]) -> int:
        """Store validated events (rampart.events.storage_row) idempotently; return how many were new."""
        ...


@runtime_checkable
class StreamingEventSink(EventSink, Protocol):
    def insert_events_streamed(self, rows: RowStream) -> int:
        """Store events while they are being validated (rampart.db.store.EventStore.insert_events_streamed)."""
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
    streamed: _StreamedBatch | None = None
    if len(records) >= 2 * STREAM_CHUNK and isinstance(sink, StreamingEventSink):
        streamed = _StreamedBatch(records, now, result, valid, sink)  # validated while the store inserts it
    else:
        deque(_validate_records(records, range(len(records)), None, now, result, valid), maxlen=0)  # every record

    if valid or streamed is not None:
        try:
            _store(valid, sink, result, streamed)
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


def _validate_records(
    records: Sequence[dict[str, Any]],
    order: Sequence[int],
    bodies: Sequence[str | None] | None,
    now: dt.datetime,
    result: BatchResult,
    valid: list[_Valid],
) -> Iterator[bool]:
    """Validate the records at ``order``, one per step: each ends in ``valid`` (the step yields True) or in
    ``result.rejected`` (False). ``bodies`` are the records' event texts when already read, None where that failed."""
    for index in order:
        record = records[index]
        message_id = str(record.get("messageId", ""))
        stored = False
        try:
            known = bodies[index] if bodies is not None else None
            body = known if known is not None else record_body(record)
            event = parse_event(body, now)
            valid.append((message_id, record["body"], storage_row(event)))
            result.occurred_at[message_id] = event["occurred_at"]
            stored = True
        except InvalidEventError as exc:
            result.rejected.append(Rejected(message_id, str(record.get("body", "")), exc.reason))
        except (KeyError, TypeError) as exc:
            result.rejected.append(Rejected(message_id, "", f"malformed SQS record: {type(exc).__name__}"))
        yield stored


# A batch of at least twice this many records is stored while it is validated: the first statement leaves once this
# many records are valid, each next one with what was validated while the previous one ran.
STREAM_CHUNK = 128
_STEP = 16  # records validated between two looks at the connection (about 0.1 ms)


class OrderBrokenError(Exception):
    """A chunk would go in before rows already sent (a record's text misled the hint): the streamed insert is rolled
    back and the batch stored with one sorted statement instead."""


class _StreamedBatch:
    """One batch validated while the store inserts it (rampart.db.store.RowStream): its records sorted by the
    event_id their text shows, validated a few at a time, handed over in chunks.

    The event_id read from the text (the 36 characters after the first '"event_id"' and a quote) only orders the
    validation, so that the chunks come out sorted; what decides is the validated event_id, and a chunk that would
    go in before rows already sent stops the streamed insert (OrderBrokenError)."""

    def __init__(
        self,
        records: Sequence[dict[str, Any]],
        now: dt.datetime,
        result: BatchResult,
        valid: list[_Valid],
        sink: StreamingEventSink,
    ) -> None:
        bodies: list[str | None] = [None] * len(records)  # the event texts read here (SNS envelopes), by index
        hints: list[str] = []
        for index, record in enumerate(records):
            text = record.get("body") if isinstance(record, dict) else None
            at = text.find('"event_id"') if isinstance(text, str) else -1
            if at < 0 and isinstance(text, str):  # not a raw event: perhaps an SNS envelope (a str body never raises)
                text = bodies[index] = record_body(record)
                at = text.find('"event_id"')
            quote = text.find('"', at + 10) if isinstance(text, str) and at >= 0 else -1  # the value's opening quote
            hints.append(text[quote + 1 : quote + 37].lower() if isinstance(text, str) and quote >= 0 else "")
        self._order = sorted(range(len(records)), key=hints.__getitem__)
        self._steps = _validate_records(records, self._order, bodies, now, result, valid)
        self._result, self._valid, self._sink = result, valid, sink
        self._is_valid: list[bool] = []  # per validated record (in self._order): did it end in valid?

    def advance(self) -> bool:
        before = len(self._is_valid)
        self._is_valid.extend(islice(self._steps, _STEP))
        # Fewer than a step: the records are all validated (or validation raised, and the batch fails whole).
        return len(self._is_valid) - before == _STEP and len(self._is_valid) < len(self._order)

    def has_rows(self) -> bool:
        while not self._valid and self.advance():
            pass
        return bool(self._valid)

    def chunks(self) -> Iterator[list[StorageRow]]:
        sent, last = 0, ""
        while True:
            while len(self._valid) - sent < STREAM_CHUNK and self.advance():
                pass
            if sent == len(self._valid):
                return
            chunk = [row for _, _, row in self._valid[sent:]]
            chunk.sort(key=itemgetter(0))
            if chunk[0][0] < last:
                raise OrderBrokenError
            last, sent = chunk[-1][0], len(self._valid)
            yield chunk

    def insert(self) -> int:
        """Store the batch while validating it. Whatever happens, every record is validated when this returns, and
        the rejections are in the batch's order (the valid records too, when they are needed after a failure)."""
        try:
            stored = self._sink.insert_events_streamed(self)
        except OrderBrokenError:
            self._finish(valid_too=True)
            return self._sink.insert_events([row for _, _, row in self._valid])  # the streamed rows were rolled back
        except BaseException:
            self._finish(valid_too=True)
            raise
        self._finish(valid_too=False)
        return stored

    def _finish(self, valid_too: bool) -> None:
        while self.advance():
            pass
        # (Shorter than the order only when validation itself raised: the batch then fails whole, as it would have.)
        validated = zip(self._order, self._is_valid, strict=False)
        if valid_too:
            valid_at = [i for i, ok in validated if ok]
            self._valid[:] = [v for _, v in sorted(zip(valid_at, self._valid, strict=True), key=itemgetter(0))]
            validated = zip(self._order, self._is_valid, strict=False)
        if rejected := self._result.rejected:
            rejected_at = [i for i, ok in validated if not ok]
            rejected[:] = [r for _, r in sorted(zip(rejected_at, rejected, strict=True), key=itemgetter(0))]


def _store(valid: list[_Valid], sink: EventSink, result: BatchResult, streamed: _StreamedBatch | None = None) -> None:
    try:
        if streamed is None:
            result.stored = sink.insert_events([row for _, _, row in valid])
        else:
            result.stored = streamed.insert()
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
