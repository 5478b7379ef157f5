"""SQL injection that reaches SQL: hostile values that PASS validation travel to PostgreSQL only as data.

Every other injection test is stopped by validation first, so it would pass with f-string SQL too. Here the
values are valid: strings inside an event's payload (ingest), and well-formed filters (API). A spy between the
store and the driver records each statement and its parameters, and the test requires that

- the statement text is the same whatever the values (it is a constant), and contains none of the values;
- every value arrives among the parameters;
- the hostile payloads round-trip byte for byte, and the table is intact.

psycopg2 interpolates parameters on the client, so PostgreSQL's own log cannot tell a bind value from inlined
text: the boundary that matters is the call into the driver, which is where the spy sits.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

import rampart.api.handler as api_handler
import rampart.ingest.handler as ingest_handler
from rampart.db.connection import Database
from rampart.local.postgres import EmbeddedPostgres
from tests.conftest import make_event, with_env
from tests.helpers import FakeContext, api_event, sqs_event

pytestmark = pytest.mark.integration

HOSTILE = [
    "x'); DROP TABLE rampart.events; --",
    "' OR '1'='1",
    "$$; SELECT pg_sleep(10); $$",
    "%s %(source)s %%",  # the driver's own placeholders, as data
    "\\'; TRUNCATE rampart.events; --",
    "' || (SELECT string_agg(rolname, ',') FROM pg_roles) || '",
    "\"}]'::jsonb); DELETE FROM rampart.events; --",
]


class SpyCursor:
    def __init__(self, cursor: Any, log: list[tuple[str, Any]]) -> None:
        self._cursor, self._log = cursor, log

    def execute(self, query: Any, params: Any = None) -> Any:
        self._log.append((str(query), params))
        return self._cursor.execute(query, params)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._cursor, name)


@pytest.fixture
def statements(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, Any]]:
    log: list[tuple[str, Any]] = []
    real_run = Database.run

    def spied_run(self: Database, work: Any) -> Any:
        return real_run(self, lambda cur: work(SpyCursor(cur, log)))

    monkeypatch.setattr(Database, "run", spied_run)
    return log


@pytest.fixture
def admin(pg: EmbeddedPostgres) -> Iterator[Any]:
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("TRUNCATE rampart.events")
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def ingest(pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, admin: Any) -> Iterator[Any]:
    with_env(monkeypatch, pg.env("rampart_ingest"))
    ingest_handler._store, ingest_handler._dead_letters = None, None
    yield ingest_handler
    if ingest_handler._store is not None:
        ingest_handler._store.db.close()
    ingest_handler._store, ingest_handler._dead_letters = None, None


@pytest.fixture
def api(pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, admin: Any) -> Iterator[Any]:
    with_env(monkeypatch, {**pg.env("rampart_api"), "RAMPART_CURSOR_KEY": "sql-as-data-cursor-key-0123456789abcdef"})
    api_handler._store, api_handler._codec = None, None
    yield api_handler
    if api_handler._store is not None:
        api_handler._store.db.close()
    api_handler._store, api_handler._codec = None, None


def _texts(log: list[tuple[str, Any]]) -> set[str]:
    return {query for query, _ in log}


def _params_text(log: list[tuple[str, Any]]) -> str:
    values = [v for _, params in log for v in (params.values() if isinstance(params, dict) else params or ())]
    return " ".join(str(v) for v in values)


def test_hostile_payload_values_are_stored_as_data(ingest: Any, admin: Any, statements: list[Any]) -> None:
    events = [make_event(payload={"note": value, value: [value]}) for value in HOSTILE]
    for event in events:  # one statement per batch: each must have the same text
        assert ingest.lambda_handler(sqs_event(json.dumps(event)), FakeContext()) == {"batchItemFailures": []}
    inserts = [(q, p) for q, p in statements if "INSERT" in q]
    assert len(inserts) == len(events)
    assert len(_texts(inserts)) == 1, "the INSERT text changed with the values: values are inlined into SQL"
    (text,) = _texts(inserts)
    for value in HOSTILE:
        assert value not in text
        assert json.dumps(value)[1:-1] in _params_text(inserts), "the value did not travel as a parameter"
    with admin.cursor() as cur:
        cur.execute("SELECT event_id::text, payload FROM rampart.events")
        stored = dict(cur.fetchall())
    assert stored == {e["event_id"]: e["payload"] for e in events}


def test_filters_travel_as_parameters_of_one_constant_statement(api: Any, admin: Any, statements: list[Any]) -> None:
    with admin.cursor() as cur:
        for i, source in enumerate(("billing", "shipping")):
            cur.execute(
                "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload) VALUES (%s,%s,%s,%s,'{}')",
                (str(uuid.uuid4()), source, "a.b-c", dt.datetime(2026, 1, 1 + i, tzinfo=dt.UTC)),
            )
    queries = [
        {"source": "billing"},
        {"source": "shipping", "type": "a.b-c"},
        {"since": "2026-01-01T00:00:00+00:00", "until": "2026-01-02T12:00:00+00:00"},
        {"limit": "1"},
    ]
    for query in queries:
        response = api.lambda_handler(api_event("/v1/events", query), FakeContext())
        assert response["statusCode"] == 200, response["body"]
    page = json.loads(api.lambda_handler(api_event("/v1/events", {"limit": "1"}), FakeContext())["body"])
    cursor_query = {"limit": "1", "cursor": page["next_cursor"]}
    assert api.lambda_handler(api_event("/v1/events", cursor_query), FakeContext())["statusCode"] == 200
    selects = [(q, p) for q, p in statements if "FROM rampart.events" in q and "jsonb_build_object" in q]
    lists = [(q, p) for q, p in selects if "ORDER BY" in q]
    assert len(lists) == len(queries) + 2
    assert len(_texts(lists)) == 1, "the list statement's text changed with the filters"
    (text,) = _texts(lists)
    for value in ("billing", "shipping", "a.b-c", "2026-01-01", "2026-01-02"):
        assert value not in text, f"{value!r} was inlined into the SQL text"
        assert value in _params_text(lists)
    event_id = str(uuid.uuid4())
    assert api.lambda_handler(api_event(f"/v1/events/{event_id}"), FakeContext())["statusCode"] == 404
    gets = [(q, p) for q, p in statements if "WHERE event_id" in q]
    assert gets and all(event_id not in q for q, _ in gets) and event_id in _params_text(gets)
