"""Operating the dead-letter queue: list what failed and why, show one message, move messages back after a fix.

Works against any SQS endpoint boto3 can reach: the local stack's emulator, or the real queues with ordinary
AWS credentials. Listing does not consume messages: they are received with a short visibility timeout and
released again (visibility 0) before it returns. Redrive sends a copy to the source queue first and deletes
from the DLQ only after the send succeeded, so a failure in between leaves a duplicate (harmless: ingest is
idempotent on event_id), never a loss.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

REASON_ATTRIBUTE = "rampart_failure_reason"
MESSAGE_ID_ATTRIBUTE = "rampart_original_message_id"
REDRIVE_REASON = "exceeded maxReceiveCount (moved by the redrive policy; see the ingest logs for the cause)"
_LIST_VISIBILITY_S = 60
_OUR_ATTRIBUTES = {REASON_ATTRIBUTE, MESSAGE_ID_ATTRIBUTE}


@dataclass(frozen=True)
class DeadLetter:
    message_id: str
    receipt_handle: str
    body: str
    reason: str
    original_message_id: str | None
    sent_at: dt.datetime | None
    receive_count: int
    attributes: dict[str, Any]

    def preview(self, width: int = 80) -> str:
        text = " ".join(self.body.split())
        return text if len(text) <= width else text[: width - 1] + "…"


class DeadLetterQueue:
    def __init__(self, sqs: Any, dlq_url: str, source_queue_url: str) -> None:
        self.sqs = sqs
        self.dlq_url = dlq_url
        self.source_queue_url = source_queue_url

    def depth(self) -> int:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.dlq_url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )["Attributes"]
        return int(attrs.get("ApproximateNumberOfMessages", 0))

    def _receive_all(self, limit: int) -> list[DeadLetter]:
        found: dict[str, DeadLetter] = {}
        empty_rounds = 0
        while len(found) < limit and empty_rounds < 2:
            out = self.sqs.receive_message(
                QueueUrl=self.dlq_url,
                MaxNumberOfMessages=min(10, limit - len(found)),
                VisibilityTimeout=_LIST_VISIBILITY_S,
                WaitTimeSeconds=0,
                MessageAttributeNames=["All"],
                AttributeNames=["All"],
            )
            messages = out.get("Messages", [])
            if not messages:
                empty_rounds += 1
                continue
            for raw in messages:
                letter = _parse(raw)
                found.setdefault(letter.message_id, letter)
        return list(found.values())

    def _release(self, letters: Iterable[DeadLetter]) -> None:
        entries = [
            {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0} for i, m in enumerate(letters)
        ]
        for start in range(0, len(entries), 10):
            self.sqs.change_message_visibility_batch(QueueUrl=self.dlq_url, Entries=entries[start : start + 10])

    def list(self, limit: int = 100) -> list[DeadLetter]:
        """Up to ``limit`` dead letters, oldest first; none is consumed."""
        letters = self._receive_all(limit)
        self._release(letters)
        return sorted(letters, key=lambda m: (m.sent_at or dt.datetime.min.replace(tzinfo=dt.UTC), m.message_id))

    def show(self, message_id: str) -> DeadLetter | None:
        return next((m for m in self.list(limit=1000) if m.message_id == message_id), None)

    def redrive(self, message_ids: set[str] | None = None, limit: int = 1000) -> tuple[int, int]:
        """Move the given messages (all when None) back to the source queue; return (moved, not moved)."""
        letters = self._receive_all(limit)
        chosen = [m for m in letters if message_ids is None or m.message_id in message_ids]
        self._release([m for m in letters if m not in chosen])
        moved = failed = 0
        for letter in chosen:
            attributes = {k: v for k, v in letter.attributes.items() if k not in _OUR_ATTRIBUTES}
            kwargs: dict[str, Any] = {"QueueUrl": self.source_queue_url, "MessageBody": letter.body}
            if attributes:
                kwargs["MessageAttributes"] = attributes
            try:
                self.sqs.send_message(**kwargs)
            except Exception:  # noqa: BLE001 - leave it in the DLQ, visible again, and report it
                self._release([letter])
                failed += 1
                continue
            self.sqs.delete_message(QueueUrl=self.dlq_url, ReceiptHandle=letter.receipt_handle)
            moved += 1
        return moved, failed


def _parse(raw: dict[str, Any]) -> DeadLetter:
    attrs = raw.get("MessageAttributes") or {}
    system = raw.get("Attributes") or {}
    reason = attrs.get(REASON_ATTRIBUTE, {}).get("StringValue") or REDRIVE_REASON
    original = attrs.get(MESSAGE_ID_ATTRIBUTE, {}).get("StringValue")
    sent = system.get("SentTimestamp")
    return DeadLetter(
        message_id=raw["MessageId"],
        receipt_handle=raw["ReceiptHandle"],
        body=raw.get("Body", ""),
        reason=reason,
        original_message_id=original,
        sent_at=dt.datetime.fromtimestamp(int(sent) / 1000, dt.UTC) if sent else None,
        receive_count=int(system.get("ApproximateReceiveCount", 0)),
        attributes={
            k: {key: v[key] for key in ("DataType", "StringValue", "BinaryValue") if key in v} for k, v in attrs.items()
        },
    )
