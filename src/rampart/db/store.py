"""Data access for events. Every statement is a constant; values travel only as parameters."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, Literal

import psycopg2.extras

from rampart.db.connection import Database
from rampart.events import StorageRow

psycopg2.extras.register_uuid()  # type: ignore[no-untyped-call]

# One statement for the whole batch. The rows travel as ONE parameter, a JSON array that PostgreSQL unpacks
# server-side: far cheaper than thousands of client-side adapted literals (see docs/benchmarks.md). Each row is
# [event_id, source, type, occurred_at, payload], the validator's canonical values (rampart.events.storage_row):
# nothing of the producer's text is parsed here. ON CONFLICT makes a redelivery a no-op; the row count tells new
# rows from duplicates.
INSERT_EVENTS = """
INSERT INTO rampart.events (event_id, source, type, occurred_at, payload)
SELECT (r->>0)::uuid, r->>1, r->>2, (r->>3)::timestamptz, r->4
FROM jsonb_array_elements(%s::jsonb) AS r
ON CONFLICT (event_id) DO NOTHING
"""

# Keyset pagination: rows strictly after the cursor position, in (occurred_at, event_id) order. Each optional
# filter is "parameter IS NULL OR column = parameter", so the text never changes with the filters.
# Each row comes back as its JSON text, built by PostgreSQL: the API passes it through without turning it into
# Python objects and back (see docs/benchmarks.md), plus the two columns a cursor needs.
LIST_EVENTS = """
SELECT occurred_at, event_id::text,
       jsonb_build_object('event_id', event_id, 'source', source, 'type', type, 'occurred_at', occurred_at,
                          'received_at', received_at, 'payload', payload)::text
FROM rampart.events
WHERE (%(source)s::text IS NULL OR source = %(source)s::text)
  AND (%(type)s::text IS NULL OR type = %(type)s::text)
  AND (%(since)s::timestamptz IS NULL OR occurred_at >= %(since)s::timestamptz)
  AND (%(until)s::timestamptz IS NULL OR occurred_at < %(until)s::timestamptz)
  AND (%(after_t)s::timestamptz IS NULL OR (occurred_at, event_id) > (%(after_t)s::timestamptz, %(after_id)s::uuid))
ORDER BY occurred_at, event_id
LIMIT %(limit)s
"""

GET_EVENT = """
SELECT jsonb_build_object('event_id', event_id, 'source', source, 'type', type, 'occurred_at', occurred_at,
                          'received_at', received_at, 'payload', payload)::text
FROM rampart.events WHERE event_id = %s
"""

# A stats answer holds at most this many (bucket, type) points (~140 bytes each in the response): producers
# choose the types, so their number has no other bound. One more is fetched to tell "too many".
MAX_STATS_POINTS = 20_000
STATS = """
SELECT date_trunc(%(bucket)s, occurred_at, 'UTC') AS bucket_start, type, count(*) AS events
FROM rampart.events
WHERE occurred_at >= %(since)s AND occurred_at < %(until)s
GROUP BY 1, 2
ORDER BY 1, 2
LIMIT %(points)s
"""


@dataclass(frozen=True)
class EventRow:
    """One stored event: its keyset position and its JSON text (the API's item representation)."""

    occurred_at: dt.datetime
    event_id: str
    json: str


@dataclass(frozen=True)
class EventFilter:
    source: str | None = None
    type: str | None = None
    since: dt.datetime | None = None
    until: dt.datetime | None = None


@dataclass(frozen=True)
class StatsRow:
    bucket_start: dt.datetime
    type: str
    events: int


class EventStore:
    def __init__(self, db: Database) -> None:
        self.db = db

    def insert_events(self, rows: Sequence[StorageRow]) -> int:
        """Insert validated events, given as ``(event_id, storage row)`` (see rampart.events.storage_row), in one
        statement; return how many rows were new (the rest were already stored).

        Rows go in in event_id order, whatever order the batch came in: two transactions that insert overlapping
        events then take their index locks in the same order and cannot deadlock.
        """
        if not rows:
            return 0
        ordered = sorted(rows, key=itemgetter(0))
        # The rows joined into one JSON array: no per-value adaptation on the client.
        params = ("[" + ",".join(row for _, row in ordered) + "]",)

        def work(cur: Any) -> int:
            cur.execute(INSERT_EVENTS, params)
            return int(cur.rowcount)

        return self.db.run(work)

    def list_events(
        self, filters: EventFilter, after: tuple[dt.datetime, uuid.UUID] | None, limit: int
    ) -> list[EventRow]:
        params = {
            "source": filters.source,
            "type": filters.type,
            "since": filters.since,
            "until": filters.until,
            "after_t": after[0] if after else None,
            "after_id": after[1] if after else None,
            "limit": limit,
        }

        def work(cur: Any) -> list[EventRow]:
            cur.execute(LIST_EVENTS, params)
            return [EventRow(*row) for row in cur.fetchall()]

        return self.db.run(work)

    def get_event_json(self, event_id: uuid.UUID) -> str | None:
        def work(cur: Any) -> str | None:
            cur.execute(GET_EVENT, (event_id,))
            row = cur.fetchone()
            return str(row[0]) if row else None

        return self.db.run(work)

    def stats(self, bucket: Literal["hour", "day"], since: dt.datetime, until: dt.datetime) -> list[StatsRow]:
        def work(cur: Any) -> list[StatsRow]:
            cur.execute(STATS, {"bucket": bucket, "since": since, "until": until, "points": MAX_STATS_POINTS + 1})
            return [StatsRow(*row) for row in cur.fetchall()]

        return self.db.run(work)

    def ping(self) -> None:
        """One round trip to the database; raises (DatabaseUnavailableError) when it cannot be made."""

        def work(cur: Any) -> None:
            cur.execute("SELECT 1")
            cur.fetchone()

        self.db.run(work)
