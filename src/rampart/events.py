"""The event: its contract, and the validation every record passes before it may reach the database.

One contract, strict, decided here and only here (docs/contracts.md, "The event contract"; the JSON Schema
producers can check against first is generated from :class:`Event` into docs/event.schema.json):

- ``event_id``: a UUID in its hyphenated 8-4-4-4-12 form (either case); stored and served in lowercase.
- ``source``, ``type``: identifiers, ``IDENTIFIER_PATTERN``.
- ``occurred_at``: an RFC 3339 date-time, nothing else (see :func:`parse_rfc3339`), inside the plausible window
  [2000-01-01T00:00:00Z, now + 5 minutes]; stored as that UTC instant, to the microsecond.
- ``payload``: a JSON object, nested at most 16 levels, at most 32 KiB as compact canonical JSON, without NUL or
  unpaired surrogates; its numbers are exact decimals (stored and served digit for digit, never rounded to a
  binary float), finite, below 1e309 in magnitude and with at most 340 digits after the decimal point. No key
  appears twice in one object (I-JSON, RFC 7493): parsers disagree on which of two equal keys wins.

The database never parses what the producer wrote: the insert carries the values validated here, in canonical
form (:func:`storage_row`), the payload written again with its numbers exact (parsed as decimals, never as binary
floats). The differential property tests (tests/property/) prove that what is accepted reads back as it was sent.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import (
    ConfigDict,
    Field,
    GetCoreSchemaHandler,
    TypeAdapter,
    ValidationError,
    WithJsonSchema,
    with_config,
)
from pydantic_core import CoreSchema, core_schema
from typing_extensions import TypedDict  # pydantic needs this one on Python < 3.12

IDENTIFIER_PATTERN = r"^[a-z][a-z0-9_.-]{0,62}$"
MAX_RECORD_BYTES = 256 * 1024  # the SQS/SNS message limit
MAX_PAYLOAD_BYTES = 32 * 1024
MAX_PAYLOAD_DEPTH = 16
MAX_FUTURE_SKEW = dt.timedelta(minutes=5)
EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
MAX_FRACTION_DIGITS = 9  # nanoseconds; digits after the 6th are truncated (the instant is floored to the µs)
MAX_NUMBER_EXPONENT = 308  # |x| < 1e309, the decimal reach of an IEEE-754 double
MAX_NUMBER_SCALE = 340  # digits after the decimal point: every double's shortest form fits (5e-324)

# RFC 3339 section 5.6 ("date-time"), with the offset limited to ±14:00 (the widest in use) and at most 9
# fractional digits.
# ASCII digits only ([0-9], never \d, which would match any Unicode digit). Also published in the JSON Schema.
RFC3339_PATTERN = (
    r"^[0-9]{4}-(?:0[1-9]|1[0-2])-(?:0[1-9]|[12][0-9]|3[01])[Tt](?:[01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9]"
    r"(?:\.[0-9]{1,9})?(?:[Zz]|[+-](?:(?:0[0-9]|1[0-3]):[0-5][0-9]|14:00))$"
)
UUID_PATTERN = r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$"
_RFC3339 = re.compile(RFC3339_PATTERN[1:-1])
# What an almost-RFC 3339 text looks like, to say precisely what is wrong with it: patterns, not compiled objects,
# as they serve only the rejection path (re compiles and caches them on first use there).
_LOOSE_DATE_TIME = r"([0-9]{4})-([0-9]{2})-([0-9]{2})([Tt ])([0-9]{2}):([0-9]{2})(?::([0-9]{2}))?(?:[.,]([0-9]*))?(.*)"
_EPOCH_LIKE = r"[+-]?[0-9]+(?:\.[0-9]*)?(?:[eE][+-]?[0-9]+)?"
_DATE_ONLY = r"[0-9]{4}-[0-9]{2}-[0-9]{2}"
_OFFSET = r"[Zz]|[+-][0-9]{2}:[0-9]{2}"
# Words PostgreSQL's timestamp input understands; none of them is a date-time the producer wrote.
_SPECIAL_WORDS = {"now", "today", "tomorrow", "yesterday", "epoch", "infinity", "-infinity", "+infinity", "allballs"}
RFC3339_FORM = "YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm)"

# In valid JSON text a NUL or a UTF-16 surrogate can only appear as an escape, and an integer too large only as
# a run of more than 309 digits; without one of these, no walk is needed.
_SUSPICIOUS_ESCAPE = re.compile(r"\\u(?:0000|[dD][89a-fA-F])")
# A run of more than MAX_NUMBER_EXPONENT ASCII digits, looked for in the UTF-8 text with every digit made "0" and
# every other byte a space (an ASCII digit is one byte in UTF-8, and no byte of another character is one): the same
# answer as re.search("[0-9]{309,}"), 8x faster (1.1 KB: 6.3 -> 0.8 µs), which every record over 308 bytes pays.
_DIGITS_AS_ZERO = bytes(0x30 if 0x30 <= byte <= 0x39 else 0x20 for byte in range(256))
_LONG_DIGIT_RUN = b"0" * (MAX_NUMBER_EXPONENT + 1)
_INTEGER_LIMIT = 10 ** (MAX_NUMBER_EXPONENT + 1)
_OUT_OF_RANGE = f"out of range (magnitude 1e{MAX_NUMBER_EXPONENT + 1} or more)"


class InvalidEventError(ValueError):
    """A record that can never be stored; ``reason`` is safe to log and to attach to the DLQ message."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


