"""A large batch stored while it is validated (rampart.ingest.batch, STREAM_CHUNK): the same accounting as one
statement, rows in event_id order across every statement of the transaction, nothing lost on any failure.

The sink behaves as EventStore.insert_events_streamed does: one transaction of chunks, rolled back whole on an error,
the records of the next chunk validated (``advance``) while a chunk is "inserted"."""

from __future__ import annotations

import json
import random
from collections.abc import Sequence
from typing import Any

import psycopg2
import pytest

from rampart.db.connection import DatabaseUnavailableError
from rampart.db.store import RowStream
from rampart.events import StorageRow
from rampart.ingest.batch import STREAM_CHUNK, BatchResult, Rejected, process_batch
from tests.conftest import make_event
from tests.helpers import sqs_record


class PlainSink:
    """Stores what the real statement would, one statement per call (no streaming: the one-statement path)."""

    def __init__(self, reject_source: str | None = None) -> None:
        self.rows: dict[str, list[Any]] = {}
        self.statements: list[list[str]] = []
        self.reject_source = reject_source

    def _insert(self, rows: Sequence[StorageRow], into: dict[str, list[Any]]) -> int:
        received = [json.loads(row) for _, row in rows]
        self.statements.append([r[0] for r in received])
        if self.reject_source and any(r[1] == self.reject_source for r in received):
            raise psycopg2.DataError("value rejected")
        before = len(into)
        for row in received:
            into.setdefault(row[0], row)
        return len(into) - before

    def insert_events(self, rows: Sequence[StorageRow]) -> int:
        staged = dict(self.rows)
        new = self._insert(sorted(rows), staged)
        self.rows = staged
        return new


class StreamingSink(PlainSink):
    """As EventStore.insert_events_streamed: chunks in one transaction; ``advance`` runs while a chunk 'executes'."""

    def __init__(
        self, reject_source: str | None = None, down_at_chunk: int | None = None, drop_at_chunk: int | None = None
    ) -> None:
        super().__init__(reject_source)
        self.down_at_chunk = down_at_chunk
        self.drop_at_chunk = drop_at_chunk  # the connection drops there once: the transaction is run again
        self.transactions = 0

    def insert_events_streamed(self, rows: RowStream) -> int:
        if not rows.has_rows():
            return 0
        while True:
            self.transactions += 1
            staged, inserted = dict(self.rows), 0
            try:
                for number, chunk in enumerate(rows.chunks(), start=1):
                    if number == self.down_at_chunk:
                        raise DatabaseUnavailableError("the database is unavailable")
                    if number == self.drop_at_chunk:
                        self.drop_at_chunk = None
                        raise ConnectionResetError
                    inserted += self._insert(chunk, staged)
                    for _ in range(3):  # PostgreSQL busy with the chunk: the wait callback validates more
                        rows.advance()
            except ConnectionResetError:
                continue  # Database.run: reconnect and run the work again
            self.rows = staged
            return inserted


def _batch(n: int, seed: int, invalid_every: int = 0) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    bodies = [json.dumps(make_event(payload={"n": i})) for i in range(n)]
    if invalid_every:
        for i in range(0, n, invalid_every):
            bodies[i] = rng.choice(["not json", "{}", json.dumps(make_event(occurred_at="1764000229"))])
    rng.shuffle(bodies)
    return [sqs_record(body, message_id=f"m{i}") for i, body in enumerate(bodies)]


def _accounting(result: BatchResult) -> tuple[Any, ...]:
    return (result.stored, result.duplicates, result.rejected, result.retry)


def _in_order(statements: list[list[str]]) -> bool:
    sent = [event_id for statement in statements for event_id in statement]
    return sent == sorted(sent)


def test_a_large_batch_goes_in_as_ascending_chunks_of_one_transaction_with_the_same_accounting() -> None:
    records = _batch(5 * STREAM_CHUNK, seed=1, invalid_every=7)
    plain, streaming = PlainSink(), StreamingSink()
    expected = process_batch(records, plain, None)
    result = process_batch(records, streaming, None)
    assert _accounting(result) == _accounting(expected)
    assert result.occurred_at == expected.occurred_at
    assert streaming.rows == plain.rows
    assert len(streaming.statements) > 1 and streaming.transactions == 1
    assert _in_order(streaming.statements), "rows must go in in event_id order across the transaction's statements"
    # Rejections keep the batch's order (the order the DLQ receives them in).
    order = {r["messageId"]: i for i, r in enumerate(records)}
    assert [order[r.message_id] for r in result.rejected] == sorted(order[r.message_id] for r in result.rejected)


