"""The event contract at its exact edges, and the exact words of its refusals.

Each test here failed against a mutant of rampart/events.py that tests/unit/test_events.py let survive
(docs/mutation.md): a bound moved by one, a fast path taken where it must not be, a message cut in the wrong place.
The input is what a producer sends: one record's body, given to parse_event as the ingest handler gives it.
"""

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rampart.events import InvalidEventError, parse_event, parse_rfc3339, validate_event
from tests.conftest import make_event

REPO = Path(__file__).resolve().parents[2]


def body_with_amount(number_text: str) -> str:
    return json.dumps(make_event()).replace('"amount": 42', f'"amount": {number_text}')


def refusal(body: str) -> str:
    with pytest.raises(InvalidEventError) as err:
        parse_event(body)
    return err.value.reason


# -- the record and its numbers ---------------------------------------------------------------------------------
def test_a_record_of_exactly_256_kib_is_read_and_one_byte_more_is_refused() -> None:
    event = json.dumps(make_event())
    padded = event[:-1] + " " * (256 * 1024 - len(event)) + "}"  # whitespace: the payload itself stays small
    assert len(padded.encode()) == 262_144
    parse_event(padded)
    assert refusal(padded[:-1] + " }") == "record is 262145 bytes, more than 262144"


def test_the_largest_integers_are_accepted_and_ten_to_the_309_is_refused() -> None:
    for text in ("9" * 309, "-" + "9" * 309):
        assert parse_event(body_with_amount(text))["payload"]["amount"] == int(text)
    for text in ("1" + "0" * 309, "-1" + "0" * 309, "9" * 310, "-" + "9" * 310):
        assert refusal(body_with_amount(text)) == (
            "schema violation: payload: has an integer out of range (magnitude 1e309 or more)"
        )


def test_an_out_of_range_number_is_named_whole_up_to_30_characters() -> None:
    assert refusal(body_with_amount("1e400")) == "payload: number 1e400 is out of range (magnitude 1e309 or more)"
    thirty = "1." + "0" * 24 + "e400"
    assert len(thirty) == 30
    assert refusal(body_with_amount(thirty)) == f"payload: number {thirty} is out of range (magnitude 1e309 or more)"
    longer = "1." + "0" * 25 + "e400"
    assert refusal(body_with_amount(longer)) == (
        f"payload: number {longer[:27]}... is out of range (magnitude 1e309 or more)"
    )


# -- nesting: the count before parsing --------------------------------------------------------------------------
def test_many_shallow_containers_are_not_deep() -> None:
    # More brackets than the depth limit, none deeper than 2: the count is a shortcut, never the verdict.
    for siblings in (17, 18, 40):
        payload = {"items": [{} for _ in range(siblings)]}
        assert parse_event(json.dumps(make_event(payload=payload)))["payload"] == payload


def test_nesting_that_mixes_objects_and_arrays_is_counted_whole() -> None:
    deep: Any = 1
    for level in range(17):
        deep = {"d": deep} if level % 2 else [deep]
    with pytest.raises(InvalidEventError, match="nested deeper than 16 levels"):
        parse_event(json.dumps(make_event(payload={"d": deep})))


def test_deep_arrays_without_any_object_are_refused_before_parsing() -> None:
    assert refusal("[" * 100_000 + "]" * 100_000) == "payload is nested deeper than 16 levels"


def test_a_stray_character_before_the_event_is_not_json() -> None:
    event = json.dumps(make_event())
    for prefix in ("x", "0", "]"):
        assert refusal(prefix + event).startswith("not valid JSON: ")


def test_sixteen_payload_levels_with_siblings_are_allowed() -> None:
    # 16 levels (the most a payload may have) plus a sibling: more brackets than the limit, so the text is scanned.
    deep: Any = 1
    for _ in range(15):
        deep = [deep]
    payload = {"d": deep, "sibling": {}}
    assert parse_event(json.dumps(make_event(payload=payload)))["payload"] == payload


def test_closed_containers_give_back_exactly_one_level_each() -> None:
    deep: Any = 1
    for _ in range(16):
        deep = [deep]
    with pytest.raises(InvalidEventError, match="nested deeper than 16 levels"):
        parse_event(json.dumps(make_event(payload={"a": [], "b": [], "d": deep})))


