"""The ingest function's freshness and partial-batch metrics, as CloudWatch Embedded Metric Format (EMF) lines.

Per batch, once its records are stored, one JSON line on stdout (Lambda sends it to CloudWatch Logs, which turns
it into metrics; no API call, no per-record log line):

- ``PublishToStoredSeconds``: for each record now stored (new or already there), now - the SQS ``SentTimestamp``
  (when SNS delivered it into the queue, milliseconds after the producer published): the freshness SLI, from
  which CloudWatch computes p95/p99 and the percentile rank ``PR(:300)`` the burn-rate alarms use;
- ``OccurredToStoredSeconds``: the same records, now - the event's ``occurred_at`` (the producer's clock: includes
  the producer's own delay before publishing);
- ``BatchItemFailures``: records returned to the queue in ``batchItemFailures`` (they never show in Lambda
  ``Errors``);
- ``RecordsDeadLettered``: records the handler sent to the DLQ.

Dimension ``FunctionName`` (the function this runs in), namespace ``POWERTOOLS_METRICS_NAMESPACE`` (``Rampart``):
what iac/modules/monitoring alarms on. EMF takes at most 100 values per metric in one document, so a larger
batch is written as several lines. The local twin reads the same lines from the ingest log (``rampart status``).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from rampart.ingest.batch import BatchResult, record_body

DEFAULT_NAMESPACE = "Rampart"
DIMENSION = "FunctionName"
PUBLISH_TO_STORED = "PublishToStoredSeconds"
OCCURRED_TO_STORED = "OccurredToStoredSeconds"
BATCH_ITEM_FAILURES = "BatchItemFailures"
RECORDS_DEAD_LETTERED = "RecordsDeadLettered"
MAX_VALUES_PER_METRIC = 100  # EMF: "an array of up to 100 values" per metric in one document


def stored_ages(records: Sequence[dict[str, Any]], result: BatchResult, now: float) -> tuple[list[float], list[float]]:
    """Ages in seconds at ``now`` of the records the batch stored: (since SentTimestamp, since occurred_at).

    A record counts as stored unless it was returned for retry or rejected. A record without a usable timestamp
    is left out of that list only; ages are to the nearest millisecond and never negative (clocks of different
    hosts may disagree a little).
    """
    # Per record, in whole milliseconds (an int subtraction and one division instead of round(x, 3) and max():
    # 1.3 -> 0.6 µs a record for the two ages, docs/benchmarks.md). The same values as seconds rounded to 3 places,
    # but for an age within a float's error of half a millisecond, which either way is a sub-millisecond tie.
    failed = set(result.retry) | {rejected.message_id for rejected in result.rejected}
    now_ms = round(now * 1000)
    since_sent: list[float] = []
    since_occurred: list[float] = []
    validated = result.occurred_at
    for record in records:
        message_id = str(record.get("messageId", ""))
        if message_id in failed:
            continue
        try:  # SentTimestamp: milliseconds since the epoch, as text (what SQS sends)
            age = now_ms - int(record["attributes"]["SentTimestamp"])
        except (KeyError, TypeError, ValueError):
            pass
        else:
            since_sent.append(age / 1000 if age > 0 else 0.0)
        # The validator's instant when the batch kept it (no second parse of the body); the body otherwise.
        instant = validated.get(message_id)
        occurred = instant.timestamp() if instant is not None else _occurred_seconds(record)
        if occurred is not None:
            age = round((now - occurred) * 1000)
            since_occurred.append(age / 1000 if age > 0 else 0.0)
    return since_sent, since_occurred


def emf_documents(
    records: Sequence[dict[str, Any]],
    result: BatchResult,
    now: float,
    function_name: str,
    namespace: str = DEFAULT_NAMESPACE,
) -> list[dict[str, Any]]:
    """The EMF documents for one batch: the counts in the first, the ages in chunks of at most 100 values."""
    since_sent, since_occurred = stored_ages(records, result, now)
    retried = set(result.retry)
    dead_lettered = sum(1 for rejected in result.rejected if rejected.message_id not in retried)
    documents: list[dict[str, Any]] = []
    chunks = max(1, -(-max(len(since_sent), len(since_occurred)) // MAX_VALUES_PER_METRIC))
    for index in range(chunks):
        values: dict[str, Any] = {}
        units: dict[str, str] = {}
        if index == 0:
            values |= {BATCH_ITEM_FAILURES: len(result.retry), RECORDS_DEAD_LETTERED: dead_lettered}
            units |= {BATCH_ITEM_FAILURES: "Count", RECORDS_DEAD_LETTERED: "Count"}
        window = slice(index * MAX_VALUES_PER_METRIC, (index + 1) * MAX_VALUES_PER_METRIC)
        for name, ages in ((PUBLISH_TO_STORED, since_sent), (OCCURRED_TO_STORED, since_occurred)):
            if ages[window]:
                values[name] = ages[window]
                units[name] = "Seconds"
        documents.append(
            {
                "_aws": {
                    "Timestamp": int(now * 1000),
                    "CloudWatchMetrics": [
                        {
                            "Namespace": namespace,
                            "Dimensions": [[DIMENSION]],
                            "Metrics": [{"Name": name, "Unit": unit} for name, unit in units.items()],
                        }
                    ],
                },
                DIMENSION: function_name,
                **values,
            }
        )
    return documents


def emit_batch_metrics(
    records: Sequence[dict[str, Any]],
    result: BatchResult,
    now: float | None = None,
    write: Callable[[str], object] | None = None,
) -> None:
    """Write the batch's EMF lines to stdout (the hook the handler calls once per batch). Never raises."""
    try:
        documents = emf_documents(
            records,
            result,
            time.time() if now is None else now,
            os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "rampart-ingest"),
            os.environ.get("POWERTOOLS_METRICS_NAMESPACE") or DEFAULT_NAMESPACE,
        )
        out = write or sys.stdout.write
        for document in documents:
            out(json.dumps(document, separators=(",", ":")) + "\n")
        if write is None:
            sys.stdout.flush()
    except Exception as exc:  # noqa: BLE001 - the records are stored and accounted for; a metric must not fail them
        with contextlib.suppress(OSError):
            warning = {"level": "WARNING", "message": "batch metrics not written", "error": type(exc).__name__}
            sys.stderr.write(json.dumps(warning) + "\n")


def _occurred_seconds(record: dict[str, Any]) -> float | None:
    try:
        event = json.loads(record_body(record))
        occurred = dt.datetime.fromisoformat(event["occurred_at"])
    except (KeyError, TypeError, ValueError, AttributeError):
        return None
    if occurred.tzinfo is None:
        return None
    return occurred.timestamp()
