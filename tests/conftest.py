"""Shared fixtures: one embedded PostgreSQL (TLS, scram-sha-256, our migrations and roles) per test session."""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Iterator
from typing import Any

import psycopg2
import pytest

from rampart.local.postgres import EmbeddedPostgres

# Hermetic AWS. moto's mock_aws intercepts only requests to AWS's own host names: an ambient endpoint override
# (AWS_ENDPOINT_URL, AWS_ENDPOINT_URL_<SERVICE>, or endpoint_url in a profile of the developer's config file) would
# send every mocked test's calls to that endpoint instead - a LocalStack, or the moto server of a pipeline rehearsal,
# where they read and wrote its state (found by `make pipeline-rehearsal`: the tests job saw the rehearsal's secrets
# and queues). A test that needs an endpoint sets it itself. tests/unit/test_hermetic_aws.py proves this.
for _name in [n for n in os.environ if n.startswith("AWS_ENDPOINT_URL") or n in ("AWS_PROFILE", "AWS_DEFAULT_PROFILE")]:
    del os.environ[_name]
os.environ["AWS_CONFIG_FILE"] = os.devnull
os.environ["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull

# `make mutation` starts one server for all its test runs (a cluster per run would cost more than the tests) and
# names the file describing it here; the tests then use that server and leave it running.
SHARED_PG = "RAMPART_TEST_SHARED_PG"


@pytest.fixture(scope="session")
def pg() -> Iterator[EmbeddedPostgres]:
    if shared := os.environ.get(SHARED_PG):
        with open(shared, encoding="utf-8") as fh:
            info = json.load(fh)
        yield EmbeddedPostgres.attach(info)
        return
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
