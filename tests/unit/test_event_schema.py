"""docs/event.schema.json is generated from the event model, and a producer validating against it first gets the
same verdict on the syntax of every field as the ingest gives."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest

from rampart.events import InvalidEventError, event_json_schema, event_json_schema_text, parse_event
from tests.conftest import make_event

COMMITTED = Path(__file__).resolve().parents[2] / "docs" / "event.schema.json"


def test_committed_event_schema_matches_the_model() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == event_json_schema_text(), (
        "docs/event.schema.json drifted from rampart.events.Event: run `make openapi` and commit the result"
    )


def test_the_schema_is_a_valid_draft_2020_12_schema() -> None:
    jsonschema.Draft202012Validator.check_schema(event_json_schema())


def _schema_accepts(event: dict[str, Any]) -> bool:
    validator = jsonschema.Draft202012Validator(event_json_schema())
    return validator.is_valid(event)


@pytest.mark.parametrize(
    "change",
    [
        {},
        {"event_id": "0A1B2C3D-4E5F-4A6B-8C7D-9E0F1A2B3C4D"},
        {"event_id": "0a1b2c3d4e5f4a6b8c7d9e0f1a2b3c4d"},
        {"event_id": "{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}"},
        {"occurred_at": "2026-01-01T00:00:00.123456789+14:00"},
        {"occurred_at": "2026-01-01t00:00:00z"},
        {"occurred_at": "1764000229"},
        {"occurred_at": "now"},
        {"occurred_at": "2026-01-01"},
        {"occurred_at": "2026-01-01T00:00:00"},
        {"occurred_at": "2026-01-01T24:00:00Z"},
        {"occurred_at": "2026-01-01T23:59:60Z"},
        {"occurred_at": "2026-01-01T00:00:00+14:01"},
        {"occurred_at": "2026-01-01T00:00:00.1234567890Z"},
        {"occurred_at": 1764000229},
        {"source": "Billing"},
        {"type": "a" * 64},
        {"payload": []},
        {"extra": 1},
    ],
)
def test_schema_and_ingest_agree_on_syntax(change: dict[str, Any]) -> None:
    event = make_event(**change)
    event["occurred_at"] = change.get("occurred_at", "2026-01-01T00:00:00Z")
    try:
        parse_event(json.dumps(event))
        accepted = True
    except InvalidEventError:
        accepted = False
    assert _schema_accepts(event) == accepted
