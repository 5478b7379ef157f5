"""The ingest's EMF lines (rampart.ingest.metrics): the freshness SLI per stored record, partial-batch failures,
and EMF's limits. What iac/modules/monitoring alarms on must be exactly what these lines carry."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import pytest

from rampart.ingest import metrics
from rampart.ingest.batch import BatchResult, Rejected
from tests.helpers import sns_envelope, sqs_record

SENT_MS = 1_700_000_000_000  # tests.helpers.sqs_record's SentTimestamp
OCCURRED = dt.datetime.fromtimestamp(SENT_MS / 1000 - 100, dt.UTC).isoformat()  # 100 s before SENT_MS
NOW = SENT_MS / 1000 + 12.5


def _record(message_id: str, sent_ms: int | None = SENT_MS, occurred: str = OCCURRED, wrap: bool = False) -> Any:
    body = json.dumps({"event_id": message_id, "occurred_at": occurred, "source": "s", "type": "t", "payload": {}})
    record = sqs_record(sns_envelope(body) if wrap else body, message_id=message_id)
    if sent_ms is None:
        del record["attributes"]["SentTimestamp"]
    else:
        record["attributes"]["SentTimestamp"] = str(sent_ms)
    return record


def _values(documents: list[dict[str, Any]], name: str) -> list[float]:
    return [v for d in documents for v in d.get(name, [])]


def test_only_stored_records_count_and_each_age_is_now_minus_its_timestamps() -> None:
    records = [_record("stored"), _record("retried"), _record("poison"), _record("late", sent_ms=SENT_MS - 400_000)]
    result = BatchResult(stored=2, retry=["retried"], rejected=[Rejected("poison", "{}", "schema violation")])
    [document] = metrics.emf_documents(records, result, NOW, "rampart-dev-ingest")
    assert document[metrics.PUBLISH_TO_STORED] == [12.5, 412.5]
    assert document[metrics.OCCURRED_TO_STORED] == [112.5, 112.5]
    assert document[metrics.BATCH_ITEM_FAILURES] == 1
    assert document[metrics.RECORDS_DEAD_LETTERED] == 1


def test_a_rejected_record_that_could_not_be_dead_lettered_counts_as_retried_only() -> None:
    result = BatchResult(retry=["poison"], rejected=[Rejected("poison", "{}", "schema violation")])
    [document] = metrics.emf_documents([_record("poison")], result, NOW, "f")
    assert document[metrics.BATCH_ITEM_FAILURES] == 1
    assert document[metrics.RECORDS_DEAD_LETTERED] == 0
    assert metrics.PUBLISH_TO_STORED not in document


def test_the_document_is_valid_emf_with_the_alarmed_namespace_and_dimension() -> None:
    [document] = metrics.emf_documents([_record("a")], BatchResult(stored=1), NOW, "rampart-dev-ingest", "Rampart")
    [directive] = document["_aws"]["CloudWatchMetrics"]
    assert document["_aws"]["Timestamp"] == int(NOW * 1000)
    assert directive["Namespace"] == "Rampart"
    assert directive["Dimensions"] == [["FunctionName"]] and document["FunctionName"] == "rampart-dev-ingest"
    declared = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
    assert declared == {
        "PublishToStoredSeconds": "Seconds",
        "OccurredToStoredSeconds": "Seconds",
        "BatchItemFailures": "Count",
        "RecordsDeadLettered": "Count",
    }
    for name in declared:
        assert name in document  # EMF extracts only declared metrics that are present


def test_large_batches_split_into_documents_of_at_most_100_values_per_metric() -> None:
    records = [_record(f"m{i}", sent_ms=SENT_MS - i) for i in range(250)]
    documents = metrics.emf_documents(records, BatchResult(stored=250), NOW, "f")
    assert len(documents) == 3
    for document in documents:
        declared = [m["Name"] for m in document["_aws"]["CloudWatchMetrics"][0]["Metrics"]]
        assert sorted(declared) == sorted(k for k in document if k not in ("_aws", "FunctionName"))
        assert all(len(document[name]) <= 100 for name in declared if isinstance(document[name], list))
    assert len(_values(documents, metrics.PUBLISH_TO_STORED)) == 250
    expected = sorted(round(12.5 + i / 1000, 3) for i in range(250))
    assert sorted(_values(documents, metrics.PUBLISH_TO_STORED)) == expected
    assert [metrics.BATCH_ITEM_FAILURES in d for d in documents] == [True, False, False]
    assert all(len(json.dumps(d)) < 256 * 1024 for d in documents)  # CloudWatch Logs event size


def test_an_empty_or_failed_batch_still_reports_its_counts() -> None:
    [document] = metrics.emf_documents([], BatchResult(), NOW, "f")
    assert document[metrics.BATCH_ITEM_FAILURES] == 0 and metrics.PUBLISH_TO_STORED not in document


def test_sns_envelopes_missing_timestamps_and_clock_skew() -> None:
    records = [
        _record("wrapped", wrap=True),
        _record("no-sent", sent_ms=None),
        _record("ahead", sent_ms=SENT_MS + 60_000),  # another host's clock ahead of ours
        _record("naive", occurred=OCCURRED.removesuffix("+00:00")),  # no offset: not a usable time
    ]
    [document] = metrics.emf_documents(records, BatchResult(stored=4), NOW, "f")
    assert document[metrics.PUBLISH_TO_STORED] == [12.5, 0.0, 12.5]
    assert document[metrics.OCCURRED_TO_STORED] == [112.5, 112.5, 112.5]


def test_emit_writes_one_line_per_document_with_the_function_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "rampart-dev-ingest")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "RampartTest")
    lines: list[str] = []
    metrics.emit_batch_metrics([_record("a")], BatchResult(stored=1), now=NOW, write=lines.append)
    [line] = lines
    document = json.loads(line)
    assert line.endswith("\n") and document["FunctionName"] == "rampart-dev-ingest"
    assert document["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "RampartTest"


def test_emit_never_raises() -> None:
    broken: Any = [None, 42, "x"]

    def explode(_line: str) -> None:
        raise OSError("stdout closed")

    metrics.emit_batch_metrics(broken, BatchResult(stored=3), now=NOW)
    metrics.emit_batch_metrics([_record("a")], BatchResult(stored=1), now=NOW, write=explode)


def test_the_age_since_occurred_at_is_the_validators_instant_not_a_second_parse_of_the_body() -> None:
    # RFC 3339 allows a lowercase 't' and 'z', which Python 3.11's fromisoformat refuses: a second parser here
    # would drop the record from the SLI (or disagree with what was stored). The batch hands over its instant.
    instant = dt.datetime.fromtimestamp(SENT_MS / 1000 - 100, dt.UTC)
    record = _record("lower", occurred=instant.strftime("%Y-%m-%dt%H:%M:%Sz"))
    result = BatchResult(stored=1, occurred_at={"lower": instant})
    [document] = metrics.emf_documents([record], result, NOW, "f")
    assert document[metrics.OCCURRED_TO_STORED] == [112.5]


@pytest.mark.parametrize(
    ("now_offset_us", "occurred_offset_us", "since_sent", "since_occurred"),
    [
        (0, 0, 12.5, 112.5),
        (400, 0, 12.5, 112.5),  # 12.5004 s: to the nearest millisecond, down
        (600, 0, 12.501, 112.501),  # 12.5006 s: up
        (-600, 0, 12.499, 112.499),
        (0, 400, 12.5, 112.5),  # occurred 0.4 ms later: 112.4996 s, up
        (0, 600, 12.5, 112.499),  # 0.6 ms later: 112.4994 s, down
        (0, 1_000, 12.5, 112.499),  # exactly one millisecond
        (0, 112_500_000, 12.5, 0.0),  # occurred exactly now
        (0, 112_500_400, 12.5, 0.0),  # 0.4 ms ahead of our clock: never a negative age
        (0, 200_000_000, 12.5, 0.0),  # far ahead
    ],
)
def test_each_age_is_rounded_to_the_nearest_millisecond_and_never_negative(
    now_offset_us: int, occurred_offset_us: int, since_sent: float, since_occurred: float
) -> None:
    instant = dt.datetime.fromtimestamp(SENT_MS / 1000 - 100, dt.UTC) + dt.timedelta(microseconds=occurred_offset_us)
    result = BatchResult(stored=1, occurred_at={"a": instant})
    now = NOW + now_offset_us / 1_000_000
    [document] = metrics.emf_documents([_record("a")], result, now, "f")
    assert document[metrics.PUBLISH_TO_STORED] == [since_sent]
    assert document[metrics.OCCURRED_TO_STORED] == [since_occurred]


def test_a_sent_timestamp_the_metric_cannot_read_leaves_that_record_out_of_that_list_only() -> None:
    records = [_record(m) for m in ("text", "number", "list", "attrs", "huge", "none")]
    records[1]["attributes"]["SentTimestamp"] = SENT_MS - 1_000  # a JSON number: still milliseconds
    records[2]["attributes"]["SentTimestamp"] = ["1700000000000"]
    records[3]["attributes"] = "SentTimestamp=1700000000000"
    records[4]["attributes"]["SentTimestamp"] = "9" * 400  # far ahead of our clock: 0, and no float overflow
    records[5]["attributes"] = None
    [document] = metrics.emf_documents(records, BatchResult(stored=6), NOW, "f")
    assert document[metrics.PUBLISH_TO_STORED] == [12.5, 13.5, 0.0]
    assert document[metrics.OCCURRED_TO_STORED] == [112.5] * 6
