"""Ingest Lambda: SQS (SNS events) -> validated -> PostgreSQL, with a partial batch response.

Thin on purpose: the work is in :mod:`rampart.ingest.batch`. Powertools' BatchProcessor is not used because it
handles records one at a time, and Rampart writes a batch with one statement; this handler builds the same
``batchItemFailures`` response itself and never raises, so no failure can lose the batch's accounting.
"""

from __future__ import annotations

import os
from typing import Any

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from rampart.db.connection import Database
from rampart.db.settings import DatabaseSettings
from rampart.db.store import EventStore
from rampart.ingest.batch import BatchResult, process_batch
from rampart.ingest.dead_letters import SqsDeadLetters
from rampart.ingest.metrics import emit_batch_metrics

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "rampart-ingest"))
metrics = Metrics(namespace=os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "Rampart"))

_store: EventStore | None = None
_dead_letters: SqsDeadLetters | None = None


def _dependencies() -> tuple[EventStore, SqsDeadLetters | None]:
    global _store, _dead_letters  # noqa: PLW0603 - reused across warm invocations by design
    if _store is None:
        settings = DatabaseSettings.from_env(application_name="rampart-ingest")
        _store = EventStore(Database(settings))
        if url := os.environ.get("RAMPART_DLQ_URL"):
            _dead_letters = SqsDeadLetters(url, log=_log)
    return _store, _dead_letters


def _log(message: str, **fields: Any) -> None:
    logger.warning(message, extra=fields)


@metrics.log_metrics
@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    records = event.get("Records") or []
    try:
        store, dead_letters = _dependencies()
        result = process_batch(records, store, dead_letters, log=_log)
    except Exception:
        # A bug or a misconfiguration: every record goes back to the queue; nothing is dropped.
        logger.exception("batch failed unexpectedly; every record will be retried")
        result = BatchResult(retry=[str(r.get("messageId", "")) for r in records])
    metrics.add_metric(name="EventsStored", unit=MetricUnit.Count, value=result.stored)
    metrics.add_metric(name="EventsDuplicate", unit=MetricUnit.Count, value=result.duplicates)
    metrics.add_metric(name="EventsRejected", unit=MetricUnit.Count, value=len(result.rejected))
    metrics.add_metric(name="RecordsRetried", unit=MetricUnit.Count, value=len(result.retry))
    logger.info(
        "batch processed",
        extra={
            "records": len(records),
            "stored": result.stored,
            "duplicates": result.duplicates,
            "rejected": len(result.rejected),
            "retried": len(result.retry),
        },
    )
    emit_batch_metrics(records, result)  # freshness and partial-batch failures as EMF (rampart.ingest.metrics)
    return result.response()
