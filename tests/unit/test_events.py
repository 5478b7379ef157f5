import datetime as dt
import json
import random
import re
from decimal import Decimal

import pytest

from rampart.events import (
    MAX_NUMBER_EXPONENT,
    MAX_PAYLOAD_BYTES,
    MAX_PAYLOAD_DEPTH,
    Event,
    InvalidEventError,
    canonical_size,
    parse_event,
    parse_rfc3339,
    storage_row,
)
from rampart.events import _depth_of as depth_of
from rampart.events import _has_long_digit_run as has_long_digit_run
from tests.conftest import make_event


def test_valid_event_parses() -> None:
    raw = make_event()
    event = parse_event(json.dumps(raw))
    assert event["event_id"] == raw["event_id"]
    assert event["occurred_at"].tzinfo is not None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"event_id": 12345}, "event_id"),
        ({"source": "Billing"}, "source"),
        ({"source": "a" * 64}, "source"),
        ({"type": "x; DROP TABLE events"}, "type"),
        ({"occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),  # no timezone
        ({"occurred_at": "1764000229"}, "Unix time"),  # pydantic would read it as epoch seconds
        ({"event_id": "{0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d}"}, "event_id"),
        ({"occurred_at": 1700000000}, "occurred_at"),
        ({"occurred_at": "1999-12-31T23:59:59Z"}, "occurred_at"),
        ({"payload": [1, 2]}, "payload"),
        ({"payload": "text"}, "payload"),
        ({"extra": 1}, "extra"),
    ],
)
def test_schema_violations_name_the_field(change: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidEventError) as err:
        parse_event(json.dumps(make_event(**change)))
    assert reason in err.value.reason


def test_far_future_is_rejected_but_small_skew_is_not() -> None:
    now = dt.datetime.now(dt.UTC)
    parse_event(json.dumps(make_event(occurred_at=(now + dt.timedelta(minutes=4)).isoformat())))
    with pytest.raises(InvalidEventError, match="future"):
        parse_event(json.dumps(make_event(occurred_at=(now + dt.timedelta(minutes=6)).isoformat())))


def test_missing_fields() -> None:
    raw = make_event()
    del raw["source"]
    with pytest.raises(InvalidEventError, match="source"):
        parse_event(json.dumps(raw))


@pytest.mark.parametrize("body", ["", "{", "[]", "null", "42", '"text"', "{'a': 1}"])
def test_not_an_object(body: str) -> None:
    with pytest.raises(InvalidEventError):
        parse_event(body)


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
def test_non_json_constants_rejected(constant: str) -> None:
    body = json.dumps(make_event()).replace('"amount": 42', f'"amount": {constant}')
    with pytest.raises(InvalidEventError, match="not valid JSON"):
        parse_event(body)


def test_nul_in_payload_value_or_key_rejected() -> None:
    for payload in ({"a": "x\u0000y"}, {"a\u0000": 1}, {"a": ["ok", {"b": "\u0000"}]}):
        with pytest.raises(InvalidEventError, match="NUL"):
            parse_event(json.dumps(make_event(payload=payload)))


def test_lone_surrogate_rejected() -> None:
    body = json.dumps(make_event()).replace('"EUR"', '"\\ud800"')
    with pytest.raises(InvalidEventError, match="surrogate"):
        parse_event(body)


def test_oversized_payload_rejected() -> None:
    with pytest.raises(InvalidEventError, match="bytes"):
        parse_event(json.dumps(make_event(payload={"blob": "x" * MAX_PAYLOAD_BYTES})))


def test_the_payload_bound_is_32_kib_of_compact_json() -> None:
    # The contract's number, written out (not the constant): 32,768 bytes pass, one more is refused.
    at_the_bound = {"blob": "x" * (32 * 1024 - len('{"blob":""}'))}
    parse_event(json.dumps(make_event(payload=at_the_bound)))
    with pytest.raises(InvalidEventError, match="payload: is 32769 bytes, more than 32768"):
        parse_event(json.dumps(make_event(payload={"blob": at_the_bound["blob"] + "x"})))


def test_oversized_record_rejected_before_parsing() -> None:
    with pytest.raises(InvalidEventError, match="record is"):
        parse_event("{" + " " * 300_000 + "}")


