"""Shared fixtures: one embedded PostgreSQL (TLS, scram-sha-256, our migrations and roles) per test session."""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from rampart.local.postgres import EmbeddedPostgres


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    server = EmbeddedPostgres().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def admin(pg: EmbeddedPostgres) -> Iterator[Any]:
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    conn.autocommit = True
    try:
        yield conn
    finally:
        conn.close()


@pytest.fixture
def clean_events(admin: Any) -> None:
    with admin.cursor() as cur:
        cur.execute("TRUNCATE rampart.events")


def make_event(**overrides: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "event_id": str(uuid.uuid4()),
        "source": "billing",
        "type": "invoice.paid",
        "occurred_at": dt.datetime.now(dt.UTC).isoformat(),
        "payload": {"amount": 42, "currency": "EUR"},
    }
    event.update(overrides)
    return event


def with_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    for key in [k for k in os.environ if k.startswith("RAMPART_")]:
        monkeypatch.delenv(key)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
