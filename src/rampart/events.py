"""The event: its schema and the validation every record passes before it may reach the database."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from typing import Annotated, Any

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, ValidationError, field_validator

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}$"
MAX_RECORD_BYTES = 256 * 1024  # the SQS/SNS message limit
MAX_PAYLOAD_BYTES = 32 * 1024
MAX_PAYLOAD_DEPTH = 16
MAX_FUTURE_SKEW = dt.timedelta(minutes=5)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)

Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, min_length=1, max_length=63)]


class InvalidEventError(ValueError):
    """A record that can never be stored; ``reason`` is safe to log and to attach to the DLQ message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Event(BaseModel):
    """One event as producers publish it. ``received_at`` is not here: the database sets it."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    event_id: uuid.UUID
    source: Identifier
    type: Identifier
    occurred_at: AwareDatetime
    payload: dict[str, Any]

    @field_validator("event_id", "occurred_at", mode="before")
    @classmethod
    def _must_be_string(cls, value: object) -> object:
        # JSON numbers would otherwise be coerced (a UUID from an int, a datetime from epoch seconds).
        if not isinstance(value, str):
            raise ValueError("must be a string")
        return value

    @field_validator("occurred_at")
    @classmethod
    def _plausible_time(cls, value: dt.datetime) -> dt.datetime:
        if value < EARLIEST:
            raise ValueError("is before 2000-01-01")
        if value > dt.datetime.now(dt.UTC) + MAX_FUTURE_SKEW:
            raise ValueError("is more than 5 minutes in the future")
        return value

    @field_validator("payload")
    @classmethod
    def _bounded_payload(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_json_value(value, depth=1)
        size = len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode("utf-8"))
        if size > MAX_PAYLOAD_BYTES:
            raise ValueError(f"is {size} bytes, more than {MAX_PAYLOAD_BYTES}")
        return value

    def payload_json(self) -> str:
        return json.dumps(self.payload, separators=(",", ":"), ensure_ascii=False)


def _check_json_value(value: Any, depth: int) -> None:
    """Reject what PostgreSQL's jsonb cannot hold (NUL, lone surrogates) and over-deep nesting."""
    if depth > MAX_PAYLOAD_DEPTH:
        raise ValueError(f"is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
    if isinstance(value, dict):
        for key, item in value.items():
            _check_string(key)
            _check_json_value(item, depth + 1)
    elif isinstance(value, list):
        for item in value:
            _check_json_value(item, depth + 1)
    elif isinstance(value, str):
        _check_string(value)


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise ValueError("contains a NUL character (\\u0000), which PostgreSQL jsonb rejects")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains an unpaired UTF-16 surrogate") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


def _depth_of(text: str) -> int:
    """Nesting depth of a JSON text, counted before parsing so a deep document cannot exhaust the stack."""
    depth = deepest = 0
    in_string = escaped = False
    for ch in text:
        if in_string:
            if escaped:
                escaped = False
            elif ch == "\\":
                escaped = True
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def parse_event(body: str) -> Event:
    """Parse and validate one event from its JSON text, or raise :class:`InvalidEventError`."""
    size = len(body.encode("utf-8", errors="surrogatepass"))
    if size > MAX_RECORD_BYTES:
        raise InvalidEventError(f"record is {size} bytes, more than {MAX_RECORD_BYTES}")
    if _depth_of(body) > MAX_PAYLOAD_DEPTH + 1:
        raise InvalidEventError(f"payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
    try:
        data = json.loads(body, parse_constant=_reject_constant)
    except ValueError as exc:
        raise InvalidEventError(f"not valid JSON: {exc}") from None
    return validate_event(data)


def validate_event(data: object) -> Event:
    if not isinstance(data, dict):
        raise InvalidEventError("an event must be a JSON object")
    try:
        return Event.model_validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidEventError(f"schema violation: {problems}") from None