# -- occurred_at: RFC 3339 only ----------------------------------------------------------------------------------
def parse_rfc3339(value: object) -> dt.datetime:
    """The UTC instant of an RFC 3339 date-time, floored to the microsecond; ``ValueError`` says why not.

    Accepted: ``YYYY-MM-DDTHH:MM:SS``, optionally ``.`` and 1 to 9 fractional digits, then ``Z`` or ``±hh:mm``
    (at most ±14:00); ``T`` and ``Z`` in either case. Refused, each with its own reason: anything not a string
    (JSON numbers), Unix times written as digits, PostgreSQL's words (``now``, ``epoch``, ``infinity``...), a date
    without a time, a time without an offset, hour 24, second 60 (a leap second: Python, and so this service,
    cannot represent it), more than 9 fractional digits, non-ASCII digits, dates that do not exist (Feb 30), and
    instants outside years 0001-9999 once converted to UTC.
    """
    if not isinstance(value, str):
        raise ValueError(_NOT_A_STRING)
    if _RFC3339.fullmatch(value) is None:
        raise ValueError(_why_not_rfc3339(value))
    return _utc_instant(value)


def _utc_instant(value: str) -> dt.datetime:
    """The UTC instant of a text that matches RFC3339_PATTERN."""
    text = value if value[10] == "T" and value[-1] != "z" else value.upper()
    try:
        local = dt.datetime.fromisoformat(text)  # the format is settled by the pattern; this only builds the value
    except ValueError:
        raise ValueError(f"{value[:10]} is not a date that exists") from None
    try:
        return local.astimezone(dt.UTC)
    except (OverflowError, ValueError):
        raise ValueError("is outside years 0001-9999 once converted to UTC") from None


