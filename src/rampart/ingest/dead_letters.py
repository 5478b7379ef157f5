"""Send records that can never succeed to the DLQ, with the reason they failed.

Every entry has its own outcome, kept across chunks: a chunk that fails (throttled, unreachable) or an entry SQS
refuses costs only those entries, which the handler then reports failed (the redrive policy moves them later);
the entries already sent are reported done, so a redelivered batch never sends them a second time. Chunks hold at
most 10 entries and 256 KiB in total (SendMessageBatch's limits). A failure is logged with its message id and
error code, never with the body.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

from rampart.dlq import MESSAGE_ID_ATTRIBUTE, REASON_ATTRIBUTE
from rampart.ingest.batch import Rejected

_MAX_REASON = 1000
MAX_BATCH_ENTRIES = 10
MAX_BATCH_BYTES = 256 * 1024  # SendMessageBatch: the sum of all messages, bodies and attributes
TOO_LARGE = "EntryTooLarge"  # our code for a message that cannot fit any batch (it is left to the redrive policy)


def _entry(index: int, rej: Rejected) -> dict[str, Any]:
    return {
        "Id": str(index),
        "MessageBody": rej.body or "(empty)",
        "MessageAttributes": {
            REASON_ATTRIBUTE: {"DataType": "String", "StringValue": rej.reason[:_MAX_REASON]},
            MESSAGE_ID_ATTRIBUTE: {"DataType": "String", "StringValue": rej.message_id or "-"},
        },
    }


def entry_size(entry: dict[str, Any]) -> int:
    """Bytes SQS counts for one message: its body, and each attribute's name, data type and value."""
    size = len(entry["MessageBody"].encode("utf-8"))
    for name, attribute in entry["MessageAttributes"].items():
        size += len(name.encode("utf-8")) + len(attribute["DataType"].encode("utf-8"))
        size += len(attribute["StringValue"].encode("utf-8"))
    return size


def chunks(entries: Sequence[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Consecutive chunks of at most MAX_BATCH_ENTRIES entries and MAX_BATCH_BYTES bytes (entries too large to
    be sent at all are not in any chunk)."""
    chunk: list[dict[str, Any]] = []
    total = 0
    for entry in entries:
        size = entry_size(entry)
        if size > MAX_BATCH_BYTES:
            continue
        if chunk and (len(chunk) == MAX_BATCH_ENTRIES or total + size > MAX_BATCH_BYTES):
            yield chunk
            chunk, total = [], 0
        chunk.append(entry)
        total += size
    if chunk:
        yield chunk


def _error_code(exc: Exception) -> str:
    response = getattr(exc, "response", None)  # botocore's ClientError carries the service's error code
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code") or type(exc).__name__)
    return type(exc).__name__


class SqsDeadLetters:
    def __init__(self, queue_url: str, client: Any = None, log: Callable[..., None] | None = None) -> None:
        self.queue_url = queue_url
        self._client = client
        self._log = log or (lambda *_a, **_k: None)

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3  # noqa: PLC0415 - only a batch with a rejected record pays for importing boto3

            self._client = boto3.client("sqs")
        return self._client

    def send(self, rejected: Sequence[Rejected]) -> set[str]:
        """Send each record to the DLQ; return the message ids that were sent (the rest are retried)."""
        entries = [_entry(i, rej) for i, rej in enumerate(rejected)]
        sent: set[str] = set()
        for entry in entries:
            if entry_size(entry) > MAX_BATCH_BYTES:
                self._failed(rejected[int(entry["Id"])], TOO_LARGE, sender_fault=True)
        for chunk in chunks(entries):
            try:
                answer = self.client.send_message_batch(QueueUrl=self.queue_url, Entries=chunk)
            except Exception as exc:  # noqa: BLE001 - this chunk's entries are retried; the other chunks still go
                for entry in chunk:
                    self._failed(rejected[int(entry["Id"])], _error_code(exc), sender_fault=False)
                continue
            sent.update(rejected[int(ok["Id"])].message_id for ok in answer.get("Successful", []))
            for failed in answer.get("Failed", []):
                rej = rejected[int(failed["Id"])]
                self._failed(rej, str(failed.get("Code", "unknown")), sender_fault=bool(failed.get("SenderFault")))
        return sent

    def _failed(self, rej: Rejected, code: str, sender_fault: bool) -> None:
        self._log(
            "could not send a rejected record to the DLQ; the redrive policy will move it",
            message_id=rej.message_id,
            error_code=code,
            sender_fault=sender_fault,
        )
