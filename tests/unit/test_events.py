import datetime as dt
import json

import pytest

from rampart.events import MAX_PAYLOAD_BYTES, MAX_PAYLOAD_DEPTH, InvalidEventError, parse_event
from tests.conftest import make_event


def test_valid_event_parses() -> None:
    raw = make_event()
    event = parse_event(json.dumps(raw))
    assert str(event.event_id) == raw["event_id"]
    assert event.occurred_at.tzinfo is not None


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"event_id": "not-a-uuid"}, "event_id"),
        ({"event_id": 12345}, "event_id"),
        ({"source": "Billing"}, "source"),
        ({"source": "a" * 64}, "source"),
        ({"type": "x; DROP TABLE events"}, "type"),
        ({"occurred_at": "2026-01-01T00:00:00"}, "occurred_at"),  # no timezone
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


def test_json_text_round_trips() -> None:
    event = parse_event(json.dumps(make_event()))
    assert parse_event(event.json_text()) == event


def test_fast_paths_do_not_skip_checks_that_can_fail() -> None:
    # An escaped NUL in a small record still triggers the walk; a big record still gets the exact size check.
    with pytest.raises(InvalidEventError, match="NUL"):
        parse_event(json.dumps(make_event(payload={"a": "\u0000"})))
    grows = {"n": [1e15] * 2500}  # about 12 KB as text here, more than 32 KiB once re-serialised compactly
    text = json.dumps(make_event(payload=grows)).replace("1000000000000000.0", "1e15")
    with pytest.raises(InvalidEventError, match="bytes"):
        parse_event(text)