def test_depth_is_still_counted_after_a_string_with_an_escape() -> None:
    deep: Any = 1
    for _ in range(17):
        deep = [deep]
    with pytest.raises(InvalidEventError, match="nested deeper than 16 levels"):
        parse_event(json.dumps(make_event(payload={"a": "line\nbreak", "d": deep})))


def test_an_escaped_quote_does_not_end_a_string() -> None:
    payload = {"text": '"' + "[" * 20}
    assert parse_event(json.dumps(make_event(payload=payload)))["payload"] == payload


def test_brackets_after_a_space_inside_a_string_are_text() -> None:
    payload = {"text": " " + "[" * 20}
    assert parse_event(json.dumps(make_event(payload=payload)))["payload"] == payload


def test_the_payload_bound_counts_utf8_bytes_not_escapes() -> None:
    # 'é' is 2 bytes of UTF-8 (6 as a \u escape): 32,768 bytes pass, one more is refused.
    at_the_bound = {"blob": "é" * ((32 * 1024 - len('{"blob":""}')) // 2) + "x"}
    assert len(json.dumps(at_the_bound, separators=(",", ":"), ensure_ascii=False).encode()) == 32_768
    parse_event(json.dumps(make_event(payload=at_the_bound)))
    assert refusal(json.dumps(make_event(payload={"blob": at_the_bound["blob"] + "x"}))) == (
        "schema violation: payload: is 32769 bytes, more than 32768"
    )


def test_the_payload_bound_counts_a_decimal_at_its_written_size() -> None:
    blob = "x" * (32 * 1024 - 1 - len('{"blob":"","n":1.5}'))
    payload = json.dumps(make_event(payload={"blob": blob, "n": 0})).replace('"n": 0', '"n": 1.5')
    assert parse_event(payload)["payload"]["blob"] == blob  # 32,767 bytes
    over = payload.replace('"n": 1.5', '"n": 1.55')
    assert refusal(over.replace(blob, blob + "x")) == "schema violation: payload: is 32769 bytes, more than 32768"


def test_numbers_with_a_negative_exponent_count_at_their_plain_size() -> None:
    # 1e-300 is 6 characters here but 302 as PostgreSQL writes it: 200 of them are far beyond 32 KiB.
    body = json.dumps(make_event(payload={"n": [0] * 200})).replace("0, ", "1e-300, ").replace("0]", "1e-300]")
    assert len(body.encode()) < 32 * 1024
    assert "payload: is" in refusal(body)
    assert "more than 32768" in refusal(body)


def test_a_raw_lone_surrogate_in_the_record_is_refused_not_a_crash() -> None:
    # A JSON \ud800 escape in the SQS message reaches the handler as a lone surrogate character in the body.
    raw = json.dumps(make_event(payload={"a": "x"})).replace('"x"', '"' + chr(0xD800) + '"')
    assert "surrogate" in refusal(raw)


# -- occurred_at ------------------------------------------------------------------------------------------------
def test_an_uppercase_t_with_a_lowercase_z_is_the_same_instant() -> None:
    assert parse_rfc3339("2026-01-01T00:00:00z") == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("x" * 39, "x" * 39),
        ("x" * 40, "x" * 40),
        ("x" * 41, "x" * 37 + "..."),
    ],
)
def test_a_refused_date_time_is_quoted_whole_up_to_40_characters(text: str, shown: str) -> None:
    with pytest.raises(ValueError, match="is not one") as err:
        parse_rfc3339(text)
    assert str(err.value).startswith(f"{shown!r} is not one;")


def test_the_future_bound_is_five_minutes_to_the_microsecond() -> None:
    now = dt.datetime(2026, 6, 1, 12, 0, tzinfo=dt.UTC)
    at_the_bound = (now + dt.timedelta(minutes=5)).isoformat()
    assert parse_event(json.dumps(make_event(occurred_at=at_the_bound)), now)["occurred_at"] == now + dt.timedelta(
        minutes=5
    )
    beyond = (now + dt.timedelta(minutes=5, microseconds=1)).isoformat()
    with pytest.raises(InvalidEventError, match="more than 5 minutes in the future"):
        parse_event(json.dumps(make_event(occurred_at=beyond)), now)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("2026-01-01T25:00:00Z", "is not one"),  # only hour 24 gets its own reason
        ("2026-01-01T00:00:00.123456789+15:00", "beyond ±14:00"),  # nine digits are allowed
    ],
)
def test_each_reason_is_given_only_for_its_own_fault(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=reason):
        parse_rfc3339(text)


