"""The per-page byte budget: a page's body, as escaped in the Lambda response, stays within it."""

from __future__ import annotations

import json

from rampart.api.paging import MAX_PAGE_BYTES, PAGE_OVERHEAD, escaped_size, rows_that_fit


def test_escaped_size_counts_what_the_lambda_runtime_sends() -> None:
    for text in ['{"a":1}', '"quoted"', "é", "\u007f", "😀", "\\n"]:
        assert escaped_size(text) == len(json.dumps(text)) - 2
    assert escaped_size("😀") == 12  # a character beyond the BMP: two \uXXXX escapes


def test_small_pages_are_not_measured_and_fit_whole() -> None:
    items = ['{"event_id":"x","payload":{"n":1}}'] * 500
    assert rows_that_fit(items) == 500


def test_a_page_of_large_items_ends_within_the_budget() -> None:
    item = json.dumps({"payload": {"blob": 'é"' * 16_000}}, ensure_ascii=False)  # ~48 KB, ~130 KB escaped
    items = [item] * 500
    fit = rows_that_fit(items)
    assert 0 < fit < 500
    body = '{"items":[' + ",".join(items[:fit]) + '],"next_cursor":' + json.dumps("c" * 512) + "}"
    assert escaped_size(body) <= MAX_PAGE_BYTES
    bigger = '{"items":[' + ",".join(items[: fit + 1]) + "]}"
    assert escaped_size(bigger) > MAX_PAGE_BYTES - PAGE_OVERHEAD  # it took as many as fit


def test_one_item_always_fits_so_a_walk_moves_on() -> None:
    assert rows_that_fit(["x" * 1000], budget=PAGE_OVERHEAD + 10) == 1