def _why_not_rfc3339(text: str) -> str:
    shown = text if len(text) <= 40 else text[:37] + "..."
    expected = f"expected an RFC 3339 date-time, {RFC3339_FORM}"
    if text.strip().lower() in _SPECIAL_WORDS:
        return f"{shown!r} is a keyword, not a date-time; {expected}"
    if re.fullmatch(_EPOCH_LIKE, text):
        return f"{shown!r} looks like a Unix time; {expected}"
    if re.fullmatch(_DATE_ONLY, text):
        return f"{shown!r} is a date without a time; {expected}"
    loose = re.fullmatch(_LOOSE_DATE_TIME, text, re.DOTALL)
    if not text.isascii() or loose is None:
        return f"{shown!r} is not one; {expected}"
    _y, _mo, _d, sep, hour, _mi, second, fraction, rest = loose.groups()
    if sep == " ":
        return f"{shown!r} separates date and time with a space; {expected}"
    if second is None:
        return f"{shown!r} has no seconds; {expected}"
    if hour == "24":
        return "hour 24 is not allowed; write 00:00:00 of the next day"
    if second == "60":
        return "second 60 (a leap second) cannot be represented; write :59 or the next second"
    if fraction is not None and len(fraction) > MAX_FRACTION_DIGITS:
        return f"has more than {MAX_FRACTION_DIGITS} fractional digits"
    if not rest:
        return f"{shown!r} has no UTC offset; end it with Z or ±hh:mm"
    if re.fullmatch(_OFFSET, rest) and rest not in "Zz":
        return f"the UTC offset {rest} is beyond ±14:00"
    return f"{shown!r} is not one; {expected}"


def window_problem(instant: dt.datetime, now: dt.datetime) -> str | None:
    """Why ``occurred_at`` is outside the plausible window at ``now``, or None."""
    if instant < EARLIEST:
        return "is before 2000-01-01T00:00:00Z"
    if instant > now + MAX_FUTURE_SKEW:
        return "is more than 5 minutes in the future"
    return None


@dataclass(frozen=True)
class _TextThen:
    """pydantic metadata: the value must be a string matching ``pattern``, checked inside pydantic-core (no Python
    call: this is the hot path of every record), and ``convert`` then makes the field's value of it. The errors
    of the first step are worded for producers by :func:`validate_event`."""

    pattern: str
    convert: Callable[[str], Any]

    def __get_pydantic_core_schema__(self, _source: Any, _handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.chain_schema(
            [
                core_schema.str_schema(pattern=self.pattern),
                core_schema.no_info_plain_validator_function(self.convert),
            ]
        )


_NOT_A_STRING = f"must be a string holding an RFC 3339 date-time ({RFC3339_FORM})"
_NOT_A_UUID = "must be a UUID written as 8-4-4-4-12 hexadecimal digits (no braces, no urn:uuid:)"


def _wording(error: Any, data: dict[str, Any]) -> str:
    """The message for one pydantic error, in the contract's words where pydantic's would only quote a regex."""
    field = error["loc"][0] if error["loc"] else None
    kind = error["type"]
    if field == "occurred_at" and kind == "string_pattern_mismatch":
        return _why_not_rfc3339(data["occurred_at"])
    if field == "occurred_at" and kind == "string_type":
        return _NOT_A_STRING
    if field == "event_id" and kind in ("string_pattern_mismatch", "string_type"):
        return _NOT_A_UUID
    return str(error["msg"]).removeprefix("Value error, ")


_RFC3339_DESCRIPTION = (
    f"An RFC 3339 date-time, {RFC3339_FORM}: a full date and time with an explicit offset (at most ±14:00). "
    "Not accepted: Unix times, words such as 'now', a date alone, a time without an offset, hour 24, second 60. "
    f"At most {MAX_FRACTION_DIGITS} fractional digits; digits after the sixth are dropped (stored to the microsecond)."
)
EventId = Annotated[
    str,
    _TextThen(UUID_PATTERN, str.lower),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": UUID_PATTERN,
            "description": "A UUID, 8-4-4-4-12 hexadecimal digits in either case; the idempotency key.",
        }
    ),
]
OccurredAt = Annotated[
    dt.datetime,
    _TextThen(RFC3339_PATTERN, _utc_instant),  # the window is checked by validate_event, against one clock reading
    WithJsonSchema(
        {
            "type": "string",
            "format": "date-time",
            "pattern": RFC3339_PATTERN,
            "description": _RFC3339_DESCRIPTION
            + " Must lie between 2000-01-01T00:00:00Z and 5 minutes after the time it is received.",
        }
    ),
]
Identifier = Annotated[str, Field(pattern=IDENTIFIER_PATTERN, min_length=1, max_length=63)]
_PAYLOAD_DESCRIPTION = (
    f"A JSON object, nested at most {MAX_PAYLOAD_DEPTH} levels, at most {MAX_PAYLOAD_BYTES} bytes as compact JSON "
    "(UTF-8, numbers written as plain decimals), without NUL characters or unpaired surrogates. Numbers are exact "
    f"decimals, stored and returned digit for digit: finite, below 1e{MAX_NUMBER_EXPONENT + 1} in magnitude, "
    f"at most {MAX_NUMBER_SCALE} digits after the decimal point. Keys are unique in every object (I-JSON)."
)


