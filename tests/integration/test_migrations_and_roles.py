"""Migrations are ordered, recorded, idempotent and serialised; each role can do what it needs and no more."""

from __future__ import annotations

import threading
import uuid
from typing import Any

import psycopg2
import pytest

from rampart.db import migrate
from rampart.local.postgres import EmbeddedPostgres


def test_migrations_are_recorded_with_checksums(admin: Any) -> None:
    with admin.cursor() as cur:
        cur.execute("SELECT version, name, checksum FROM rampart.schema_migrations ORDER BY version")
        rows = cur.fetchall()
    expected = [(m.version, m.name, m.checksum) for m in migrate.load_migrations()]
    assert rows == expected


def test_rerunning_is_a_no_op(pg: EmbeddedPostgres) -> None:
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    try:
        migrate.bootstrap_roles(conn)
        assert migrate.apply_migrations(conn) == []
    finally:
        conn.close()


def test_concurrent_runners_are_serialised(pg: EmbeddedPostgres) -> None:
    errors: list[BaseException] = []

    def run() -> None:
        conn = psycopg2.connect(pg.dsn("rampart_admin"))
        try:
            migrate.apply_migrations(conn)
        except Exception as exc:  # noqa: BLE001 - collected and asserted below
            errors.append(exc)
        finally:
            conn.close()

    threads = [threading.Thread(target=run) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []


def test_a_changed_applied_migration_is_refused(pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch) -> None:
    real = migrate.load_migrations()
    changed = [migrate.Migration(real[0].version, real[0].name, real[0].sql + "\n-- edited"), *real[1:]]
    monkeypatch.setattr(migrate, "load_migrations", lambda: changed)
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    try:
        with pytest.raises(migrate.MigrationError, match="changed after it was applied"):
            migrate.apply_migrations(conn)
    finally:
        conn.close()


def test_schema_is_owned_by_the_migrator(admin: Any) -> None:
    with admin.cursor() as cur:
        cur.execute("SELECT tableowner FROM pg_tables WHERE schemaname = 'rampart' AND tablename = 'events'")
        assert cur.fetchone() == ("rampart_migrator",)


def _as(pg: EmbeddedPostgres, role: str) -> Any:
    conn = psycopg2.connect(pg.dsn(role))
    conn.autocommit = True
    return conn


def _row() -> tuple[str, str, str, str, str]:
    return (str(uuid.uuid4()), "billing", "invoice.paid", "2026-01-01T00:00:00Z", '{"a": 1}')


INSERT = "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload) VALUES (%s,%s,%s,%s,%s)"


@pytest.mark.parametrize(
    "statement",
    [
        INSERT,
        "UPDATE rampart.events SET source = 'x'",
        "DELETE FROM rampart.events",
        "TRUNCATE rampart.events",
        "CREATE TABLE rampart.evil (id int)",
        "CREATE TABLE public.evil (id int)",
        "DROP TABLE rampart.events",
        "SET default_transaction_read_only = off; " + INSERT,
    ],
)
def test_api_role_cannot_write(pg: EmbeddedPostgres, clean_events: None, statement: str) -> None:
    conn = _as(pg, "rampart_api")
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.Error) as err:
            cur.execute(statement, _row() if "%s" in statement else None)
        assert isinstance(err.value, psycopg2.errors.InsufficientPrivilege | psycopg2.errors.ReadOnlySqlTransaction)
    finally:
        conn.close()


def test_api_role_can_read(pg: EmbeddedPostgres, clean_events: None) -> None:
    conn = _as(pg, "rampart_api")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*) FROM rampart.events")
            assert cur.fetchone() == (0,)
    finally:
        conn.close()


def test_ingest_role_inserts_but_cannot_read_update_delete_or_forge_received_at(
    pg: EmbeddedPostgres, clean_events: None
) -> None:
    conn = _as(pg, "rampart_ingest")
    try:
        with conn.cursor() as cur:
            cur.execute(INSERT, _row())
            assert cur.rowcount == 1
            for statement in (
                INSERT + " RETURNING payload",
                "SELECT payload FROM rampart.events",
                "SELECT * FROM rampart.events",
                "UPDATE rampart.events SET source = 'x'",
                "DELETE FROM rampart.events",
                "TRUNCATE rampart.events",
                "CREATE TABLE rampart.evil (id int)",
            ):
                with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                    cur.execute(statement, _row() if "%s" in statement else None)
            with pytest.raises(psycopg2.errors.InsufficientPrivilege):
                cur.execute(
                    "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload, received_at)"
                    " VALUES (%s,%s,%s,%s,%s, '2000-01-01')",
                    _row(),
                )
    finally:
        conn.close()


def test_tls_is_required(pg: EmbeddedPostgres) -> None:
    dsn = pg.dsn("rampart_api").replace("sslmode=verify-full", "sslmode=disable")
    with pytest.raises(psycopg2.OperationalError, match=r"no pg_hba.conf entry|SSL off"):
        psycopg2.connect(dsn)


def test_verify_full_rejects_a_name_not_on_the_certificate(pg: EmbeddedPostgres) -> None:
    dsn = pg.dsn("rampart_api").replace("host=127.0.0.1", "host=127.0.0.2 hostaddr=127.0.0.1")
    with pytest.raises(psycopg2.OperationalError, match="does not match"):
        psycopg2.connect(dsn)


def test_wrong_password_is_refused(pg: EmbeddedPostgres) -> None:
    dsn = pg.dsn("rampart_api").replace(pg.passwords["rampart_api"], "wrong")
    with pytest.raises(psycopg2.OperationalError, match="password authentication failed"):
        psycopg2.connect(dsn)


def test_connections_use_tls(pg: EmbeddedPostgres) -> None:
    conn = _as(pg, "rampart_api")
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")
            assert cur.fetchone() == (True,)
    finally:
        conn.close()
