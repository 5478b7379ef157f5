"""Send records that can never succeed to the DLQ, with the reason they failed."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rampart.dlq import MESSAGE_ID_ATTRIBUTE, REASON_ATTRIBUTE
from rampart.ingest.batch import Rejected

_MAX_REASON = 1000


class SqsDeadLetters:
    def __init__(self, queue_url: str, client: Any = None) -> None:
        self.queue_url = queue_url
        self._client = client

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # noqa: PLC0415 - only a batch with a rejected record pays for importing boto3

            self._client = boto3.client("sqs")
        return self._client

    def send(self, rejected: Sequence[Rejected]) -> set[str]:
        sent: set[str] = set()
        for start in range(0, len(rejected), 10):
            chunk = rejected[start : start + 10]
            entries = [
                {
                    "Id": str(i),
                    "MessageBody": rej.body or "(empty)",
                    "MessageAttributes": {
                        REASON_ATTRIBUTE: {"DataType": "String", "StringValue": rej.reason[:_MAX_REASON]},
                        MESSAGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": rej.message_id or "-"},
                    },
                }
                for i, rej in enumerate(chunk)
            ]
            answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=entries)
            sent.update(chunk[int(ok["Id"])].message_id for ok in answer.get("Successful", []))
        return sent