@with_config(
    ConfigDict(
        extra="forbid",
        title="Rampart event",
        json_schema_extra={"description": "One event, as a producer publishes it to the SNS topic."},
    )
)
class Event(TypedDict):
    """One event as producers publish it (``received_at`` is not here: the database sets it). A typed dict that
    pydantic validates (cheaper per record than a model instance); build it with :func:`parse_event` or
    :func:`validate_event`, which also check what the types cannot say (the payload's bounds, the time window)."""

    event_id: EventId
    source: Identifier
    type: Identifier
    occurred_at: OccurredAt
    payload: Annotated[dict[str, Any], Field(description=_PAYLOAD_DESCRIPTION)]


_EVENT = TypeAdapter(Event)
_validate = _EVENT.validator.validate_python  # the schema validator itself: 0.2 µs less per record than the adapter


def event_json_schema() -> dict[str, Any]:
    """The JSON Schema of an event (committed as docs/event.schema.json)."""
    schema = _EVENT.json_schema(mode="validation")
    return {"$schema": "https://json-schema.org/draft/2020-12/schema", "$id": "event.schema.json", **schema}


# (canonical event_id, the JSON array the store inserts): what the ingest hands to the store for one event.
StorageRow = tuple[str, str]


# The UTC instant's ISO text as ``isoformat()`` writes it for an aware datetime in UTC, 0.2 µs cheaper a record: the
# same instant as a naive datetime (its isoformat asks no time zone for an offset), then the offset, always +00:00.
_UTC_EPOCH = dt.datetime(1970, 1, 1, tzinfo=dt.UTC)
_NAIVE_EPOCH = dt.datetime(1970, 1, 1)  # naive on purpose: see above


def storage_row(event: Event) -> StorageRow:
    """The row the store inserts, as one JSON array of the validated values in canonical form: ``event_id``
    (lowercase), ``source``, ``type``, the UTC ``occurred_at``, and the payload written again from the validated
    value (:func:`payload_json`, numbers exact). Nothing of the producer's text reaches the database.

    The first four are safe to write between quotes unescaped: hexadecimal digits and hyphens, identifiers by their
    pattern, and a fixed-format timestamp.
    """
    event_id = event["event_id"]
    occurred = (_NAIVE_EPOCH + (event["occurred_at"] - _UTC_EPOCH)).isoformat()  # the fraction only when not zero
    payload = payload_json(event["payload"])
    return event_id, f'["{event_id}","{event["source"]}","{event["type"]}","{occurred}+00:00",{payload}]'


# Decimals (JSON numbers with a fraction or an exponent) must be written exactly, which json's encoder cannot do:
# it would quote whatever ``default`` returns. So they go out as strings starting with a lone surrogate, which no
# validated payload can contain (the walk refuses them), and those strings become the numbers again.
_DECIMAL_MARK = "\ud800"
_MARKED_DECIMAL = re.compile('"\ud800([-+.0-9eE]+)"')


def _mark_decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return _DECIMAL_MARK + str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


