"""The event source mapping against a real SQS emulator: it deletes exactly what the handler did not fail."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from rampart.local import aws
from rampart.local.esm import EventSourceMapping, MappingConfig, failed_message_ids

REGION = "eu-west-1"


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "rampart.local.aws"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True
    )
    try:
        assert proc.stdout is not None
        yield json.loads(proc.stdout.readline())["endpoint"]
    finally:
        proc.terminate()
        proc.wait(10)


@dataclass(frozen=True)
class Queue:
    queue_url: str
    queue_arn: str


@pytest.fixture
def queue(endpoint: str, request: pytest.FixtureRequest) -> Queue:
    """A fresh queue per test, with a 1 s visibility timeout so failed records come back quickly."""
    name = "esm-" + hashlib.sha1(request.node.name.encode(), usedforsecurity=False).hexdigest()[:10]
    sqs = aws.client("sqs", endpoint, REGION)
    url = sqs.create_queue(QueueName=name, Attributes={"VisibilityTimeout": "1"})["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    return Queue(url, arn)


class Handler:
    """Plays the function: records each event, fails the records whose body says so."""

    def __init__(self, raise_error: bool = False) -> None:
        self.events: list[dict[str, Any]] = []
        self.raise_error = raise_error

    def __call__(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        if self.raise_error:
            raise RuntimeError("handler crashed")
        failed = [r["messageId"] for r in event["Records"] if r["body"].startswith("fail")]
        return {"batchItemFailures": [{"itemIdentifier": m} for m in failed]}


def send(endpoint: str, res: Queue, bodies: list[str]) -> None:
    sqs = aws.client("sqs", endpoint, REGION)
    for start in range(0, len(bodies), 10):
        entries = [{"Id": str(i), "MessageBody": b} for i, b in enumerate(bodies[start : start + 10])]
        sqs.send_message_batch(QueueUrl=res.queue_url, Entries=entries)


def depth(endpoint: str, res: Queue) -> tuple[int, int]:
    attrs = aws.client("sqs", endpoint, REGION).get_queue_attributes(
        QueueUrl=res.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]), int(attrs["ApproximateNumberOfMessagesNotVisible"])


def mapping(endpoint: str, res: Queue, handler: Any, **config: Any) -> EventSourceMapping:
    cfg = MappingConfig(queue_url=res.queue_url, queue_arn=res.queue_arn, region=REGION, **config)
    return EventSourceMapping(cfg, handler, aws.client("sqs", endpoint, REGION), log=lambda *a, **k: None)


def test_only_records_not_reported_failed_are_deleted(endpoint: str, queue: Queue) -> None:
    send(endpoint, queue, ["ok-1", "fail-2", "ok-3", "fail-4", "ok-5"])
    handler = Handler()
    esm = mapping(endpoint, queue, handler, batch_size=10)

    def bodies() -> list[str]:
        return [r["body"] for e in handler.events for r in e["Records"]]

    deadline = time.monotonic() + 60  # generous: polled conditions, not timings
    while len(set(bodies())) < 5 and time.monotonic() < deadline:
        esm.run_once()
    assert sorted(set(bodies())) == ["fail-2", "fail-4", "ok-1", "ok-3", "ok-5"]
    # The three successes are deleted, the two failures stay in the queue (in flight or back already).
    assert sum(depth(endpoint, queue)) == 2
    assert esm.stats.snapshot()["deleted"] == 3
    # After the 1 s visibility timeout the failures come back, and only they.
    handler.events.clear()
    while sorted(set(bodies())) != ["fail-2", "fail-4"] and time.monotonic() < deadline:
        esm.run_once()
        assert set(bodies()) <= {"fail-2", "fail-4"}
    assert sorted(set(bodies())) == ["fail-2", "fail-4"]
    redelivered = [r for e in handler.events for r in e["Records"]]
    assert all(int(r["attributes"]["ApproximateReceiveCount"]) >= 2 for r in redelivered)
    assert esm.stats.snapshot()["deleted"] == 3


def test_records_have_the_lambda_sqs_event_shape(endpoint: str, queue: Queue) -> None:
    sqs = aws.client("sqs", endpoint, REGION)
    sqs.send_message(
        QueueUrl=queue.queue_url,
        MessageBody='{"hello": "world"}',
        MessageAttributes={"kind": {"DataType": "String", "StringValue": "greeting"}},
    )
    handler = Handler()
    esm = mapping(endpoint, queue, handler)
    assert esm.run_once() == 1
    record = handler.events[0]["Records"][0]
    assert set(record) == {
        "messageId", "receiptHandle", "body", "attributes", "messageAttributes", "md5OfBody",
        "md5OfMessageAttributes", "eventSource", "eventSourceARN", "awsRegion",
    }  # fmt: skip
    assert record["eventSource"] == "aws:sqs"
    assert record["eventSourceARN"] == queue.queue_arn
    assert record["awsRegion"] == REGION
    assert record["md5OfBody"] == hashlib.md5(b'{"hello": "world"}', usedforsecurity=False).hexdigest()
    assert {"ApproximateReceiveCount", "SentTimestamp", "SenderId", "ApproximateFirstReceiveTimestamp"} <= set(
        record["attributes"]
    )
    assert record["messageAttributes"] == {
        "kind": {"stringValue": "greeting", "stringListValues": [], "binaryListValues": [], "dataType": "String"}
    }


def test_a_handler_exception_fails_the_whole_batch_and_the_poller_lives_on(endpoint: str, queue: Queue) -> None:
    send(endpoint, queue, ["ok-1", "ok-2", "ok-3"])
    handler = Handler(raise_error=True)
    esm = mapping(endpoint, queue, handler, poll_wait_s=0)
    runner = threading.Thread(target=esm.run)
    runner.start()
    try:
        deadline = time.monotonic() + 60  # generous: a polled condition, not a timing
        while esm.stats.snapshot()["handler_errors"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        assert esm.stats.snapshot()["handler_errors"] >= 2  # it polled again after the first crash
        handler.raise_error = False
        while depth(endpoint, queue) != (0, 0) and time.monotonic() < deadline + 60:
            time.sleep(0.05)
        assert depth(endpoint, queue) == (0, 0)
    finally:
        esm.stop()
        runner.join(10)
    assert not runner.is_alive()
    assert esm.stats.snapshot()["deleted"] == 3


def test_stop_finishes_the_batch_in_hand(endpoint: str, queue: Queue) -> None:
    send(endpoint, queue, ["ok-1", "ok-2"])
    entered, release = threading.Event(), threading.Event()

    def slow(event: dict[str, Any], context: Any) -> dict[str, Any]:
        entered.set()
        release.wait(60)
        return {"batchItemFailures": []}

    esm = mapping(endpoint, queue, slow, poll_wait_s=1)
    runner = threading.Thread(target=esm.run)
    runner.start()
    assert entered.wait(60)
    esm.stop()
    time.sleep(0.2)
    assert runner.is_alive()  # still inside the batch
    release.set()
    runner.join(10)
    assert not runner.is_alive()
    assert esm.stats.snapshot()["deleted"] == 2
    assert depth(endpoint, queue) == (0, 0)


def test_batching_window_gathers_more_than_one_receive(endpoint: str, queue: Queue) -> None:
    send(endpoint, queue, [f"ok-{i}" for i in range(25)])
    handler = Handler()
    # The window only bounds the wait: the batch closes as soon as it holds 25, so a long window costs nothing
    # and a loaded machine cannot split the batch.
    esm = mapping(endpoint, queue, handler, batch_size=25, batching_window_s=60)
    assert esm.run_once() == 25
    assert len(handler.events) == 1 and len(handler.events[0]["Records"]) == 25


def test_lambda_rules_for_the_partial_batch_response() -> None:
    ids = ["a", "b", "c"]
    assert failed_message_ids(None, ids) == (set(), None)
    assert failed_message_ids({}, ids) == (set(), None)
    assert failed_message_ids({"batchItemFailures": []}, ids) == (set(), None)
    assert failed_message_ids({"batchItemFailures": [{"itemIdentifier": "b"}]}, ids) == ({"b"}, None)
    for bad in (
        "nope",
        {"batchItemFailures": "b"},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "b"}]},
        {"batchItemFailures": [{"itemIdentifier": "zzz"}]},
    ):
        failed, reason = failed_message_ids(bad, ids)
        assert failed == set(ids) and reason, bad


def test_config_follows_the_aws_limits() -> None:
    base = {"queue_url": "u", "queue_arn": "a", "region": REGION}
    with pytest.raises(ValueError, match="batching window"):
        MappingConfig(**base, batch_size=11)
    with pytest.raises(ValueError, match="batch_size"):
        MappingConfig(**base, batch_size=0)
    assert MappingConfig(**base, batch_size=100, batching_window_s=1).batch_size == 100
