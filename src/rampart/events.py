"""The event: its schema and the validation every record passes before it may reach the database."""

from __future__ import annotations

import datetime as dt
import json
import re
import uuid
from typing import Annotated, Any

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
)

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}$"
MAX_RECORD_BYTES = 256 * 1024  # the SQS/SNS message limit
MAX_PAYLOAD_BYTES = 32 * 1024
MAX_PAYLOAD_DEPTH = 16
MAX_FUTURE_SKEW = dt.timedelta(minutes=5)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
# Compact re-serialisation can only grow a JSON text through number formatting ("1e15" -> "1000000000000000.0",
# at most 4.5x); a record smaller than this cannot hold an oversized payload, so the exact measure is skipped.
_SIZE_CHECK_FROM = MAX_PAYLOAD_BYTES // 5
# In valid JSON text a NUL or a UTF-16 surrogate can only appear as an escape; without one, no walk is needed.
_SUSPICIOUS_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")

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
    def _bounded_payload(cls, value: dict[str, Any], info: ValidationInfo) -> dict[str, Any]:
        # parse_event tells, from the raw text, which of these checks can possibly fail; anything else gets all.
        checks = info.context or {}
        if checks.get("walk", True):
            _check_json_value(value, depth=1)
        if checks.get("size", True):
            size = len(_compact(value).encode("utf-8"))
            if size > MAX_PAYLOAD_BYTES:
                raise ValueError(f"is {size} bytes, more than {MAX_PAYLOAD_BYTES}")
        return value

    def payload_json(self) -> str:
        """The payload as compact JSON text."""
        return _compact(self.payload)

    def json_text(self) -> str:
        """The event as compact JSON text (the ingest path sends the validated original text instead)."""
        return json.dumps(
            {
                "event_id": str(self.event_id),
                "source": self.source,
                "type": self.type,
                "occurred_at": self.occurred_at.isoformat(),
                "payload": self.payload,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )


def _compact(value: dict[str, Any]) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


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


def _finite_float(text: str) -> float:
    value = float(text)
    if value in (float("inf"), float("-inf")):
        raise ValueError(f"number {text[:30]} is out of range")
    return value


def _depth_of(text: str) -> int:
    """Nesting depth of a JSON text, counted before parsing so a deep document cannot exhaust the stack."""
    brackets = text.count("{") + text.count("[")
    if brackets <= MAX_PAYLOAD_DEPTH + 1:
        return brackets  # cannot be deeper than the number of brackets: skip the character scan
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


# One decoder for every record: json.loads(..., parse_float=...) would build a new decoder per call.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_finite_float)


def parse_event(body: str) -> Event:
    """Parse and validate one event from its JSON text, or raise :class:`InvalidEventError`."""
    raw_surrogates = False
    try:
        size = len(body.encode("utf-8"))
    except UnicodeEncodeError:
        raw_surrogates = True
        size = len(body.encode("utf-8", errors="surrogatepass"))
    if size > MAX_RECORD_BYTES:
        raise InvalidEventError(f"record is {size} bytes, more than {MAX_RECORD_BYTES}")
    if _depth_of(body) > MAX_PAYLOAD_DEPTH + 1:
        raise InvalidEventError(f"payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
    try:
        data = _DECODER.decode(body)
    except ValueError as exc:
        raise InvalidEventError(f"not valid JSON: {exc}") from None
    checks = {
        "walk": raw_surrogates or _SUSPICIOUS_ESCAPE.search(body) is not None,
        "size": size >= _SIZE_CHECK_FROM,
    }
    event = validate_event(data, checks)
    return event


def validate_event(data: object, checks: dict[str, bool] | None = None) -> Event:
    if not isinstance(data, dict):
        raise InvalidEventError("an event must be a JSON object")
    try:
        return Event.model_validate(data, context=checks)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {err['msg']}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidEventError(f"schema violation: {problems}") from None
