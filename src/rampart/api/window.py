"""Time windows of the API, decided without overflow at either end of the calendar.

Every instant reaching here is a UTC instant inside years 0001-9999 (rampart.events.parse_rfc3339 refused the
rest); the arithmetic below never leaves that range, so no window a client can send raises instead of answering.
"""

from __future__ import annotations

import datetime as dt
from typing import Literal

Bucket = Literal["hour", "day"]
MAX_WINDOW: dict[Bucket, dt.timedelta] = {"hour": dt.timedelta(days=7), "day": dt.timedelta(days=366)}
DEFAULT_WINDOW: dict[Bucket, dt.timedelta] = {"hour": dt.timedelta(hours=24), "day": dt.timedelta(days=30)}
FIRST_INSTANT = dt.datetime.min.replace(tzinfo=dt.UTC)


class WindowError(ValueError):
    """A window the client asked for that cannot be served; ``code`` goes into the error envelope."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def check_order(since: dt.datetime | None, until: dt.datetime | None) -> None:
    if since is not None and until is not None and since >= until:
        raise WindowError("invalid_window", "since must be earlier than until")


def stats_window(
    bucket: Bucket, since: dt.datetime | None, until: dt.datetime | None, now: dt.datetime
) -> tuple[dt.datetime, dt.datetime]:
    """The [since, until) a stats request covers: until defaults to now, since to the bucket's default span
    before until (clamped at 0001-01-01T00:00:00Z, the first instant there is)."""
    check_order(since, until)
    end = until or now
    if since is not None:
        start = since
    elif end - FIRST_INSTANT >= DEFAULT_WINDOW[bucket]:
        start = end - DEFAULT_WINDOW[bucket]
    else:
        start = FIRST_INSTANT
    if start >= end:
        if since is None:
            raise WindowError("invalid_window", "until must be later than 0001-01-01T00:00:00Z")
        raise WindowError("invalid_window", "since must be earlier than until (which defaults to now)")
    if end - start > MAX_WINDOW[bucket]:
        raise WindowError("window_too_large", f"a {bucket} window may span at most {MAX_WINDOW[bucket].days} days")
    return start, end
