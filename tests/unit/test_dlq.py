"""DLQ tooling against the AWS emulator (moto): list without consuming, show, redrive after a fix."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rampart.dlq import REASON_ATTRIBUTE, REDRIVE_REASON, DeadLetterQueue
from rampart.ingest.batch import Rejected
from rampart.ingest.dead_letters import SqsDeadLetters


@pytest.fixture
def queues(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Any, str, str]]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sqs = boto3.client("sqs", region_name="eu-west-1")
        source = sqs.create_queue(QueueName="rampart-test-events")["QueueUrl"]
        dlq = sqs.create_queue(QueueName="rampart-test-events-dlq")["QueueUrl"]
        yield sqs, source, dlq


def _fill(sqs: Any, dlq: str) -> None:
    # Two the ingest handler dead-lettered itself (with reasons), one the redrive policy moved (no reason).
    SqsDeadLetters(dlq, sqs).send(
        [Rejected("m-1", "not json", "not valid JSON: Expecting value"), Rejected("m-2", "{}", "schema violation")]
    )
    sqs.send_message(
        QueueUrl=dlq,
        MessageBody=json.dumps({"event_id": "x"}),
        MessageAttributes={"producer": {"DataType": "String", "StringValue": "billing"}},
    )


def test_list_shows_reasons_and_consumes_nothing(queues: tuple[Any, str, str]) -> None:
    sqs, source, dlq = queues
    _fill(sqs, dlq)
    tool = DeadLetterQueue(sqs, dlq, source)
    first = tool.list()
    assert sorted(m.reason for m in first) == sorted(
        ["not valid JSON: Expecting value", "schema violation", REDRIVE_REASON]
    )
    assert {m.original_message_id for m in first} == {"m-1", "m-2", None}
    assert len(tool.list()) == 3  # still all there
    assert tool.depth() == 3


def test_show_finds_one(queues: tuple[Any, str, str]) -> None:
    sqs, source, dlq = queues
    _fill(sqs, dlq)
    tool = DeadLetterQueue(sqs, dlq, source)
    target = tool.list()[0]
    shown = tool.show(target.message_id)
    assert shown is not None and shown.body == target.body
    assert tool.show("no-such-id") is None


def test_redrive_moves_chosen_messages_without_our_attributes(queues: tuple[Any, str, str]) -> None:
    sqs, source, dlq = queues
    _fill(sqs, dlq)
    tool = DeadLetterQueue(sqs, dlq, source)
    redriven = next(m for m in tool.list() if m.reason == REDRIVE_REASON)
    assert tool.redrive({redriven.message_id}) == (1, 0)
    assert len(tool.list()) == 2
    out = sqs.receive_message(QueueUrl=source, MessageAttributeNames=["All"], MaxNumberOfMessages=10)["Messages"]
    assert [m["Body"] for m in out] == [redriven.body]
    assert out[0]["MessageAttributes"]["producer"]["StringValue"] == "billing"
    assert REASON_ATTRIBUTE not in out[0]["MessageAttributes"]


def test_redrive_all(queues: tuple[Any, str, str]) -> None:
    sqs, source, dlq = queues
    _fill(sqs, dlq)
    tool = DeadLetterQueue(sqs, dlq, source)
    assert tool.redrive() == (3, 0)
    assert tool.list() == []


def test_a_failed_send_leaves_the_message_in_the_dlq(queues: tuple[Any, str, str]) -> None:
    sqs, _source, dlq = queues
    _fill(sqs, dlq)
    tool = DeadLetterQueue(sqs, dlq, "https://sqs.eu-west-1.amazonaws.com/123456789012/does-not-exist")
    assert tool.redrive() == (0, 3)
    assert len(tool.list()) == 3