def test_deep_nesting_rejected_without_recursion_error() -> None:
    deep: object = 1
    for _ in range(MAX_PAYLOAD_DEPTH + 1):
        deep = {"d": deep}
    with pytest.raises(InvalidEventError, match="deeper"):
        parse_event(json.dumps(make_event(payload=deep)))
    with pytest.raises(InvalidEventError, match="deeper"):
        parse_event('{"payload": ' + "[" * 100_000 + "]" * 100_000 + "}")


def test_braces_inside_strings_do_not_count_as_depth() -> None:
    parse_event(json.dumps(make_event(payload={"text": '[[[[[[[[[[[[[[[[[[[[[[[[{{{{{{{{{{{{{{{{{{{{\\"'})))


def test_numbers_beyond_double_range_are_rejected() -> None:
    body = json.dumps(make_event()).replace('"amount": 42', '"amount": 1e400')
    with pytest.raises(InvalidEventError, match="out of range"):
        parse_event(body)


def test_fast_paths_do_not_skip_checks_that_can_fail() -> None:
    # An escaped NUL in a small record still triggers the walk; a big record still gets the exact size check.
    with pytest.raises(InvalidEventError, match="NUL"):
        parse_event(json.dumps(make_event(payload={"a": "\u0000"})))
    grows = {"n": [1e15] * 2500}  # about 12 KB as text here, more than 32 KiB once written as plain decimals
    text = json.dumps(make_event(payload=grows)).replace("1000000000000000.0", "1e15")
    with pytest.raises(InvalidEventError, match="bytes"):
        parse_event(text)


# -- occurred_at: RFC 3339 only, one parser, one instant --------------------------------------------------------
UTC = dt.UTC


