from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

import rampart.api.handler as api_handler
import rampart.ingest.handler as ingest_handler
from rampart.db.connection import Database
from rampart.db.settings import DatabaseSettings
from rampart.db.store import EventStore
from rampart.ingest.dead_letters import SqsDeadLetters
from rampart.local.postgres import EmbeddedPostgres
from tests.conftest import with_env
from tests.helpers import FakeContext, FakeSqs, api_event, sqs_event

pytestmark = pytest.mark.integration

CURSOR_KEY = "integration-test-cursor-key-0123456789abcdef"


@pytest.fixture
def ingest(pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, clean_events: None) -> Iterator[Any]:
    """The real ingest handler, configured like Lambda would configure it (environment only)."""
    with_env(monkeypatch, pg.env("rampart_ingest"))
    ingest_handler._store = None
    ingest_handler._dead_letters = None
    yield ingest_handler
    if ingest_handler._store is not None:
        ingest_handler._store.db.close()
    ingest_handler._store = None
    ingest_handler._dead_letters = None


@pytest.fixture
def api(pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, clean_events: None) -> Iterator[Any]:
    """The real API handler on the read-only role."""
    with_env(monkeypatch, {**pg.env("rampart_api"), "RAMPART_CURSOR_KEY": CURSOR_KEY})
    api_handler._store = None
    api_handler._keyring = None
    yield api_handler
    if api_handler._store is not None:
        api_handler._store.db.close()
    api_handler._store = None
    api_handler._keyring = None


@pytest.fixture
def pipeline(pg: EmbeddedPostgres, monkeypatch: pytest.MonkeyPatch, clean_events: None) -> Iterator[Pipeline]:
    """Both real handlers at once, each on its own role (wired explicitly: their environments would collide), the
    ingest handler's DLQ on a recording fake SQS client."""
    with_env(monkeypatch, {"RAMPART_CURSOR_KEY": CURSOR_KEY})
    ingest_store = EventStore(
        Database(DatabaseSettings.from_env(pg.env("rampart_ingest"), application_name="rampart-ingest"))
    )
    api_store = EventStore(
        Database(DatabaseSettings.from_env(pg.env("rampart_api"), application_name="rampart-api"), read_only=True)
    )
    sqs = FakeSqs()
    ingest_handler._store, ingest_handler._dead_letters = ingest_store, SqsDeadLetters("https://dlq.invalid", sqs)
    api_handler._store, api_handler._keyring = api_store, None
    try:
        yield Pipeline(ingest_handler, api_handler, sqs)
    finally:
        ingest_store.db.close()
        api_store.db.close()
        ingest_handler._store = ingest_handler._dead_letters = None
        api_handler._store = api_handler._keyring = None


@dataclass
class Pipeline:
    ingest: Any
    api: Any
    dlq: FakeSqs

    def publish(self, *bodies: str) -> dict[str, Any]:
        """Deliver the bodies as one SQS batch to the ingest handler; return its response and the records."""
        event = sqs_event(*bodies)
        response = self.ingest.lambda_handler(event, FakeContext())
        return {"response": response, "records": event["Records"]}

    def get(self, path: str, query: dict[str, str] | None = None) -> tuple[int, str]:
        resp = self.api.lambda_handler(api_event(path, query), FakeContext())
        return int(resp["statusCode"]), str(resp["body"])
