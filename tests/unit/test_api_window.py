"""Windows at the ends of the calendar: every one answers (a window or a 400 reason), none raises."""

from __future__ import annotations

import datetime as dt
import itertools

import pytest

from rampart.api.window import FIRST_INSTANT, WindowError, stats_window
from rampart.events import parse_rfc3339

NOW = dt.datetime(2026, 6, 1, tzinfo=dt.UTC)
LAST_INSTANT = dt.datetime.max.replace(tzinfo=dt.UTC)
EDGES = [
    None,
    FIRST_INSTANT,
    FIRST_INSTANT + dt.timedelta(hours=1),
    FIRST_INSTANT + dt.timedelta(days=400),
    LAST_INSTANT - dt.timedelta(days=400),
    LAST_INSTANT - dt.timedelta(hours=1),
    LAST_INSTANT,
    NOW,
]


@pytest.mark.parametrize("bucket", ["hour", "day"])
@pytest.mark.parametrize(("since", "until"), list(itertools.product(EDGES, EDGES)))
def test_every_window_at_the_ends_of_the_calendar_is_answered(
    bucket: str, since: dt.datetime | None, until: dt.datetime | None
) -> None:
    code = None
    try:
        start, end = stats_window(bucket, since, until, NOW)  # type: ignore[arg-type]
    except WindowError as exc:
        code = exc.code
    if code is None:
        assert FIRST_INSTANT <= start < end <= LAST_INSTANT
    else:
        assert code in {"invalid_window", "window_too_large"}


def test_the_default_window_is_clamped_at_the_first_instant() -> None:
    """The issue's report: until=0001-01-01T00:00:00Z answered 500 (until - 24 h overflowed)."""
    until = parse_rfc3339("0001-01-01T00:00:00Z")
    with pytest.raises(WindowError, match="until must be later than 0001-01-01"):
        stats_window("hour", None, until, NOW)
    assert stats_window("hour", None, parse_rfc3339("0001-01-01T05:00:00Z"), NOW) == (
        FIRST_INSTANT,
        dt.datetime(1, 1, 1, 5, tzinfo=dt.UTC),
    )


def test_a_since_after_now_is_an_empty_window() -> None:
    with pytest.raises(WindowError, match="since must be earlier than until"):
        stats_window("hour", parse_rfc3339("9999-12-31T23:59:59Z"), None, NOW)


def test_window_too_large() -> None:
    with pytest.raises(WindowError) as err:
        stats_window("hour", NOW - dt.timedelta(days=8), NOW, NOW)
    assert err.value.code == "window_too_large"
    assert stats_window("day", NOW - dt.timedelta(days=366), NOW, NOW)[0] == NOW - dt.timedelta(days=366)
