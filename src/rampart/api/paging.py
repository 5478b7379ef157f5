"""How many rows a page may carry so that its response stays well inside Lambda's 6 MB response limit.

What counts against that limit is the whole invocation response, in which the body travels as a JSON string that
the runtime escapes to ASCII: a quote or backslash doubles, a DEL or any non-ASCII character becomes a 6-byte
``\\uXXXX`` escape (12 for characters beyond the BMP). So a page is measured as escaped text, against a budget
that leaves room for the envelope and headers: a page of 500 large events ends early, with a next cursor.
"""

from __future__ import annotations

import json
from collections.abc import Sequence

LAMBDA_RESPONSE_LIMIT = 6 * 1024 * 1024
MAX_PAGE_BYTES = 4 * 1024 * 1024  # per page body, as escaped in the Lambda response
PAGE_OVERHEAD = 1024  # '{"items":[', '],"next_cursor":', a cursor (at most 512 characters), escaped
_WORST_ESCAPE = 12  # escaped bytes one character can take (a character beyond the BMP: two \uXXXX escapes)


def escaped_size(text: str) -> int:
    """Bytes ``text`` takes as a JSON string escaped to ASCII, without its quotes."""
    return len(json.dumps(text)) - 2


def rows_that_fit(items: Sequence[str], budget: int = MAX_PAGE_BYTES) -> int:
    """How many of ``items`` (each an item's JSON text, in page order) fit a page body of ``budget`` escaped
    bytes; at least one, so a walk always moves on (one event is far smaller than any budget: its payload is at
    most 32 KiB)."""
    room = budget - PAGE_OVERHEAD
    if sum(map(len, items)) * _WORST_ESCAPE + len(items) <= room:
        return len(items)  # cannot exceed the budget even if every character escaped at its worst: skip measuring
    used = 0
    for count, item in enumerate(items):
        used += escaped_size(item) + 1  # and its comma
        if used > room:
            return max(count, 1)
    return len(items)
