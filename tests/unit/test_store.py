"""The event store's contract that holds without a database (the SQL itself is proved in tests/integration)."""

import dataclasses
import datetime as dt
from typing import Any

import pytest

from rampart.db.store import EventFilter, EventRow, EventStore, StatsRow


class NoDatabase:
    def run(self, work: Any) -> Any:
        raise AssertionError("no statement may be sent")


def test_an_empty_batch_inserts_nothing_and_sends_no_statement() -> None:
    assert EventStore(NoDatabase()).insert_events([]) == 0  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "value",
    [
        EventRow(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "id", "{}"),
        EventFilter(source="billing"),
        StatsRow(dt.datetime(2026, 1, 1, tzinfo=dt.UTC), "invoice.paid", 1),
    ],
)
def test_what_the_store_takes_and_returns_are_immutable_values(value: Any) -> None:
    field = dataclasses.fields(value)[0].name
    with pytest.raises(dataclasses.FrozenInstanceError):
        setattr(value, field, None)
    assert hash(value) == hash(dataclasses.replace(value))
