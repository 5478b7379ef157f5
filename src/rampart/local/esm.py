"""The Lambda event source mapping for SQS, for one machine: poll, invoke, delete what succeeded.

It behaves like the AWS poller with ``ReportBatchItemFailures``:

- long-polls the queue (``WaitTimeSeconds``) and gathers up to ``batch_size`` records, waiting at most
  ``batching_window_s`` (``MaximumBatchingWindowInSeconds``) once the first record is in hand;
- receives with the queue's visibility timeout, or ``visibility_timeout_s`` when given;
- invokes the handler with the exact Lambda SQS event shape and a Lambda context;
- deletes only the records the handler did not list in ``batchItemFailures``; an exception, or a response
  that Lambda would consider invalid (unknown or empty ``itemIdentifier``), fails the whole batch, whose
  records then return after the visibility timeout and, after ``maxReceiveCount`` receives, go to the DLQ;
- ``concurrency`` pollers run side by side (each like one execution environment);
- on stop it finishes the batch in hand, and it never dies because a handler raised or the queue was
  unreachable (it backs off and polls again).

``python -m rampart.local.esm`` runs it as its own process, with the ingest function's environment.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

from rampart.local.context import Handler, LambdaContext, load_handler

DEFAULT_HANDLER = "rampart.ingest.handler.lambda_handler"
MAX_RECEIVE = 10  # SQS ReceiveMessage returns at most 10 messages per call


@dataclass(frozen=True)
class MappingConfig:
    queue_url: str
    queue_arn: str
    region: str
    batch_size: int = 10
    batching_window_s: float = 0.0
    visibility_timeout_s: int | None = None
    poll_wait_s: int = 1
    concurrency: int = 1
    function_name: str = "rampart-local-ingest"
    function_timeout_s: float = 30.0

    def __post_init__(self) -> None:
        if not 1 <= self.batch_size <= 10_000:
            raise ValueError("batch_size must be 1..10000")
        if self.batch_size > MAX_RECEIVE and self.batching_window_s < 1:
            raise ValueError("a batch_size above 10 needs a batching window of at least 1 s (as on AWS)")
        if not 0 <= self.batching_window_s <= 300:
            raise ValueError("batching_window_s must be 0..300")
        if self.visibility_timeout_s is not None and not 0 <= self.visibility_timeout_s <= 43_200:
            raise ValueError("visibility_timeout_s must be 0..43200")
        if not 0 <= self.poll_wait_s <= 20:
            raise ValueError("poll_wait_s must be 0..20 (the SQS long-poll maximum)")
        if not 1 <= self.concurrency <= 64:
            raise ValueError("concurrency must be 1..64")


@dataclass
class MappingStats:
    invocations: int = 0
    records: int = 0
    deleted: int = 0
    failed: int = 0
    handler_errors: int = 0
    receive_errors: int = 0
    delete_errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts: int) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}


def _message_attribute(value: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {
        "stringValue": value.get("StringValue"),
        "binaryValue": None,
        "stringListValues": list(value.get("StringListValues", [])),
        "binaryListValues": [base64.b64encode(b).decode() for b in value.get("BinaryListValues", [])],
        "dataType": value.get("DataType", "String"),
    }
    if "BinaryValue" in value:
        out["binaryValue"] = base64.b64encode(value["BinaryValue"]).decode()
    if out["stringValue"] is None:
        del out["stringValue"]
    if out["binaryValue"] is None:
        del out["binaryValue"]
    return out


def lambda_record(message: Mapping[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    """One SQS message as Lambda's event source mapping hands it to the function."""
    body = str(message.get("Body", ""))
    attributes = {str(k): str(v) for k, v in (message.get("Attributes") or {}).items()}
    record: dict[str, Any] = {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": body,
        "attributes": attributes,
        "messageAttributes": {k: _message_attribute(v) for k, v in (message.get("MessageAttributes") or {}).items()},
        "md5OfBody": message.get("MD5OfBody") or hashlib.md5(body.encode(), usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }
    if message.get("MD5OfMessageAttributes"):
        record["md5OfMessageAttributes"] = message["MD5OfMessageAttributes"]
    return record


def failed_message_ids(response: Any, batch_ids: Iterable[str]) -> tuple[set[str], str | None]:
    """The records to leave on the queue, per Lambda's rules for ``ReportBatchItemFailures``.

    Returns the failed ids and, when the response makes the whole batch fail, why. Success: ``None``, ``{}``,
    a missing, null or empty ``batchItemFailures``. Complete failure (every id): anything that is not such an
    object, or an entry whose ``itemIdentifier`` is missing, empty, null or not a message of this batch.
    """
    ids = set(batch_ids)
    if response is None:
        return set(), None
    if not isinstance(response, dict):
        return ids, "the response is not an object"
    failures = response.get("batchItemFailures")
    if failures is None:
        return set(), None
    if not isinstance(failures, list):
        return ids, "batchItemFailures is not a list"
    failed: set[str] = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not isinstance(identifier, str) or identifier not in ids:
            return ids, "an itemIdentifier is missing, empty or not in the batch"
        failed.add(identifier)
    return failed, None


def _log(level: str, message: str, **fields: Any) -> None:
    line = {"level": level, "component": "event-source-mapping", "message": message, **fields}
    sys.stderr.write(json.dumps(line, default=str) + "\n")
    sys.stderr.flush()


class EventSourceMapping:
    def __init__(
        self,
        config: MappingConfig,
        handler: Handler,
        sqs: Any,
        log: Callable[..., None] = _log,
    ) -> None:
        self.config = config
        self.handler = handler
        self.sqs = sqs
        self.log = log
        self.stats = MappingStats()
        self._stop = threading.Event()

    # -- control -----------------------------------------------------------------------------------------------------
    def stop(self) -> None:
        """Stop polling; every poller finishes the batch it holds, then returns."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    # -- one batch ---------------------------------------------------------------------------------------------------
    def _receive(self, count: int, wait_s: int) -> list[dict[str, Any]]:
        kwargs: dict[str, Any] = {
            "QueueUrl": self.config.queue_url,
            "MaxNumberOfMessages": count,
            "WaitTimeSeconds": wait_s,
            "MessageSystemAttributeNames": ["All"],
            "MessageAttributeNames": ["All"],
        }
        if self.config.visibility_timeout_s is not None:
            kwargs["VisibilityTimeout"] = self.config.visibility_timeout_s
        return list(self.sqs.receive_message(**kwargs).get("Messages", []))

    def poll_batch(self) -> list[dict[str, Any]]:
        """Gather one batch: long-poll for the first records, then fill up within the batching window."""
        cfg = self.config
        batch = self._receive(min(MAX_RECEIVE, cfg.batch_size), cfg.poll_wait_s)
        if not batch:
            return batch
        deadline = time.monotonic() + cfg.batching_window_s
        while len(batch) < cfg.batch_size and not self._stop.is_set():
            remaining = deadline - time.monotonic()
            if cfg.batching_window_s > 0 and remaining <= 0:
                break
            # Without a window, only take what is already waiting (WaitTimeSeconds=0), as Lambda does.
            wait = 0 if cfg.batching_window_s == 0 else max(0, min(cfg.poll_wait_s, int(remaining)))
            more = self._receive(min(MAX_RECEIVE, cfg.batch_size - len(batch)), wait)
            if not more:
                if cfg.batching_window_s == 0:
                    break
                if wait == 0:  # less than a second left in the window: a short pause, not a busy loop
                    self._stop.wait(min(0.05, max(0.0, remaining)))
                continue
            batch.extend(more)
        return batch

    def invoke(self, batch: list[dict[str, Any]]) -> set[str]:
        """Invoke the handler with ``batch``, delete the records that succeeded; return the failed ids."""
        cfg = self.config
        event = {"Records": [lambda_record(m, cfg.queue_arn, cfg.region) for m in batch]}
        ids = [str(m["MessageId"]) for m in batch]
        context = LambdaContext(function_name=cfg.function_name, region=cfg.region, timeout_s=cfg.function_timeout_s)
        started = time.monotonic()
        try:
            response = self.handler(event, context)
        except Exception as exc:  # noqa: BLE001 - a handler error fails the batch; the poller lives on
            self.stats.add(handler_errors=1)
            self.log(
                "ERROR",
                "invocation failed; the whole batch returns to the queue",
                error=type(exc).__name__,
                request_id=context.aws_request_id,
                records=len(ids),
            )
            failed = set(ids)
        else:
            failed, invalid = failed_message_ids(response, ids)
            if invalid:
                self.stats.add(handler_errors=1)
                self.log(
                    "ERROR",
                    "invalid partial batch response; the whole batch returns to the queue",
                    reason=invalid,
                    request_id=context.aws_request_id,
                    records=len(ids),
                )
        duration_ms = round((time.monotonic() - started) * 1000, 1)
        done = [m for m in batch if str(m["MessageId"]) not in failed]
        deleted = self._delete(done)
        self.stats.add(invocations=1, records=len(batch), deleted=deleted, failed=len(failed))
        self.log(
            "INFO",
            "invocation",
            request_id=context.aws_request_id,
            records=len(batch),
            deleted=deleted,
            failed=len(failed),
            duration_ms=duration_ms,
        )
        if duration_ms > cfg.function_timeout_s * 1000:
            self.log("WARNING", "invocation ran longer than the function timeout", duration_ms=duration_ms)
        return failed

    def _delete(self, messages: list[dict[str, Any]]) -> int:
        deleted = 0
        for start in range(0, len(messages), MAX_RECEIVE):
            chunk = messages[start : start + MAX_RECEIVE]
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(chunk)]
            try:
                answer = self.sqs.delete_message_batch(QueueUrl=self.config.queue_url, Entries=entries)
            except Exception as exc:  # noqa: BLE001 - undeleted records are redelivered and stored once (idempotent)
                self.stats.add(delete_errors=len(chunk))
                self.log("WARNING", "delete failed; the records will be redelivered", error=type(exc).__name__)
                continue
            deleted += len(answer.get("Successful", []))
            if errors := answer.get("Failed", []):
                self.stats.add(delete_errors=len(errors))
                self.log("WARNING", "some deletes failed", codes=sorted({e.get("Code") for e in errors}))
        return deleted

    def run_once(self) -> int:
        """Poll one batch and invoke the handler with it; return the number of records handled."""
        batch = self.poll_batch()
        if batch:
            self.invoke(batch)
        return len(batch)

    # -- the poller loop ---------------------------------------------------------------------------------------------
    def _poller(self) -> None:
        backoff = 0.2
        while not self._stop.is_set():
            try:
                batch = self.poll_batch()
            except Exception as exc:  # noqa: BLE001 - the queue may be briefly unreachable; poll again later
                self.stats.add(receive_errors=1)
                self.log("WARNING", "receive failed; backing off", error=type(exc).__name__, backoff_s=backoff)
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)
                continue
            backoff = 0.2
            if batch:
                self.invoke(batch)  # finished even when a stop arrives meanwhile: the batch in hand

    def run(self) -> None:
        """Run ``concurrency`` pollers until :meth:`stop`; returns when every poller has finished its batch."""
        threads = [
            threading.Thread(target=self._poller, name=f"esm-poller-{i}", daemon=True)
            for i in range(self.config.concurrency)
        ]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.5)


# -- the process ---------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    from rampart.local.aws import report_ready  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m rampart.local.esm", description=__doc__.splitlines()[0])
    parser.add_argument("--queue-url", required=True)
    parser.add_argument("--queue-arn", required=True)
    parser.add_argument("--region", default=os.environ.get("AWS_REGION", "eu-west-1"))
    parser.add_argument("--handler", default=DEFAULT_HANDLER)
    parser.add_argument("--function-name", default="rampart-local-ingest")
    parser.add_argument("--batch-size", type=int, default=10)
    parser.add_argument("--batching-window", type=float, default=0.0)
    parser.add_argument("--visibility-timeout", type=int, default=None)
    parser.add_argument("--poll-wait", type=int, default=1)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    config = MappingConfig(
        queue_url=args.queue_url,
        queue_arn=args.queue_arn,
        region=args.region,
        batch_size=args.batch_size,
        batching_window_s=args.batching_window,
        visibility_timeout_s=args.visibility_timeout,
        poll_wait_s=args.poll_wait,
        concurrency=args.concurrency,
        function_name=args.function_name,
    )
    import boto3  # noqa: PLC0415
    from botocore.config import Config  # noqa: PLC0415

    # The client reads AWS_ENDPOINT_URL and credentials from this process's environment, like the handler.
    sqs = boto3.client(
        "sqs",
        config=Config(
            retries={"max_attempts": 2, "mode": "standard"}, connect_timeout=5, read_timeout=config.poll_wait_s + 10
        ),
    )
    handler = load_handler(args.handler)  # the function's init phase, before the first poll
    mapping = EventSourceMapping(config, handler, sqs)
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: mapping.stop())
    parent = os.getppid()

    def watch_parent() -> None:
        while not mapping.stopping:
            if os.getppid() != parent:
                _log("WARNING", "supervisor went away; stopping")
                mapping.stop()
            time.sleep(0.5)

    threading.Thread(target=watch_parent, name="esm-parent-watch", daemon=True).start()
    report_ready(args.ready_fd, {"pid": os.getpid()})
    _log(
        "INFO",
        "polling",
        queue_url=config.queue_url,
        batch_size=config.batch_size,
        batching_window_s=config.batching_window_s,
        concurrency=config.concurrency,
    )
    mapping.run()
    _log("INFO", "stopped", **mapping.stats.snapshot())
    return 0


if __name__ == "__main__":
    sys.exit(main())
