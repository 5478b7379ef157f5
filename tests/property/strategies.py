"""Adversarial events as raw JSON text, each with what the contract says must become of it.

Every generated value carries its own expectation, computed from how it was built or by an oracle written apart
from rampart.events (positions and arithmetic, no regular expression, no datetime.fromisoformat): the validator
is checked against the contract, not against itself.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from hypothesis import strategies as st

UTC = dt.UTC
MAX_PAYLOAD_BYTES = 32 * 1024
MAX_DEPTH = 16
DIGITS = "0123456789"
HEX = "0123456789abcdefABCDEF"


# -- values ---------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Num:
    """A JSON number exactly as written."""

    text: str

    @property
    def is_integer_syntax(self) -> bool:
        return not any(c in self.text for c in ".eE")

    def value(self) -> Decimal:
        return Decimal(self.text)

    def allowed(self) -> bool:
        """The contract: finite, below 1e309 in magnitude, at most 340 digits after the decimal point."""
        if self.is_integer_syntax:
            return len(self.text.lstrip("-")) <= 309
        number = self.value()
        exponent = number.as_tuple().exponent
        assert isinstance(exponent, int)
        return exponent >= -340 and (number == 0 or number.adjusted() <= 308)

    def canonical(self) -> str:
        """As PostgreSQL writes it (plain decimal; what the size bound counts)."""
        return str(int(self.text)) if self.is_integer_syntax else format(self.value(), "f")


@dataclass(frozen=True)
class Obj:
    """A JSON object as written: its members in order, keys possibly repeated (which the contract refuses)."""

    pairs: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class Blob:
    """A long string, cheap to generate: ``char`` repeated ``count`` times."""

    char: str
    count: int

    @property
    def text(self) -> str:
        return self.char * self.count


def write(value: Any, ascii_only: bool) -> str:
    """Raw JSON text; strings either escaped to ASCII or written as they are (lone surrogates then stay raw)."""
    if isinstance(value, Num):
        return value.text
    if isinstance(value, Blob):
        return json.dumps(value.text, ensure_ascii=ascii_only)
    if isinstance(value, Obj):
        return "{" + ",".join(f"{write(k, ascii_only)}:{write(v, ascii_only)}" for k, v in value.pairs) + "}"
    if isinstance(value, list):
        return "[" + ",".join(write(v, ascii_only) for v in value) + "]"
    return json.dumps(value, ensure_ascii=ascii_only)


def expected(value: Any) -> Any:
    """The JSON value a reader must get back (numbers as exact decimals)."""
    if isinstance(value, Num):
        return value.value()
    if isinstance(value, Blob):
        return value.text
    if isinstance(value, Obj):
        return {k: expected(v) for k, v in value.pairs}
    if isinstance(value, list):
        return [expected(v) for v in value]
    return value


def canonical_bytes(value: Any) -> int:
    """Bytes of compact canonical JSON (the payload bound), computed on the expected value."""
    if isinstance(value, Num):
        return len(value.canonical())
    if isinstance(value, Blob | str):
        text = value.text if isinstance(value, Blob) else value
        return len(json.dumps(text, ensure_ascii=False).encode("utf-8", errors="surrogatepass"))
    if isinstance(value, Obj):
        members = dict(value.pairs)
        inner = sum(canonical_bytes(k) + 1 + canonical_bytes(v) for k, v in members.items())
        return 2 + inner + max(0, len(members) - 1)
    if isinstance(value, list):
        return 2 + sum(canonical_bytes(v) for v in value) + max(0, len(value) - 1)
    return len(json.dumps(value))


def payload_problems(value: Any, depth: int = 1) -> list[str]:
    """Why a payload value breaks the contract (empty: it does not)."""
    if isinstance(value, Num):
        return [] if value.allowed() else ["number"]
    if isinstance(value, Blob | str):
        text = value.text if isinstance(value, Blob) else value
        if "\x00" in text:
            return ["NUL"]
        if any(0xD800 <= ord(c) <= 0xDFFF for c in text):
            return ["surrogate"]
        return []
    if isinstance(value, Obj) and len({k for k, _ in value.pairs}) != len(value.pairs):
        return ["repeated key"]
    if isinstance(value, Obj | list):
        if depth > MAX_DEPTH:
            return ["depth"]
        members = [v for _, v in value.pairs] + [k for k, _ in value.pairs] if isinstance(value, Obj) else value
        return [p for member in members for p in payload_problems(member, depth + 1)]
    return []


# -- occurred_at ----------------------------------------------------------------------------------------------------
def oracle_instant(text: object) -> dt.datetime | None:
    """The UTC instant an RFC 3339 text denotes under the contract, or None: checked character by character."""
    if not isinstance(text, str) or not text.isascii() or len(text) < 20:
        return None

    def digits(part: str) -> int | None:
        return int(part) if part and all(c in DIGITS for c in part) else None

    year, month, day = digits(text[0:4]), digits(text[5:7]), digits(text[8:10])
    hour, minute, second = digits(text[11:13]), digits(text[14:16]), digits(text[17:19])
    if text[4] != "-" or text[7] != "-" or text[10] not in "Tt" or text[13] != ":" or text[16] != ":":
        return None
    if None in (year, month, day, hour, minute, second):
        return None
    rest = text[19:]
    micro = 0
    if rest.startswith("."):
        count = 1
        while count < len(rest) and rest[count] in DIGITS:
            count += 1
        fraction, rest = rest[1:count], rest[count:]
        if not 1 <= len(fraction) <= 9:
            return None
        micro = int(fraction[:6].ljust(6, "0"))
    if rest in ("Z", "z"):
        offset = dt.timedelta(0)
    elif len(rest) == 6 and rest[0] in "+-" and rest[3] == ":" and None not in (digits(rest[1:3]), digits(rest[4:6])):
        oh, om = int(rest[1:3]), int(rest[4:6])
        if om > 59 or oh * 60 + om > 14 * 60:
            return None
        offset = dt.timedelta(hours=oh, minutes=om) * (1 if rest[0] == "+" else -1)
    else:
        return None
    assert year is not None and month is not None and day is not None
    assert hour is not None and minute is not None and second is not None
    if hour > 23 or minute > 59 or second > 59:
        return None
    try:
        local = dt.datetime(year, month, day, hour, minute, second, micro)
        return (local - offset).replace(tzinfo=UTC)
    except (ValueError, OverflowError):
        return None


@dataclass(frozen=True)
class Stamp:
    """An occurred_at as sent (any JSON value)."""

    value: Any


_INSTANTS = st.datetimes(min_value=dt.datetime(1, 1, 2), max_value=dt.datetime(9999, 12, 30))
_RECENT = st.datetimes(min_value=dt.datetime(1999, 12, 31), max_value=dt.datetime(2026, 1, 1))


@st.composite
def rfc3339_texts(draw: st.DrawFn) -> str:
    """Well-formed RFC 3339 (every variation the contract allows), of any instant."""
    local = draw(st.one_of(_RECENT, _RECENT, _INSTANTS))
    text = local.strftime("%Y-%m-%d") + draw(st.sampled_from("Tt")) + local.strftime("%H:%M:%S")
    digits = draw(st.integers(0, 9))
    if digits:
        fraction = f"{local.microsecond:06d}" + draw(st.text(DIGITS, min_size=3, max_size=3))
        text += "." + fraction[:digits]
    minutes = draw(st.one_of(st.just(0), st.integers(-14 * 60, 14 * 60), st.sampled_from([-14 * 60, 14 * 60])))
    if minutes == 0 and draw(st.booleans()):
        text += draw(st.sampled_from(["Z", "z", "+00:00", "-00:00"]))
    else:
        sign = "-" if minutes < 0 else "+"
        text += f"{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    return text


def _mangle(text: str, how: str) -> str:
    mangles = {
        "space": text[:10] + " " + text[11:],
        "no offset": text[:19],
        "hour 24": text[:11] + "24" + text[13:],
        "second 60": text[:17] + "60" + text[19:],
        "10 fraction digits": text[:19] + ".1234567890Z",
        "comma": text[:19] + ",5Z",
        "offset +hhmm": text[:19] + "+0100",
        "offset +15": text[:19] + "+15:00",
        "offset +14:01": text[:19] + "+14:01",
        "no seconds": text[:16] + "Z",
        "basic format": text[:10].replace("-", "") + "T" + text[11:19].replace(":", "") + "Z",
        "full-width": text.translate({ord(d): ord(d) + 0xFEE0 for d in DIGITS}),
        "trailing newline": text + "\n",
        "leading space": " " + text,
        "date only": text[:10],
        "month 13": text[:5] + "13" + text[7:],
        "day 32": text[:8] + "32" + text[10:],
    }
    return mangles[how]


@st.composite
def stamps(draw: st.DrawFn) -> Stamp:
    kind = draw(st.sampled_from(["valid"] * 6 + ["mangled"] * 3 + ["epoch", "number", "keyword", "text"]))
    if kind == "valid":
        return Stamp(draw(rfc3339_texts()))
    if kind == "mangled":
        how = draw(st.sampled_from(sorted(_MANGLES)))
        return Stamp(_mangle(draw(rfc3339_texts()), how))
    if kind == "epoch":
        seconds = draw(st.integers(0, 2**40))
        return Stamp(draw(st.sampled_from([str(seconds), f"{seconds}.5", str(seconds * 1000), f"{seconds}e0"])))
    if kind == "number":
        return Stamp(draw(st.one_of(st.integers(0, 2**40), st.floats(0, 2e9, allow_nan=False))))
    if kind == "keyword":
        word = draw(st.sampled_from(["now", "today", "tomorrow", "yesterday", "epoch", "infinity", "-infinity"]))
        return Stamp(draw(st.sampled_from([word, word.upper(), f" {word}", "allballs", "J2451187"])))
    return Stamp(draw(st.text(max_size=40)))


_MANGLES = {
    "space",
    "no offset",
    "hour 24",
    "second 60",
    "10 fraction digits",
    "comma",
    "offset +hhmm",
    "offset +15",
    "offset +14:01",
    "no seconds",
    "basic format",
    "full-width",
    "trailing newline",
    "leading space",
    "date only",
    "month 13",
    "day 32",
}


# -- event_id -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class EventId:
    value: Any  # as sent
    canonical: str | None  # what must be stored; None: must be refused


@st.composite
def event_ids(draw: st.DrawFn, base: uuid.UUID) -> EventId:
    text = str(base)
    kind = draw(st.sampled_from(["lower"] * 4 + ["upper", "mixed", "hex", "braces", "urn", "moved", "odd"]))
    if kind == "lower":
        return EventId(text, text)
    if kind == "upper":
        return EventId(text.upper(), text)
    if kind == "mixed":
        flips = draw(st.lists(st.booleans(), min_size=36, max_size=36))
        return EventId("".join(c.upper() if f else c for c, f in zip(text, flips, strict=True)), text)
    variants = {
        "hex": base.hex,
        "braces": "{" + text + "}",
        "urn": "urn:uuid:" + text,
        "moved": text[:8] + text[9:13] + "-" + text[13:],
    }
    if kind in variants:
        return EventId(variants[kind], None)
    odd = draw(
        st.sampled_from(
            [" " + text, text + "\n", text[:-1], text + "0", text[:-1] + "g", text.replace("-", "\u2010"), 42, None]
        )
    )
    return EventId(odd, None)


# -- payloads -------------------------------------------------------------------------------------------------------
_SPECIAL_NUMBERS = [
    "0",
    "-0",
    "-0.0",
    "0.1",
    "0.30000000000000004",
    "9007199254740993",  # 2**53 + 1: a double cannot hold it
    "1.0000000000000000000000000001",
    "123456789012345678901234567890.123456789012345678901234567890",
    "1E+2",
    "1.50",
    "1e308",
    "9.999999e308",
    "1e309",
    "-1.8e308",
    "5e-324",
    "1e-340",
    "1e-341",
    "0e999",
    "0e-341",
    "1" + "0" * 308,
    "1" + "0" * 309,
    "-" + "9" * 309,
]


@st.composite
def numbers(draw: st.DrawFn) -> Num:
    kind = draw(st.sampled_from(["int", "int", "decimal", "decimal", "special", "long"]))
    if kind == "int":
        return Num(str(draw(st.integers(-(2**70), 2**70))))
    if kind == "special":
        return Num(draw(st.sampled_from(_SPECIAL_NUMBERS)))
    if kind == "long":
        return Num(draw(st.sampled_from(["", "-"])) + "1" + draw(st.text(DIGITS, min_size=300, max_size=320)))
    sign = draw(st.sampled_from(["", "-"]))
    whole = draw(st.one_of(st.just("0"), st.integers(1, 10**20).map(str)))
    text = sign + whole
    if draw(st.booleans()):
        text += "." + draw(st.text(DIGITS, min_size=1, max_size=40))
    if draw(st.booleans()) or text.lstrip("-") == whole:
        exponent = draw(st.one_of(st.integers(-30, 30), st.integers(-400, 400)))
        text += draw(st.sampled_from(["e", "E"])) + draw(st.sampled_from(["", "+"]) if exponent >= 0 else st.just(""))
        text += str(exponent)
    return Num(text)


_AWKWARD = ["\x00", "\ud800", "\udfff", "\ud83d", "\ude00", "😀", "\u2028", "\x7f", "\ufeff", "\uffff", '"', "\\", "\n"]
_TEXT = st.text(  # every code point (surrogates and NUL included), the awkward ones often
    alphabet=st.one_of(st.characters(codec=None, exclude_categories=()), st.sampled_from(_AWKWARD)),
    max_size=12,
)
_PLAIN_TEXT = st.text(max_size=12)


def json_values(max_leaves: int = 12) -> st.SearchStrategy[Any]:
    leaves = st.one_of(
        numbers(),
        _PLAIN_TEXT,
        _TEXT,
        st.booleans(),
        st.none(),
    )
    return st.recursive(
        leaves,
        lambda children: st.one_of(
            st.lists(children, max_size=4),
            st.lists(st.tuples(_PLAIN_TEXT, children), max_size=4).map(lambda p: Obj(tuple(p))),
        ),
        max_leaves=max_leaves,
    )


@st.composite
def payloads(draw: st.DrawFn) -> Any:
    kind = draw(st.sampled_from(["object"] * 8 + ["repeated keys", "deep", "large", "not an object"]))
    if kind == "object":
        pairs = draw(st.lists(st.tuples(st.one_of(_PLAIN_TEXT, _TEXT), json_values()), max_size=5))
        return Obj(tuple(pairs))
    if kind == "repeated keys":
        first, last = draw(json_values(3)), draw(json_values(3))
        return Obj((("k", first), ("other", Num("1")), ("k", last)))
    if kind == "deep":
        value: Any = Num("1")
        for _ in range(draw(st.integers(13, 18))):
            value = Obj((("d", value),)) if draw(st.booleans()) else [value]
        return Obj((("deep", value),))
    if kind == "large":
        char = draw(st.sampled_from(["x", "é", "€", "😀", '"', "\\", "\u007f", "\n"]))
        size = draw(st.integers(MAX_PAYLOAD_BYTES - 300, MAX_PAYLOAD_BYTES + 300))
        escaped = len(json.dumps(char, ensure_ascii=False).encode("utf-8")) - 2
        return Obj((("blob", Blob(char, size // escaped - 4)),))
    return draw(st.one_of(json_values(4).filter(lambda v: not isinstance(v, Obj)), st.just([])))


# -- whole records --------------------------------------------------------------------------------------------------
@dataclass
class Case:
    """One record: its SQS body and what must become of it."""

    body: str
    event_id: EventId
    source: Any
    type: Any
    stamp: Stamp
    payload: Any
    problems: list[str] = field(default_factory=list)

    def instant(self) -> dt.datetime | None:
        return oracle_instant(self.stamp.value)


IDENTIFIERS = st.from_regex(r"\A[a-z][a-z0-9_.-]{0,20}\Z")


@st.composite
def cases(draw: st.DrawFn, base: uuid.UUID, focus: str = "all") -> Case:
    """An event, adversarial in the ``focus`` field (or in all of them)."""
    every = focus == "all"
    event_id = draw(event_ids(base)) if every or focus == "event_id" else EventId(str(base), str(base))
    stamp = draw(stamps()) if every or focus == "occurred_at" else Stamp("2025-06-01T12:00:00Z")
    payload = draw(payloads()) if every or focus == "payload" else Obj((("n", Num("1")),))
    if focus == "numbers":
        payload = Obj(tuple((f"n{i}", n) for i, n in enumerate(draw(st.lists(numbers(), min_size=1, max_size=8)))))
    source = draw(st.one_of(IDENTIFIERS, IDENTIFIERS, st.sampled_from(["Billing", "a" * 64, "", 7]))) if every else "p"
    type_ = draw(IDENTIFIERS) if every else "property.test"
    members: list[tuple[str, Any]] = [
        ("event_id", event_id.value),
        ("source", source),
        ("type", type_),
        ("occurred_at", stamp.value),
        ("payload", payload),
    ]
    if every and draw(st.integers(0, 19)) == 0:
        members.append(("extra", 1))
    if every and draw(st.integers(0, 19)) == 0:
        members.pop(draw(st.integers(0, len(members) - 1)))
    ascii_only = draw(st.booleans())
    body = write(Obj(tuple(members)), ascii_only)
    if every and draw(st.integers(0, 29)) == 0:
        body = draw(st.sampled_from([body[: len(body) // 2], body + "x", "[" + body + "]", "not json"]))
    case = Case(body, event_id, source, type_, stamp, payload)
    case.problems = _problems(case, members)
    return case


def _is_identifier(value: Any) -> bool:
    return (
        isinstance(value, str)
        and 1 <= len(value) <= 63
        and value.isascii()
        and value[0] in "abcdefghijklmnopqrstuvwxyz"
        and all(c in "abcdefghijklmnopqrstuvwxyz0123456789_.-" for c in value)
    )


def _problems(case: Case, members: list[tuple[str, Any]]) -> list[str]:
    """The contract's verdict, apart from the occurred_at window (which depends on the clock: see the test)."""
    problems = []
    try:
        parsed = json.loads(case.body)
    except ValueError:
        return ["not JSON"]
    if not isinstance(parsed, dict):
        return ["not an object"]
    if {name for name, _ in members} != {"event_id", "source", "type", "occurred_at", "payload"}:
        problems.append("fields")
    if case.event_id.canonical is None:
        problems.append("event_id")
    if not _is_identifier(case.source) or not _is_identifier(case.type):
        problems.append("identifier")
    if case.instant() is None:
        problems.append("occurred_at syntax")
    if not isinstance(case.payload, Obj):
        problems.append("payload not an object")
    else:
        problems += payload_problems(case.payload)
        if canonical_bytes(case.payload) > MAX_PAYLOAD_BYTES:
            problems.append("size")
    return problems
