"""The freshness SLI and partial-batch failures as the real ingest handler emits them (EMF on stdout), for a raw SQS
batch stored in the real PostgreSQL: what CloudWatch turns into the metrics iac/modules/monitoring alarms on."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from rampart.ingest import metrics
from rampart.local.postgres import EmbeddedPostgres
from tests.conftest import make_event
from tests.helpers import FakeContext, sqs_event


def _emf(out: str) -> list[dict[str, Any]]:
    documents = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    return [d for d in documents if d.get(metrics.DIMENSION) == "rampart-it-ingest"]


@pytest.fixture
def function_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "rampart-it-ingest")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "Rampart")


def test_every_stored_event_has_its_age_since_publication(
    ingest: Any, function_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    event = sqs_event(*(json.dumps(make_event()) for _ in range(3)), "{not json")
    sent = time.time() - 42.0
    for record in event["Records"]:
        record["attributes"]["SentTimestamp"] = str(int(sent * 1000))
    before = time.time()
    response = ingest.lambda_handler(event, FakeContext())
    after = time.time()
    assert response == {"batchItemFailures": [{"itemIdentifier": event["Records"][3]["messageId"]}]}  # no DLQ set
    [document] = _emf(capsys.readouterr().out)
    ages = document[metrics.PUBLISH_TO_STORED]
    assert len(ages) == 3  # the three stored events, not the poison one
    assert all(before - sent - 0.01 <= age <= after - sent + 0.01 for age in ages)
    assert document[metrics.BATCH_ITEM_FAILURES] == 1 and document[metrics.RECORDS_DEAD_LETTERED] == 0
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Rampart"


def test_a_database_outage_shows_as_batch_item_failures_not_as_stored_ages(
    ingest: Any, pg: EmbeddedPostgres, function_env: None, capsys: pytest.CaptureFixture[str]
) -> None:
    event = sqs_event(*(json.dumps(make_event()) for _ in range(4)))
    pg.pause()
    try:
        response = ingest.lambda_handler(event, FakeContext())
    finally:
        pg.resume()
    assert len(response["batchItemFailures"]) == 4
    [document] = _emf(capsys.readouterr().out)
    assert document[metrics.BATCH_ITEM_FAILURES] == 4
    assert metrics.PUBLISH_TO_STORED not in document
