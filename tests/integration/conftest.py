from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

import rampart.api.handler as api_handler
import rampart.ingest.handler as ingest_handler
from rampart.local.postgres import EmbeddedPostgres
from tests.conftest import with_env

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
    api_handler._codec = None
    yield api_handler
    if api_handler._store is not None:
        api_handler._store.db.close()
    api_handler._store = None
    api_handler._codec = None