# One compact encoder built once (json.dumps would build it on every call); the pure-Python one where _json is absent.
_c_make_encoder = getattr(json.encoder, "c_make_encoder", None)
if _c_make_encoder is not None:
    _encode_compact = _c_make_encoder(
        None, _mark_decimal, json.encoder.encode_basestring, None, ":", ",", False, False, True
    )
else:  # pragma: no cover - CPython always has the C encoder
    _encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), default=_mark_decimal, check_circular=False)

    def _encode_compact(value: Any, _level: int) -> Any:
        return _encoder.iterencode(value)


def payload_json(payload: dict[str, Any]) -> str:
    """A validated payload as compact JSON: keys and strings as JSON escapes them, integers and decimals digit for
    digit (a decimal as ``str(Decimal)``: ``1.50``, ``1E+2``)."""
    text = "".join(_encode_compact(payload, 0))
    return _MARKED_DECIMAL.sub(r"\1", text) if _DECIMAL_MARK in text else text


# -- payload -------------------------------------------------------------------------------------------------------
def _plain_decimal(value: object) -> str:
    if isinstance(value, Decimal):
        return format(value, "f")
    raise TypeError(f"{type(value).__name__} is not JSON")


def canonical_size(payload: dict[str, Any]) -> int:
    """Bytes of the payload as compact JSON, numbers written as plain decimals (as PostgreSQL writes them)."""
    decimals = 0

    def plain(value: object) -> str:
        nonlocal decimals
        decimals += 1
        return _plain_decimal(value)

    text = json.dumps(payload, separators=(",", ":"), ensure_ascii=False, default=plain)
    # ``default`` can only return a string, which json.dumps quotes: two bytes too many per decimal.
    return len(text.encode("utf-8")) - 2 * decimals


def _check_json_value(value: Any, depth: int) -> None:
    """Reject what PostgreSQL's jsonb cannot hold (NUL, lone surrogates), over-deep nesting, too large integers.

    Depth counts objects and arrays only (the payload itself is level 1), as the bracket count before parsing does.
    """
    if isinstance(value, dict | list) and depth > MAX_PAYLOAD_DEPTH:
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
    elif isinstance(value, int) and not -_INTEGER_LIMIT < value < _INTEGER_LIMIT:
        raise ValueError(f"has an integer {_OUT_OF_RANGE}")


def _check_string(text: str) -> None:
    if "\x00" in text:
        raise ValueError("contains a NUL character (\\u0000), which PostgreSQL jsonb rejects")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("contains an unpaired UTF-16 surrogate") from None


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not valid JSON")


# How much longer than their text the numbers of the record being parsed become when written as plain decimals
# (only exponent forms grow: "1e300" is 301 digits). Per thread: the decoder is shared, a gateway has threads.
_growth = threading.local()


def _number_out_of_range(text: str, why: str) -> InvalidEventError:
    shown = text if len(text) <= 30 else text[:27] + "..."
    return InvalidEventError(f"payload: number {shown} {why}")


def _exact_number(text: str) -> Decimal:
    """A JSON number with a fraction or an exponent, as the exact decimal it denotes."""
    try:
        number = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the JSON scanner only hands over valid number texts
        raise _number_out_of_range(text, "is not a number") from None
    exponent = number.as_tuple().exponent
    if not isinstance(exponent, int):  # pragma: no cover - JSON has no NaN or Infinity literals
        raise _number_out_of_range(text, "is not finite")
    if exponent < -MAX_NUMBER_SCALE:
        raise _number_out_of_range(text, f"has more than {MAX_NUMBER_SCALE} digits after the decimal point")
    if number and number.adjusted() > MAX_NUMBER_EXPONENT:
        raise _number_out_of_range(text, f"is {_OUT_OF_RANGE}")
    if exponent > 0 or "e" in text or "E" in text:
        _growth.bytes += len(format(number, "f")) - len(text)
    return number


