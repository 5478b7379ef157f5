"""A large batch stored while it is validated (EventStore.insert_events_streamed), through the real ingest handler and
the real PostgreSQL: every statement of the transaction in event_id order, nothing twice, no deadlock, and psycopg2's
process-wide wait callback gone once the batch is stored."""

from __future__ import annotations

import json
import random
import threading
from typing import Any

import psycopg2
import psycopg2.extensions
import pytest

from rampart.db.connection import Database
from rampart.db.store import INSERT_EVENTS
from rampart.ingest.batch import STREAM_CHUNK
from rampart.local.postgres import EmbeddedPostgres
from tests.conftest import make_event
from tests.e2e.conftest import wait_until
from tests.helpers import FakeContext, sqs_event

pytestmark = pytest.mark.integration


class _Spy:
    def __init__(self, cursor: Any, log: list[str]) -> None:
        self._cursor, self._log = cursor, log

    def execute(self, query: Any, params: Any = None) -> Any:
        if "INSERT" in str(query):
            assert str(query) == INSERT_EVENTS, "every chunk is the same constant statement; values only as parameters"
            self._log.append(params[0])
        return self._cursor.execute(query, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@pytest.fixture
def inserts(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The parameter of every INSERT the store sends, seen between the store and the driver."""
    log: list[str] = []
    real_run = Database.run
    monkeypatch.setattr(Database, "run", lambda self, work: real_run(self, lambda cur: work(_Spy(cur, log))))
    return log


def _stored(admin: Any) -> list[tuple[str, str]]:
    with admin.cursor() as cur:
        cur.execute("SELECT event_id::text, source FROM rampart.events")
        return sorted(cur.fetchall())


def test_a_large_batch_goes_in_as_ascending_chunks_and_a_redelivery_writes_nothing_twice(
    ingest: Any, admin: Any, inserts: list[str]
) -> None:
    events = [make_event(payload={"n": i}) for i in range(4 * STREAM_CHUNK)]
    bodies = [json.dumps(e) for e in events]
    random.Random(7).shuffle(bodies)
    event = sqs_event(*bodies)
    assert ingest.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    assert len(inserts) > 1, "a batch this large is stored chunk by chunk while it is validated"
    sent = [row[0] for parameter in inserts for row in json.loads(parameter)]
    assert sent == sorted(e["event_id"] for e in events), "every row once, in event_id order across the statements"
    assert _stored(admin) == sorted((e["event_id"], "billing") for e in events)
    assert psycopg2.extensions.get_wait_callback() is None, "the wait callback must not outlive the batch"

    assert ingest.lambda_handler(event, FakeContext()) == {"batchItemFailures": []}
    assert len(_stored(admin)) == len(events)


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


def test_overlapping_large_batches_in_opposite_orders_never_deadlock(
    ingest: Any, admin: Any, pg: EmbeddedPostgres
) -> None:
    """As tests/integration/test_ingest_handler.py's deadlock test, with batches large enough to be streamed: each
    transaction sends several statements, and both still take their locks in event_id order. Two threads stream at
    once, so they also share psycopg2's process-wide wait callback."""
    events = sorted((make_event() for _ in range(4 * STREAM_CHUNK)), key=lambda e: e["event_id"])
    bodies = [json.dumps(e) for e in events]
    middle = events[len(events) // 2]
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
    assert _stored(admin) == sorted((e["event_id"], "billing") for e in events)  # each exactly once
    assert psycopg2.extensions.get_wait_callback() is None