@pytest.mark.parametrize(
    ("text", "instant"),
    [
        ("2026-01-01T00:00:00Z", dt.datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01t00:00:00z", dt.datetime(2026, 1, 1, tzinfo=UTC)),  # RFC 3339 allows either case
        ("2026-01-01T02:00:00+02:00", dt.datetime(2026, 1, 1, tzinfo=UTC)),
        ("2025-12-31T10:00:00-14:00", dt.datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00-00:00", dt.datetime(2026, 1, 1, tzinfo=UTC)),
        ("2026-01-01T00:00:00.5Z", dt.datetime(2026, 1, 1, 0, 0, 0, 500000, tzinfo=UTC)),
        # Digits after the sixth are dropped: the instant is floored to the microsecond (.NET writes 7, Go 9).
        ("2026-01-01T00:00:00.1234567Z", dt.datetime(2026, 1, 1, 0, 0, 0, 123456, tzinfo=UTC)),
        ("2026-01-01T00:00:00.999999999Z", dt.datetime(2026, 1, 1, 0, 0, 0, 999999, tzinfo=UTC)),
        ("2024-02-29T23:59:59Z", dt.datetime(2024, 2, 29, 23, 59, 59, tzinfo=UTC)),
    ],
)
def test_rfc3339_accepted_as_its_utc_instant(text: str, instant: dt.datetime) -> None:
    parsed = parse_rfc3339(text)
    assert parsed == instant
    assert parsed.utcoffset() == dt.timedelta(0)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (1764000229, "must be a string"),
        (1764000229.5, "must be a string"),
        ("1764000229", "Unix time"),
        ("1764000229.123", "Unix time"),
        ("17640002290000", "Unix time"),
        ("now", "keyword"),
        ("epoch", "keyword"),
        ("infinity", "keyword"),
        ("-infinity", "keyword"),
        ("today", "keyword"),
        ("allballs", "keyword"),
        ("2026-01-01", "date without a time"),
        ("2026-01-01T00:00:00", "no UTC offset"),
        ("2026-01-01T00:00Z", "no seconds"),
        ("2026-01-01 00:00:00Z", "space"),
        ("2026-01-01T24:00:00Z", "hour 24"),
        ("2016-12-31T23:59:60Z", "leap second"),
        ("2026-01-01T00:00:00.1234567890Z", "more than 9 fractional digits"),
        ("2026-01-01T00:00:00+15:00", "beyond ±14:00"),
        ("2026-01-01T00:00:00+14:01", "beyond ±14:00"),
        ("2026-02-30T00:00:00Z", "not a date that exists"),
        ("2026-01-01T00:00:00+0200", "not one"),
        ("2026-01-01T00:00:00,5Z", "not one"),
        ("2026-W01-1T00:00:00Z", "not one"),
        ("20260101T000000Z", "not one"),
        ("\uff12\uff10\uff12\uff16-01-01T00:00:00Z", "not one"),  # full-width digits
        (" 2026-01-01T00:00:00Z", "not one"),
        ("2026-01-01T00:00:00Z\n", "not one"),
        ("9999-12-31T23:00:00-14:00", "outside years 0001-9999"),
        ("0001-01-01T00:00:00+01:00", "outside years 0001-9999"),
    ],
)
def test_anything_but_rfc3339_is_refused_with_its_reason(value: object, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_rfc3339(value)
    with pytest.raises(InvalidEventError, match=f"occurred_at: .*{reason}"):
        parse_event(json.dumps(make_event(occurred_at=value)))


def test_the_plausible_window_applies_to_the_instant() -> None:
    parse_event(json.dumps(make_event(occurred_at="2000-01-01T00:00:00Z")))
    # 1999-12-31T23:00 written with a -01:00 offset is 2000-01-01T00:00Z: inside; the reverse is outside.
    parse_event(json.dumps(make_event(occurred_at="1999-12-31T23:00:00-01:00")))
    with pytest.raises(InvalidEventError, match="before 2000"):
        parse_event(json.dumps(make_event(occurred_at="2000-01-01T00:59:59+01:00")))


# -- event_id: one spelling, one canonical form ----------------------------------------------------------------------
CANONICAL_ID = "0a1b2c3d-4e5f-4a6b-8c7d-9e0f1a2b3c4d"


@pytest.mark.parametrize("spelling", [CANONICAL_ID, CANONICAL_ID.upper(), "0A1b2C3d-4E5f-4A6b-8C7d-9E0f1A2b3C4d"])
def test_uuid_case_is_free_and_stored_lowercase(spelling: str) -> None:
    assert parse_event(json.dumps(make_event(event_id=spelling)))["event_id"] == CANONICAL_ID


@pytest.mark.parametrize(
    "spelling",
    [
        CANONICAL_ID.replace("-", ""),
        "{" + CANONICAL_ID + "}",
        "urn:uuid:" + CANONICAL_ID,
        CANONICAL_ID[:8] + CANONICAL_ID[9:13] + "-" + CANONICAL_ID[13:],  # hyphens moved
        " " + CANONICAL_ID,
        CANONICAL_ID + "\n",
        CANONICAL_ID[:-1] + "g",
        CANONICAL_ID[:-1] + "\uff11",  # a full-width digit
        "",
    ],
)
def test_other_uuid_spellings_are_refused(spelling: str) -> None:
    with pytest.raises(InvalidEventError, match="event_id: must be a UUID written as 8-4-4-4-12"):
        parse_event(json.dumps(make_event(event_id=spelling)))


def test_storage_row_carries_canonical_values() -> None:
    body = json.dumps(make_event(event_id=CANONICAL_ID.upper(), occurred_at="2026-01-01T01:30:00.25+01:30"))
    body = body.replace('"amount": 42', '"amount": 1.50, "big": 1E+400, "small": 2')
    with pytest.raises(InvalidEventError):
        parse_event(body)  # 1E+400 is out of range
    body = body.replace("1E+400", "9007199254740993.000000000000000000001e-3")
    event_id, row = storage_row(parse_event(body))
    assert event_id == CANONICAL_ID
    assert json.loads(row)[:4] == [CANONICAL_ID, "billing", "invoice.paid", "2026-01-01T00:00:00.250000+00:00"]
    # Numbers digit for digit (x 10^-3 exactly).
    assert row.endswith('{"amount":1.50,"big":9007199254740.993000000000000000000001,"small":2,"currency":"EUR"}]')


def test_the_stored_instant_is_the_utc_isoformat_text_from_year_1_to_9999() -> None:
    """storage_row writes the instant without asking the datetime for its offset: the text must be what isoformat()
    writes for it in UTC, at the ends of the calendar, with and without a fraction, whatever offset it was sent in."""
    generator = random.Random(20261201)
    instants = [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC),
        dt.datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, 0, 0, 0, 1, tzinfo=dt.UTC),
        dt.datetime(2026, 1, 1, 1, 30, 0, 250000, tzinfo=dt.timezone(dt.timedelta(hours=1, minutes=30))),
    ]
    instants += [
        dt.datetime(1, 1, 1, tzinfo=dt.UTC)
        + dt.timedelta(seconds=generator.randrange(315_537_897_600), microseconds=generator.choice([0, 1, 999_999]))
        for _ in range(300)
    ]
    for instant in instants:
        event = Event(event_id=CANONICAL_ID, source="s", type="t", occurred_at=instant, payload={})
        assert json.loads(storage_row(event)[1])[3] == instant.astimezone(dt.UTC).isoformat()


