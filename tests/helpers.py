"""Builders for the exact event shapes Lambda hands to the handlers."""

from __future__ import annotations

import hashlib
import json
import uuid
from typing import Any


class FakeContext:
    """The attributes of a Lambda context object that Powertools reads."""

    function_name = "rampart-test"
    memory_limit_in_mb = 256
    invoked_function_arn = "arn:aws:lambda:eu-west-1:123456789012:function:rampart-test"

    def __init__(self) -> None:
        self.aws_request_id = str(uuid.uuid4())

    def get_remaining_time_in_millis(self) -> int:
        return 30_000


def sqs_record(body: str, message_id: str | None = None, receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id or str(uuid.uuid4()),
        "receiptHandle": "handle-" + uuid.uuid4().hex,
        "body": body,
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1700000000000",
            "SenderId": "AIDAEXAMPLE",
            "ApproximateFirstReceiveTimestamp": "1700000000001",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": "arn:aws:sqs:eu-west-1:123456789012:rampart-test-events",
        "awsRegion": "eu-west-1",
    }


def sns_envelope(message: str) -> str:
    return json.dumps(
        {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": "arn:aws:sns:eu-west-1:123456789012:rampart-test-events",
            "Message": message,
            "Timestamp": "2026-11-28T00:00:00.000Z",
            "SignatureVersion": "1",
        }
    )


def sqs_event(*bodies: str) -> dict[str, Any]:
    return {"Records": [sqs_record(b) for b in bodies]}


def api_event(
    path: str,
    query: dict[str, str] | None = None,
    multi: dict[str, list[str]] | None = None,
    method: str = "GET",
    headers: dict[str, str] | None = None,
) -> dict[str, Any]:
    if multi is None and query is not None:
        multi = {k: [v] for k, v in query.items()}
    if query is None and multi is not None:
        query = {k: v[-1] for k, v in multi.items()}
    hdrs = {"Host": "api.example.com", "x-api-key": "test-key", **(headers or {})}
    return {
        "resource": path,
        "path": path,
        "httpMethod": method,
        "headers": hdrs,
        "multiValueHeaders": {k: [v] for k, v in hdrs.items()},
        "queryStringParameters": query,
        "multiValueQueryStringParameters": multi,
        "pathParameters": None,
        "stageVariables": None,
        "requestContext": {
            "requestId": str(uuid.uuid4()),
            "stage": "v1",
            "httpMethod": method,
            "path": "/v1" + path,
            "identity": {"apiKey": "test-key", "apiKeyId": "key-id", "sourceIp": "127.0.0.1"},
        },
        "body": None,
        "isBase64Encoded": False,
    }


class FakeSqs:
    """An SQS client that records SendMessageBatch calls and fails what a test chooses: whole calls (``fail_calls``,
    by 1-based call number; they raise like a throttled or unreachable endpoint) or single entries
    (``fail_bodies``; answered in ``Failed`` with ``fail_code``, as SQS does)."""

    def __init__(
        self, fail_calls: set[int] | None = None, fail_bodies: set[str] | None = None, fail_code: str = "InternalError"
    ) -> None:
        self.fail_calls = fail_calls or set()
        self.fail_bodies = fail_bodies or set()
        self.fail_code = fail_code
        self.calls: list[list[dict[str, Any]]] = []
        self.delivered: list[dict[str, Any]] = []  # every entry SQS accepted, in order

    def send_message_batch(self, QueueUrl: str, Entries: list[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(Entries)
        if len(self.calls) in self.fail_calls:
            raise ConnectionError("the endpoint could not be reached")
        ok, failed = [], []
        for entry in Entries:
            if entry["MessageBody"] in self.fail_bodies:
                failed.append({"Id": entry["Id"], "SenderFault": False, "Code": self.fail_code, "Message": "nope"})
            else:
                self.delivered.append(entry)
                ok.append({"Id": entry["Id"], "MessageId": str(uuid.uuid4()), "MD5OfMessageBody": "x"})
        return {"Successful": ok, "Failed": failed}

    def reasons(self) -> dict[str, str]:
        """Body -> the failure reason attribute, for everything delivered."""
        return {
            e["MessageBody"]: e["MessageAttributes"]["rampart_failure_reason"]["StringValue"] for e in self.delivered
        }
