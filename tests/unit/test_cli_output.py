"""The CLI prints what the API returned, digit for digit: no number passes through a binary float."""

from __future__ import annotations

import decimal
import json
import random
from typing import Any

import pytest

from rampart.cli.common import dumps_exact

LAYOUTS: list[dict[str, Any]] = [{}, {"sort_keys": True}, {"indent": 2}, {"indent": 2, "sort_keys": True}]


@pytest.mark.parametrize("layout", LAYOUTS)
def test_decimals_are_written_in_their_own_digits(layout: dict[str, Any]) -> None:
    value = {
        "amount": decimal.Decimal("0.1000000000000000055511151231257827"),
        "huge": decimal.Decimal("1E+400"),
        "tiny": decimal.Decimal("-2.5E-330"),
        "nested": [decimal.Decimal("3.000"), {"k": decimal.Decimal("0")}],
    }
    text = dumps_exact(value, **layout)
    assert json.loads(text, parse_float=decimal.Decimal) == value
    for digits in ("0.1000000000000000055511151231257827", "1E+400", "-2.5E-330", "3.000"):
        assert digits in text


@pytest.mark.parametrize("layout", LAYOUTS)
def test_without_decimals_the_text_is_what_json_dumps_writes(layout: dict[str, Any]) -> None:
    rng = random.Random(20261130)  # seeded: every run writes the same values

    def value(depth: int = 0) -> Any:
        roll = rng.random()
        if depth > 3 or roll < 0.4:
            return rng.choice([None, True, False, 0, -3, 2.5, 10**30, "", 'é"\\\n', "x"])
        if roll < 0.7:
            return [value(depth + 1) for _ in range(rng.randrange(4))]
        return {f"k{rng.randrange(9)}": value(depth + 1) for _ in range(rng.randrange(4))}

    for _ in range(500):
        item = value()
        assert dumps_exact(item, **layout) == json.dumps(item, **layout)