@pytest.mark.parametrize(
    "payload",
    [
        '{"a":0.1,"b":[1E+2,-0.0,5e-324],"c":{"d":123456789012345678901234567890.5}}',
        '{"s":"\\ud83d\\ude00 \\u00e9 \\"q\\" \\\\ \\n","n":null,"t":true,"i":-12345678901234567890}',
    ],
)
def test_the_payload_is_written_again_exactly(payload: str) -> None:
    body = json.dumps(make_event()).replace('{"amount": 42, "currency": "EUR"}', payload)
    event = parse_event(body)
    written = storage_row(event)[1]
    again = json.loads(written, parse_float=Decimal)[4]
    assert again == json.loads(payload, parse_float=Decimal)
    assert "\ud800" not in written


# -- payload numbers: exact decimals ---------------------------------------------------------------------------------
def _with_amount(number_text: str) -> str:
    return json.dumps(make_event()).replace('"amount": 42', f'"amount": {number_text}')


@pytest.mark.parametrize(
    ("text", "exact"),
    [
        ("0.1", Decimal("0.1")),
        ("1.50", Decimal("1.50")),
        (
            "12345678901234567890.123456789012345678901234567890",
            Decimal("12345678901234567890.123456789012345678901234567890"),
        ),
        ("1e308", Decimal("1e308")),
        ("9.999e308", Decimal("9.999e308")),
        ("-1e-340", Decimal("-1e-340")),
        ("5e-324", Decimal("5e-324")),
        ("1" + "0" * 308, 10**308),
    ],
)
def test_numbers_are_kept_as_exact_decimals(text: str, exact: object) -> None:
    assert parse_event(_with_amount(text))["payload"]["amount"] == exact


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("1e309", "out of range"),
        ("-1.5e400", "out of range"),
        ("1" + "0" * 309, "out of range"),
        ("9" * 5000, "out of range"),  # beyond Python's own integer parsing limit too
        ("1e-341", "more than 340 digits after the decimal point"),
        ("0." + "0" * 340 + "1", "more than 340 digits after the decimal point"),
    ],
)
def test_numbers_beyond_the_bounds_are_refused(text: str, reason: str) -> None:
    with pytest.raises(InvalidEventError, match=reason):
        parse_event(_with_amount(text))


def test_size_counts_numbers_as_postgresql_writes_them() -> None:
    assert canonical_size({"a": Decimal("1e3"), "b": Decimal("1.50"), "c": 7}) == len('{"a":1000,"b":1.50,"c":7}')
    # A few short exponent numbers that become 32 KiB of digits are refused, however small the record.
    small_record = _with_amount("[" + ",".join(["1e300"] * 120) + "]")
    assert len(small_record) < 1000
    with pytest.raises(InvalidEventError, match="bytes, more than"):
        parse_event(small_record)


def test_depth_counts_containers_the_same_with_or_without_the_walk() -> None:
    """16 levels of containers are allowed with a value inside the innermost; an escape elsewhere that triggers
    the character walk (an emoji as a surrogate pair) must not change the verdict."""
    deep: object = "leaf"
    for _ in range(MAX_PAYLOAD_DEPTH - 1):
        deep = [deep]
    for extra in ({}, {"emoji": "😀"}):
        body = json.dumps(make_event(payload={"d": deep, **extra}))  # ensure_ascii: the emoji as \ud83d\ude00
        assert parse_event(body)["payload"]["d"] == deep


