"""Builders for e2e tests."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Any


def unique_source(prefix: str) -> str:
    """A source identifier no other test uses, so each test can count exactly its own events."""
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def event(source: str, occurred_at: dt.datetime | None = None, **payload: Any) -> dict[str, Any]:
    return {
        "event_id": str(uuid.uuid4()),
        "source": source,
        "type": "e2e.check",
        "occurred_at": (occurred_at or dt.datetime.now(dt.UTC)).isoformat(),
        "payload": payload or {"n": 1},
    }


def body(e: dict[str, Any]) -> str:
    return json.dumps(e, separators=(",", ":"))
