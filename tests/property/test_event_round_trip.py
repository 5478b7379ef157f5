"""Differential property tests at the boundary, on the real PostgreSQL over TLS.

Adversarial records (tests/property/strategies.py) go as raw SQS records through the real ingest handler; every
accepted event is read back through the real API handler. For each record, exactly one of:

- the contract accepts it: it is stored, and reads back equal to what was sent (the instant to the microsecond,
  the payload as exact decimals, the id in its canonical spelling);
- the contract refuses it: it is dead-lettered, its body intact, with a reason, and nothing is stored under its id.

Never stored-but-different, never lost, never retried (the database and the DLQ are healthy here). Seeded and
deterministic: derandomize, a fixed number of examples, no deadline.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import uuid
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.conftest import Pipeline
from tests.property.strategies import Case, cases, expected

EARLIEST = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
FUTURE_SKEW = dt.timedelta(minutes=5)
CLOCK_MARGIN = dt.timedelta(
    minutes=1
)  # around now + 5 min either verdict is right: the test's clock is not the handler's

_ids = itertools.count(1)


def _bases(n: int) -> list[uuid.UUID]:
    """Fresh event ids for every example (a stored id must never be reused by a later example)."""
    return [uuid.UUID(int=(0x5EED << 112) | next(_ids), version=4) for _ in range(n)]


def _settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
    )


def _same_json(got: Any, want: Any) -> bool:
    """Equal as JSON, numbers as exact decimals (1.50 == 1.5, 1E+2 == 100), no bool/number confusion."""
    if isinstance(want, bool) or want is None or isinstance(want, str):
        return type(got) is type(want) and got == want
    if isinstance(want, int | Decimal):
        return isinstance(got, int | Decimal) and not isinstance(got, bool) and Decimal(got) == Decimal(want)
    if isinstance(want, list):
        return isinstance(got, list) and len(got) == len(want) and all(map(_same_json, got, want))
    if isinstance(want, dict):
        return isinstance(got, dict) and got.keys() == want.keys() and all(_same_json(got[k], want[k]) for k in want)
    raise AssertionError(f"unexpected value {want!r}")


def _verdict(case: Case, now: dt.datetime) -> str:
    """ "accept", "refuse" or "either" (an occurred_at too close to the edge of the window to call)."""
    if case.problems:
        return "refuse"
    instant = case.instant()
    assert instant is not None
    if instant < EARLIEST:
        return "refuse"
    if abs(instant - (now + FUTURE_SKEW)) <= CLOCK_MARGIN:
        return "either"
    return "accept" if instant <= now + FUTURE_SKEW else "refuse"


def run_batch(pipeline: Pipeline, batch: list[Case]) -> None:
    now = dt.datetime.now(dt.UTC)
    delivered_before = len(pipeline.dlq.delivered)
    sent = pipeline.publish(*(case.body for case in batch))
    assert sent["response"] == {"batchItemFailures": []}, "a record was retried: nothing here may need a retry"
    dead = {
        e["MessageAttributes"]["rampart_original_message_id"]["StringValue"]: e
        for e in pipeline.dlq.delivered[delivered_before:]
    }
    for case, record in zip(batch, sent["records"], strict=True):
        verdict = _verdict(case, now)
        letter = dead.get(record["messageId"])
        stored = _read_back(pipeline, case)
        if letter is not None:
            assert verdict in ("refuse", "either"), (
                f"refused what the contract accepts: {letter['MessageAttributes']}\n{case}"
            )
            assert letter["MessageBody"] == case.body  # the DLQ keeps what was sent
            assert letter["MessageAttributes"]["rampart_failure_reason"]["StringValue"]
            assert stored is None, f"dead-lettered and stored: {case}"
            continue
        assert verdict in ("accept", "either"), f"accepted what the contract refuses ({case.problems}):\n{case}"
        assert stored is not None, f"neither stored nor dead-lettered (lost): {case}"
        _assert_equal_to_what_was_sent(stored, case)


def _read_back(pipeline: Pipeline, case: Case) -> dict[str, Any] | None:
    canonical = case.event_id.canonical
    if canonical is None:
        return None  # no id to read it back by; the contract refuses it anyway
    status, body = pipeline.get(f"/v1/events/{canonical}")
    assert status in (200, 404), body
    if status == 404:
        return None
    item: dict[str, Any] = json.loads(body, parse_float=Decimal)
    return item


def _assert_equal_to_what_was_sent(item: dict[str, Any], case: Case) -> None:
    assert item["event_id"] == case.event_id.canonical
    assert (item["source"], item["type"]) == (case.source, case.type)
    instant = case.instant()
    assert instant is not None
    assert dt.datetime.fromisoformat(item["occurred_at"]) == instant, (item["occurred_at"], case.stamp)
    assert _same_json(item["payload"], expected(case.payload)), (item["payload"], case.body)


@pytest.mark.parametrize(
    ("focus", "examples", "batch"),
    [
        ("occurred_at", 250, 6),
        ("event_id", 120, 6),
        ("numbers", 200, 4),
        ("payload", 250, 4),
        ("all", 300, 5),
    ],
)
def test_accepted_is_stored_exactly_and_refused_is_dead_lettered(
    pipeline: Pipeline, focus: str, examples: int, batch: int
) -> None:
    @_settings(examples)
    @given(st.data())
    def check(data: st.DataObject) -> None:
        size = data.draw(st.integers(1, batch), label="batch size")
        run_batch(pipeline, [data.draw(cases(base, focus), label="record") for base in _bases(size)])

    check()