@pytest.mark.parametrize(
    "body",
    [
        '{"a": 1, "a": 2}',
        '{"a": "\\u0000", "b": 1, "a": []}',  # the refused value would be hidden by the repeat
        '{"x": {"k": 1, "k": 1}}',
    ],
)
def test_a_key_repeated_in_an_object_is_refused(body: str) -> None:
    text = json.dumps(make_event()).replace('{"amount": 42, "currency": "EUR"}', body)
    with pytest.raises(InvalidEventError, match="appears more than once"):
        parse_event(text)


def test_two_payloads_are_refused() -> None:
    twice = '{"payload": {}, ' + json.dumps(make_event())[1:]  # which one would a reader see?
    with pytest.raises(InvalidEventError, match="'payload' appears more than once"):
        parse_event(twice)


def test_the_digit_run_check_answers_as_the_regular_expression_does() -> None:
    """parse_event looks for an integer too large (more than 309 digits) in the bytes, not with a regex: the same
    answer for runs at the bound, digits of other scripts (not JSON digits) and multi-byte characters next to them."""
    reference = re.compile(f"[0-9]{{{MAX_NUMBER_EXPONENT + 1},}}")
    assert MAX_NUMBER_EXPONENT + 1 == 309
    explicit = [
        "1" * 309,
        "1" * 308,
        "x" + "0" * 309 + "x",
        "1" * 308 + "\u0663",
        "\u0663" * 400,
        "\uff11" * 400,
        "é" + "9" * 309,
        "9" * 154 + "é" + "9" * 155,
        "€" + "5" * 308 + "€",
        "😀" + "7" * 309,
    ]
    pieces = ["1" * 308, "2" * 309, "3" * 150, "4" * 159, "-", ".", "e", " ", '"', "é", "€", "😀", "\u0663", "\uff10"]
    generator = random.Random(20261130)
    generated = ["".join(generator.choices(pieces, k=generator.randint(1, 8))) for _ in range(400)]
    answers = {has_long_digit_run(text) for text in explicit + generated}
    assert answers == {True, False}  # both answers are exercised
    for text in explicit + generated:
        assert has_long_digit_run(text) == (reference.search(text) is not None), text


def _depth_by_characters(text: str) -> int:
    """The nesting depth as _depth_of counted it with a character-by-character scan (the reference): the number of
    brackets when that alone shows it within the bound, the depth outside strings otherwise."""
    brackets = text.count("{") + text.count("[")
    if brackets <= MAX_PAYLOAD_DEPTH + 1:
        return brackets
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


def test_the_depth_count_answers_as_the_character_scan_does() -> None:
    """Brackets inside strings do not count, escaped quotes do not end a string, an unterminated string runs to the
    end, a backslash outside a string escapes nothing; with and without escapes (the two ways _depth_of finds the
    strings), valid JSON or not, around the bound where the count alone decides."""
    deep = "[" * 18 + "]" * 18
    explicit = [
        deep,
        '"' + deep + '"',
        '["' + "[" * 20 + '"]',
        '"\\"' + deep,
        '"\\\\"' + deep,
        '"' + "\\" + deep,
        "\\" + '"' + deep,
        '{"a": "x\\"[[[[", "b": ' + deep + "}",
        deep + '"unterminated [[[[[[[[[[[[[[[[[[[[',
        '"é[😀"' + "{" * 19 + "\ud800" + "}" * 19,
        "{" * 18 + '"\\\n"' + "}" * 18 + "\\",
    ]
    pieces = ['"', "[", "]", "{", "}", "[[[[", "]]]]", "a", " ", ":", ",", "é", "😀", "\n", "\ud800"]
    generator = random.Random(20261201)
    generated = []
    for escapes in (False, True):
        choices = pieces + (["\\", '\\"', "\\\\"] if escapes else [])
        generated += ["".join(generator.choices(choices, k=generator.randint(1, 60))) for _ in range(600)]
    depths = [_depth_by_characters(text) for text in explicit + generated]
    assert min(depths) <= MAX_PAYLOAD_DEPTH + 1 < max(depths)  # both sides of the shortcut are exercised
    assert any("\\" in t and d > MAX_PAYLOAD_DEPTH + 1 for t, d in zip(explicit + generated, depths, strict=True))
    for text, expected in zip(explicit + generated, depths, strict=True):
        assert depth_of(text) == expected, text
