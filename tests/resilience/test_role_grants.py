"""The database roles' privileges on their own, without the read-only session default that sits on top of them.

tests/integration/test_migrations_and_roles.py shows that writes through the API role fail; they fail with
InsufficientPrivilege OR ReadOnlySqlTransaction, so a migration that granted the API role UPDATE would still pass
there (default_transaction_read_only stops the write first). Each layer must hold alone: here the grants are read
from the catalogue, and writes are attempted in a transaction explicitly opened READ WRITE.
"""

from __future__ import annotations

import uuid
from typing import Any

import psycopg2
import pytest

from rampart.local.postgres import EmbeddedPostgres

pytestmark = pytest.mark.integration
WRITES = ("INSERT", "UPDATE", "DELETE", "TRUNCATE", "REFERENCES", "TRIGGER")


def _privileges(pg: EmbeddedPostgres, role: str) -> dict[str, bool]:
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    try:
        with conn.cursor() as cur:
            out = {}
            for privilege in ("SELECT", *WRITES):
                cur.execute("SELECT has_table_privilege(%s, 'rampart.events', %s)", (role, privilege))
                out[privilege] = bool(cur.fetchone()[0])
            return out
    finally:
        conn.close()


def test_the_api_role_holds_select_and_nothing_else(pg: EmbeddedPostgres) -> None:
    assert _privileges(pg, "rampart_api") == {"SELECT": True, **dict.fromkeys(WRITES, False)}


def test_the_ingest_role_holds_insert_of_five_columns_and_reads_only_the_id(pg: EmbeddedPostgres) -> None:
    assert _privileges(pg, "rampart_ingest") == {"SELECT": False, "INSERT": False, **dict.fromkeys(WRITES[1:], False)}
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    try:
        with conn.cursor() as cur:
            cur.execute(
                "SELECT column_name, privilege_type FROM information_schema.column_privileges"
                " WHERE grantee = 'rampart_ingest' AND table_schema = 'rampart' AND table_name = 'events'"
            )
            grants = set(cur.fetchall())
    finally:
        conn.close()
    columns = {"event_id", "source", "type", "occurred_at", "payload"}
    assert grants == {(c, "INSERT") for c in columns} | {("event_id", "SELECT")}


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload) VALUES (%s, 'a', 'b', now(), '{}')",
        "UPDATE rampart.events SET source = 'x' WHERE event_id = %s",
        "DELETE FROM rampart.events WHERE event_id = %s",
    ],
)
def test_the_api_role_cannot_write_even_in_a_read_write_transaction(pg: EmbeddedPostgres, statement: str) -> None:
    conn: Any = psycopg2.connect(pg.dsn("rampart_api"))
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute("BEGIN READ WRITE")
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(statement, (str(uuid.uuid4()),))
            cur.execute("ROLLBACK")
    finally:
        conn.close()
