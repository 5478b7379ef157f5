"""Migrations are ordered, recorded, idempotent and serialised; each role can do what it needs and no more."""

from __future__ import annotations

import json
import re
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


# -- the database as the last guard ---------------------------------------------------------------------------------
BYPASS = {
    "occurred_at before 2000": {"occurred_at": "1999-12-31T23:59:59Z"},
    "occurred_at in year 176400": {"occurred_at": "176400-01-01T00:00:00Z"},
    "occurred_at hours ahead": {"occurred_at": "now() + interval '2 hours'"},
    "occurred_at infinity": {"occurred_at": "infinity"},
    "payload not an object": {"payload": "[1, 2]"},
    "payload a string": {"payload": '"text"'},
    "payload over the size bound": {"payload": json.dumps({"blob": "x" * 49_200})},
    "source not an identifier": {"source": "Billing"},
    "type not an identifier": {"type": "x; DROP TABLE events"},
    "type too long": {"type": "a" * 64},
}


@pytest.mark.parametrize("change", BYPASS.values(), ids=BYPASS.keys())
def test_the_ingest_role_cannot_store_a_row_the_validator_would_refuse(
    pg: EmbeddedPostgres, clean_events: None, change: dict[str, str]
) -> None:
    """Straight SQL as rampart_ingest, no validator in the way: PostgreSQL's CHECK constraints refuse the row."""
    row = {"source": "billing", "type": "invoice.paid", "occurred_at": "2026-01-01T00:00:00Z", "payload": "{}"} | change
    occurred = "now() + interval '2 hours'" if row["occurred_at"].startswith("now()") else "%(occurred_at)s"
    conn = _as(pg, "rampart_ingest")
    try:
        with conn.cursor() as cur, pytest.raises(psycopg2.errors.CheckViolation):
            cur.execute(
                "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload)"
                f" VALUES (gen_random_uuid(), %(source)s, %(type)s, {occurred}, %(payload)s)",
                row,
            )
    finally:
        conn.close()


def test_the_checks_admit_every_row_the_validator_admits(pg: EmbeddedPostgres, clean_events: None) -> None:
    """The guard is no stricter than the validator at its edges: 2000-01-01 exactly, 5 minutes ahead, and the
    largest payload the validator allows written in PostgreSQL's roomier text form."""
    conn = _as(pg, "rampart_ingest")
    widest = {str(i): [0] * 3000 for i in range(3)}  # ~18 KB compact; PostgreSQL's text adds a space per element
    try:
        with conn.cursor() as cur:
            for occurred, payload in (
                ("timestamptz '2000-01-01T00:00:00Z'", "{}"),
                ("now() + interval '5 minutes'", "{}"),
                ("now()", json.dumps(widest, separators=(",", ":"))),
            ):
                cur.execute(
                    "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload)"
                    f" VALUES (gen_random_uuid(), 'billing', 'invoice.paid', {occurred}, %s)",
                    (payload,),
                )
    finally:
        conn.close()


def test_the_checks_are_added_not_valid_then_validated_on_a_populated_table(pg: EmbeddedPostgres, admin: Any) -> None:
    """On a table holding rows, including rows that break the new checks (stored before them): the migrations go
    through, the good rows stay, the bad ones are moved to the quarantine table, and the constraints end validated."""
    with admin.cursor() as cur:
        cur.execute("DROP DATABASE IF EXISTS rampart_populated")
        cur.execute("CREATE DATABASE rampart_populated")
    conn = psycopg2.connect(pg.dsn("rampart_admin", dbname="rampart_populated"))
    first, *later = migrate.load_migrations()
    assert first.version == "0001" and [m.version for m in later[:2]] == ["0002", "0003"]
    try:
        migrate.bootstrap_roles(conn)
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(migrate, "load_migrations", lambda: [first])
            assert migrate.apply_migrations(conn) == ["0001"]
        conn.autocommit = True
        good = [str(uuid.uuid4()) for _ in range(500)]
        bad_time, bad_size = str(uuid.uuid4()), str(uuid.uuid4())
        with conn.cursor() as cur:
            cur.execute(
                "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload)"
                " SELECT id::uuid, 'billing', 'invoice.paid', now() - interval '1 day', '{\"a\": 1}'"
                " FROM unnest(%s::text[]) AS id",
                (good,),
            )
            cur.execute(
                "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload) VALUES"
                " (%s, 'billing', 'invoice.paid', '176400-01-01T00:00:00Z', '{}'),"
                " (%s, 'billing', 'invoice.paid', now(), %s)",
                (bad_time, bad_size, json.dumps({"blob": "x" * 60_000})),
            )
        assert migrate.apply_migrations(conn) == [m.version for m in later]
        with conn.cursor() as cur:
            cur.execute("SELECT event_id::text FROM rampart.events ORDER BY 1")
            assert [r[0] for r in cur.fetchall()] == sorted(good)
            cur.execute("SELECT event_id::text, reason FROM rampart.events_quarantine ORDER BY reason")
            assert cur.fetchall() == [(bad_time, "events_occurred_at_window"), (bad_size, "events_payload_bounded")]
            cur.execute(
                "SELECT conname, convalidated FROM pg_constraint"
                " WHERE conrelid = 'rampart.events'::regclass AND conname IN"
                " ('events_occurred_at_window', 'events_payload_bounded') ORDER BY 1"
            )
            assert cur.fetchall() == [("events_occurred_at_window", True), ("events_payload_bounded", True)]
    finally:
        conn.close()
        with admin.cursor() as cur:
            cur.execute("DROP DATABASE IF EXISTS rampart_populated")


def test_0002_adds_its_checks_not_valid_and_0003_validates_them() -> None:
    """Safe on a large table: the ACCESS EXCLUSIVE step must not scan, so every constraint 0002 adds is NOT VALID,
    and 0003 (its own transaction) validates each one."""
    migrations = {m.version: m.sql for m in migrate.load_migrations()}
    added = re.findall(r"ADD CONSTRAINT (\w+) CHECK", migrations["0002"])
    assert added == ["events_occurred_at_window", "events_payload_bounded"]
    assert len(re.findall(r"\)\s+NOT VALID", migrations["0002"])) == len(added)
    assert re.findall(r"ALTER TABLE rampart.events VALIDATE CONSTRAINT (\w+);", migrations["0003"]) == added