# A JSON string, or an unterminated one running to the end of the text; a backslash escapes the character after it,
# whatever that is. What _depth_of skips: brackets inside strings are text, not nesting.
_JSON_STRING = re.compile(r'"[^"\\]*(?:\\.[^"\\]*)*"?', re.DOTALL)
# bytes.translate: "{" becomes "[", "}" becomes "]", every other byte is deleted but quotes where they are kept (no
# byte of a multi-byte UTF-8 character is one of these five).
_OPEN_AS_BRACKET = bytes(range(256)).replace(b"{", b"[").replace(b"}", b"]")
_NOT_A_BRACKET = bytes(byte for byte in range(256) if byte not in b"[]{}")
_NOT_A_BRACKET_OR_QUOTE = bytes(byte for byte in range(256) if byte not in b'[]{}"')


def _depth_of(text: str) -> int:
    """Nesting depth of a JSON text, counted before parsing so a deep document cannot exhaust the stack."""
    brackets = text.count("{") + text.count("[")
    if brackets <= MAX_PAYLOAD_DEPTH + 1:
        return brackets  # cannot be deeper than the number of brackets: skip the scan
    # The brackets outside strings, in order, found without a Python loop over every character (that took 50 µs for a
    # 1.7 KB record with 24 brackets; this 5).
    if "\\" in text:  # escapes: the strings are found by the regex engine
        outside = _JSON_STRING.sub("", text).encode("utf-8", errors="surrogatepass")
        in_order = outside.translate(_OPEN_AS_BRACKET, _NOT_A_BRACKET)
    else:  # every quote opens or closes a string: of the quotes and brackets, keep what lies outside each pair
        marks = text.encode("utf-8", errors="surrogatepass").translate(_OPEN_AS_BRACKET, _NOT_A_BRACKET_OR_QUOTE)
        in_order = b"".join(marks.split(b'"')[::2])
    depth = deepest = 0
    for bracket in in_order:
        if bracket == 0x5B:  # [
            depth += 1
            deepest = depth if depth > deepest else deepest  # not max(): a call costs more than the rest of the loop
        else:
            depth -= 1
    return deepest


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    """An object whose keys are all different (I-JSON, RFC 7493): parsers disagree on which of two equal keys wins
    (the first, the last, an error), so a repeated key would let two readers see two different events."""
    members = dict(pairs)
    if len(members) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                shown = key if len(key) <= 30 else key[:27] + "..."
                raise InvalidEventError(f"the key {shown!r} appears more than once in an object")
            seen.add(key)
    return members


# One decoder for every record: json.loads(..., parse_float=...) would build a new decoder per call.
# Integers keep the C parser (a hook would cost ~0.15 µs each); one too long for the limit is found by the walk.
_DECODER = json.JSONDecoder(parse_constant=_reject_constant, parse_float=_exact_number, object_pairs_hook=_unique_keys)
# The scanner decode() calls (see _decode): an attribute of every JSONDecoder, which typeshed does not declare.
_scan: Callable[[str, int], tuple[Any, int]] = _DECODER.scan_once  # type: ignore[attr-defined]


def _decode(body: str) -> Any:
    """``_DECODER.decode(body)``, 0.5 µs cheaper per record. decode() skips whitespace around the value, calls the
    scanner and refuses text after the value; when the value fills the whole text (no whitespace around it: the
    usual case), the scanner's answer is decode()'s. Anything else, errors included, goes through decode() itself,
    so every result and every message is decode()'s own."""
    try:
        data, end = _scan(body, 0)
    except (StopIteration, ValueError):
        end = -1
    if end == len(body):
        return data
    _growth.bytes = 0  # the scanner may have counted some numbers already
    return _DECODER.decode(body)