def test_a_batch_below_the_threshold_is_one_statement() -> None:
    sink = StreamingSink()
    process_batch(_batch(2 * STREAM_CHUNK - 1, seed=2), sink, None)
    assert len(sink.statements) == 1


def test_a_text_that_misleads_the_order_falls_back_to_one_sorted_statement() -> None:
    records = _batch(4 * STREAM_CHUNK, seed=3)
    # Its text shows a payload key "event_id" first (the hint sorts it first); its own id sorts last.
    misleading = make_event(event_id="ffffffff-ffff-4fff-8fff-ffffffffffff", payload=None)
    del misleading["payload"]
    body = json.dumps({"payload": {"event_id": "00000000-0000-4000-8000-000000000000"}, **misleading})
    records.append(sqs_record(body, message_id="misleading"))
    sink = StreamingSink()
    result = process_batch(records, sink, None)
    assert result.stored == len(records) and result.rejected == [] and result.retry == []
    assert sink.statements[-1] == sorted(sink.rows), "the fallback stores the whole batch in one sorted statement"
    assert len(sink.rows) == len(records)


def test_a_value_postgres_rejects_mid_stream_is_isolated_and_the_rest_stored() -> None:
    records = _batch(3 * STREAM_CHUNK, seed=4)
    evil = sqs_record(json.dumps(make_event(source="evil")), message_id="evil")
    records.insert(200, evil)
    result = process_batch(records, StreamingSink(reject_source="evil"), None)
    assert result.stored == len(records) - 1
    assert [(r.message_id, r.reason) for r in result.rejected] == [("evil", "rejected by PostgreSQL: DataError")]
    assert result.retry == ["evil"]  # no DLQ here: left to the redrive policy


@pytest.mark.parametrize("chunk", [1, 2])
def test_database_down_mid_stream_retries_every_valid_record_and_dead_letters_only_the_invalid(chunk: int) -> None:
    records = _batch(4 * STREAM_CHUNK, seed=5, invalid_every=11)
    expected = process_batch(records, PlainSink(), None)
    dead_letters: list[Rejected] = []

    class Dlq:
        def send(self, rejected: Sequence[Rejected]) -> set[str]:
            dead_letters.extend(rejected)
            return {r.message_id for r in rejected}

    sink = StreamingSink(down_at_chunk=chunk)
    result = process_batch(records, sink, Dlq())
    invalid = {r.message_id for r in expected.rejected}
    assert sink.rows == {}
    assert result.stored == 0
    assert {r.message_id for r in dead_letters} == invalid
    assert sorted(result.retry) == sorted(r["messageId"] for r in records if r["messageId"] not in invalid)


def test_a_batch_with_no_valid_record_never_reaches_the_database() -> None:
    records = [sqs_record("not json", message_id=f"m{i}") for i in range(2 * STREAM_CHUNK)]
    sink = StreamingSink(down_at_chunk=1)
    result = process_batch(records, sink, None)
    assert sink.transactions == 0 and sink.statements == []
    assert len(result.rejected) == len(records)


def test_a_transaction_run_again_after_a_dropped_connection_sends_every_row_again_in_order() -> None:
    records = _batch(4 * STREAM_CHUNK, seed=6)
    sink = StreamingSink(drop_at_chunk=2)
    result = process_batch(records, sink, None)
    assert sink.transactions == 2
    assert result.stored == len(records) and len(sink.rows) == len(records)
    first_attempt = 1  # the chunk sent before the drop
    assert _in_order(sink.statements[first_attempt:])


@pytest.mark.parametrize("position", [0, 150, 299])
def test_a_record_that_is_not_an_object_fails_the_batch_whole_as_one_statement_would(position: int) -> None:
    """A bug-shaped input the validation does not expect: the batch fails, nothing is stored (the handler then returns
    every record to the queue), and the streamed path stops instead of looping."""
    records: list[Any] = _batch(300, seed=9)
    records.insert(position, ["not", "an", "object"])
    for sink in (PlainSink(), StreamingSink()):
        with pytest.raises(AttributeError):
            process_batch(records, sink, None)
        assert sink.rows == {}
