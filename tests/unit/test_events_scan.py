"""parse_event's raw-record pre-checks at their exact edges: the search for a run of digits (an integer too large).

Before validating, parse_event decides from the record's text which of the payload's bounds can possibly fail; a
run of more than 308 ASCII digits forces the walk that refuses an integer of 1e309 or more. The run is found in the
UTF-8 bytes through a translation table, not a regex: the table is checked here, character by character, against
the regex it replaced. Each test failed against a mutant of rampart/events.py that the other event tests let
survive (docs/mutation.md).
"""

import json
import re

import pytest

from rampart.events import MAX_NUMBER_EXPONENT, parse_event
from rampart.events import _has_long_digit_run as has_long_digit_run
from tests.conftest import make_event

LONG_DIGITS = re.compile(f"[0-9]{{{MAX_NUMBER_EXPONENT + 1},}}")


def test_no_character_but_an_ascii_digit_continues_a_digit_run() -> None:
    """Every character from U+0000 to U+02FF (the bytes a table maps, and the lead and continuation bytes of
    two-byte UTF-8), and a few wider ones, between and after digits: only 0-9 continue a run. ':' and '/' sit right
    next to the digits in ASCII."""
    characters = [chr(code) for code in range(0x300)] + ["\u0663", "\uff10", "€", "😀", "\ud800"]
    for character in characters:
        for text in ("1" * 154 + character + "1" * 154, "1" * 308 + character, character + "1" * 308):
            assert has_long_digit_run(text) == (LONG_DIGITS.search(text) is not None), repr(character)


@pytest.mark.parametrize("separator", [":", "/", " ", "!", "\x1f", "\x7f", "é"])
def test_a_digit_run_broken_by_one_character_is_not_a_large_integer(separator: str) -> None:
    # Two runs of 200 digits in a string: no integer at all, let alone one too large.
    text = "1" * 200 + separator + "1" * 200
    assert not has_long_digit_run(text)
    payload = {"digits": text, "amount": 1}
    assert parse_event(json.dumps(make_event(payload=payload)))["payload"] == payload