def parse_event(body: str, now: dt.datetime | None = None) -> Event:
    """Parse and validate one event from its JSON text, or raise :class:`InvalidEventError`. ``now`` is the clock
    reading ``occurred_at`` is checked against (a batch reads the clock once); the current time by default."""
    raw_surrogates = False
    if body.isascii():  # a flag CPython keeps on every str: one byte a character, and no surrogate
        size = len(body)
    else:
        try:
            size = len(body.encode("utf-8"))
        except UnicodeEncodeError:
            raw_surrogates = True
            size = len(body.encode("utf-8", errors="surrogatepass"))
    if size > MAX_RECORD_BYTES:
        raise InvalidEventError(f"record is {size} bytes, more than {MAX_RECORD_BYTES}")
    if _depth_of(body) > MAX_PAYLOAD_DEPTH + 1:
        raise InvalidEventError(f"payload is nested deeper than {MAX_PAYLOAD_DEPTH} levels")
    _growth.bytes = 0
    try:
        data = _decode(body)
    except InvalidEventError:
        raise
    except ValueError as exc:
        if str(exc).startswith("Exceeds the limit"):  # Python's own bound on integer digits (4300)
            raise InvalidEventError(f"payload: an integer is {_OUT_OF_RANGE}") from None
        raise InvalidEventError(f"not valid JSON: {exc}") from None
    walk = (
        raw_surrogates
        # Every JSON escape starts with a backslash: when there is none (a memchr), there is no \u escape either.
        or ("\\" in body and _SUSPICIOUS_ESCAPE.search(body) is not None)
        or (size > MAX_NUMBER_EXPONENT and _has_long_digit_run(body))
    )
    # Compact re-serialisation never makes strings, keys or integers longer than their JSON text; only exponent
    # numbers grow. Below this bound the payload cannot be too large, so the exact measure is skipped.
    return _validated(data, walk, size + _growth.bytes > MAX_PAYLOAD_BYTES, now)


def _has_long_digit_run(text: str) -> bool:
    """Whether ``text`` holds more than MAX_NUMBER_EXPONENT ASCII digits in a row (a JSON integer too large)."""
    return _LONG_DIGIT_RUN in text.encode("utf-8", errors="surrogatepass").translate(_DIGITS_AS_ZERO)


def validate_event(data: object, checks: dict[str, bool] | None = None, now: dt.datetime | None = None) -> Event:
    """Validate a parsed event against the whole contract, ``occurred_at``'s window at ``now`` included."""
    if checks is None:
        return _validated(data, True, True, now)
    return _validated(data, checks["walk"], checks["size"], now)


def _validated(data: object, walk: bool, size_check: bool, now: dt.datetime | None) -> Event:
    """validate_event; ``walk`` and ``size_check`` say which of the payload's bounds can possibly fail."""
    if not isinstance(data, dict):
        raise InvalidEventError("an event must be a JSON object")
    try:
        event: Event = _validate(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'event'}: {_wording(err, data)}"
            for err in exc.errors(include_input=False, include_url=False)
        )
        raise InvalidEventError(f"schema violation: {problems}") from None
    if problem := window_problem(event["occurred_at"], now or dt.datetime.now(dt.UTC)):
        raise InvalidEventError(f"schema violation: occurred_at: {problem}")
    # The payload's bounds. parse_event tells from the raw text which of them can possibly fail; validate_event
    # without ``checks`` runs all.
    try:
        if walk:
            _check_json_value(event["payload"], depth=1)
        if size_check:
            size = canonical_size(event["payload"])
            if size > MAX_PAYLOAD_BYTES:
                raise ValueError(f"is {size} bytes, more than {MAX_PAYLOAD_BYTES}")
    except ValueError as exc:
        raise InvalidEventError(f"schema violation: payload: {exc}") from None
    return event


def event_json_schema_text() -> str:
    """docs/event.schema.json, byte for byte (``make openapi`` writes it; a test checks it has not drifted)."""
    return json.dumps(event_json_schema(), indent=2, sort_keys=True, ensure_ascii=False) + "\n"


if __name__ == "__main__":
    print(event_json_schema_text(), end="")