def test_a_date_that_does_not_exist_is_named() -> None:
    with pytest.raises(ValueError, match=r"^2026-02-30 is not a date that exists$"):
        parse_rfc3339("2026-02-30T00:00:00Z")


def test_only_second_60_is_called_a_leap_second() -> None:
    with pytest.raises(ValueError, match="is not one"):
        parse_rfc3339("2026-01-01T00:00:61Z")


def test_an_occurred_at_that_is_not_a_string_or_is_missing_is_named_as_such() -> None:
    reason = refusal(json.dumps(make_event(occurred_at=1700000000)))
    assert reason == (
        "schema violation: occurred_at: must be a string holding an RFC 3339 date-time "
        "(YYYY-MM-DDTHH:MM:SS[.fraction](Z|±hh:mm))"
    )
    event = make_event()
    del event["occurred_at"]
    assert refusal(json.dumps(event)) == "schema violation: occurred_at: Field required"


# -- keys -------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(("length", "shown"), [(30, "k" * 30), (31, "k" * 27 + "...")])
def test_a_repeated_key_is_named_whole_up_to_30_characters(length: int, shown: str) -> None:
    key = "k" * length
    body = json.dumps(make_event()).replace('"amount": 42', f'"{key}": 1, "{key}": 2')
    assert refusal(body) == f"the key {shown!r} appears more than once in an object"


def test_the_repeated_key_is_the_one_named() -> None:
    body = json.dumps(make_event()).replace('"amount": 42', '"a": 1, "b": 2, "b": 3')
    assert refusal(body) == "the key 'b' appears more than once in an object"


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"source": 123}, "source: Input should be a valid string"),
        ({"event_id": 12345}, "event_id: must be a UUID written as 8-4-4-4-12 hexadecimal digits"),
    ],
)
def test_a_value_of_the_wrong_type_gets_its_fields_own_rule(change: dict[str, Any], reason: str) -> None:
    assert refusal(json.dumps(make_event(**change))).startswith(f"schema violation: {reason}")


def test_an_identifier_off_its_pattern_gets_the_pattern_not_the_uuid_rule() -> None:
    assert refusal(json.dumps(make_event(source="Billing"))) == (
        "schema violation: source: String should match pattern '^[a-z][a-z0-9_.-]{0,62}$'"
    )


# -- validate_event: the whole contract on a parsed value --------------------------------------------------------
def test_validate_event_checks_the_whole_contract_of_a_parsed_event() -> None:
    assert validate_event(make_event())["source"] == "billing"
    deep: Any = 1
    for _ in range(17):
        deep = [deep]
    with pytest.raises(InvalidEventError, match="nested deeper than 16 levels"):
        validate_event(make_event(payload={"d": deep}))
    deep_objects: Any = 1
    for _ in range(17):  # the payload is the outermost of 17 objects
        deep_objects = {"d": deep_objects}
    with pytest.raises(InvalidEventError, match="nested deeper than 16 levels"):
        validate_event(make_event(payload=deep_objects))
    with pytest.raises(InvalidEventError, match="NUL"):
        validate_event(make_event(payload={"a": "\x00"}))
    with pytest.raises(InvalidEventError, match="more than 32768"):
        validate_event(make_event(payload={"blob": "x" * 32_768}))


def test_sixteen_levels_are_allowed_in_a_parsed_event() -> None:
    deep: Any = 1
    for _ in range(15):
        deep = [deep]
    validate_event(make_event(payload={"d": deep}))
    deep_objects: Any = 1
    for _ in range(16):
        deep_objects = {"d": deep_objects}
    validate_event(make_event(payload=deep_objects))


# -- the module as a program -------------------------------------------------------------------------------------
def test_importing_the_module_prints_nothing_and_running_it_prints_the_schema() -> None:
    imported = subprocess.run(
        [sys.executable, "-c", "import rampart.events"], capture_output=True, text=True, check=True, cwd=REPO
    )
    assert imported.stdout == ""
    run = subprocess.run([sys.executable, "-m", "rampart.events"], capture_output=True, text=True, check=True, cwd=REPO)
    assert run.stdout == (REPO / "docs" / "event.schema.json").read_text(encoding="utf-8")
