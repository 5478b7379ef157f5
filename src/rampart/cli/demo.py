"""``rampart demo``: start the stack, show the pipeline working end to end, stop it."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import signal
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

from rampart.cli.common import ProgressBar, non_negative_float, positive_int, say
from rampart.cli.status import database_status


def _wait_for(description: str, check: Callable[[], int], target: int, timeout: float) -> int:
    bar = ProgressBar(target, description)
    deadline = time.monotonic() + timeout
    value = 0
    while time.monotonic() < deadline:
        value = check()
        bar.update(value)
        if value >= target:
            break
        time.sleep(0.1)
    bar.close()
    return value


def cmd_demo(args: argparse.Namespace) -> int:
    from rampart.client import RampartApiError, RampartClient  # noqa: PLC0415
    from rampart.local.producer import sample_events  # noqa: PLC0415
    from rampart.local.stack import Stack, StackConfig  # noqa: PLC0415

    started = time.monotonic()
    failures: list[str] = []

    def check(ok: bool, good: str, bad: str) -> None:
        say(f"    {'OK  ' if ok else 'FAIL'} {good if ok else bad}")
        if not ok:
            failures.append(bad)

    count = args.count
    say(
        "==> [demo] starting the local stack: PostgreSQL (TLS, scram), SNS/SQS/KMS emulator, "
        "event source mapping -> ingest Lambda, API gateway -> API Lambda"
    )
    stack = Stack(StackConfig(api_port=0, progress=lambda m: say(f"    {m}")))

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM like Ctrl-C: unwind, and stop the stack on the way out

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, interrupt)}
    try:
        stack.start()
        if stack.resources is None:
            raise RuntimeError("internal error: stack.resources is not set")
        say(f"    API_URL={stack.api_url}  (started in {stack.started_in_s:.1f} s)")

        poison = '{"event_id": "not-a-uuid", "source": "demo", "type": "poison", "occurred_at": 42}'
        bodies = sample_events(count, backdate=dt.timedelta(hours=args.hours))
        bodies.insert(count // 2, poison)  # in the middle: it shares a batch with good events
        say(f"==> [demo] publishing {count} sample events and 1 poison message to {stack.resources.topic_arn}")
        bar = ProgressBar(len(bodies), "published")
        result = stack.publish(bodies, on_progress=bar.update)
        bar.close()
        check(
            result.sent == len(bodies) and not result.failed,
            f"published {result.sent}",
            f"published {result.sent} of {len(bodies)}: {result.failed[:3]}",
        )

        say("==> [demo] waiting until every event is stored (SNS -> SQS -> event source mapping -> PostgreSQL)")
        db_env = stack.db_env("rampart_api")
        stored = _wait_for("stored", lambda: int(database_status(db_env)["events_stored"] or 0), count, 60)
        check(
            stored == count,
            f"{stored} events stored in {time.monotonic() - started:.1f} s since start",
            f"only {stored} of {count} events stored after 60 s",
        )

        say("==> [demo] reading through the API gateway with the key")
        client = RampartClient(stack.api_url, stack.api_key.value)
        page = client.get_page(limit=5)
        for e in page.items:
            say(f"    {e.occurred_at:%H:%M:%S.%f}"[:-3] + f"  {e.source:<10} {e.type:<20} {e.event_id}")
        check(
            len(page.items) == 5 and page.next_cursor is not None,
            "GET /v1/events?limit=5 -> 200, a page with a next_cursor",
            f"unexpected first page: {len(page.items)} items",
        )
        seen = [e.event_id for e in client.list_events(page_size=100)]
        check(
            len(seen) == count and len(set(seen)) == count,
            f"the client followed the cursors over {-(-count // 100)} pages: {len(seen)} events, no duplicate",
            f"the client read {len(seen)} events ({len(set(seen))} distinct), expected {count}",
        )
        stats = client.stats("hour")
        per_type: dict[str, int] = {}
        for point in stats.series:
            per_type[point.type] = per_type.get(point.type, 0) + point.events
        top = ", ".join(f"{t} {n}" for t, n in sorted(per_type.items(), key=lambda kv: -kv[1])[:4])
        buckets = len({p.bucket_start for p in stats.series})
        check(
            sum(per_type.values()) == count,
            f"GET /v1/stats?bucket=hour -> {buckets} hourly buckets, {len(per_type)} types ({top}, ...)",
            f"stats count {sum(per_type.values())} events, expected {count}",
        )

        say("==> [demo] the gateway refuses requests without a valid key")
        for label, headers in (("no key", {}), ("a wrong key", {"x-api-key": "wrong-" + "x" * 30})):
            status, body = _raw_get(stack.api_url + "/events", headers)
            check(
                status == 403 and json.loads(body) == {"message": "Forbidden"},
                f"GET /v1/events with {label} -> 403 {body.decode()}",
                f"with {label}: {status} {body!r}",
            )
        try:
            client.get_event(uuid.uuid4())
            check(False, "", "GET of an unknown event did not answer 404")
        except RampartApiError as exc:
            check(
                exc.status == 404,
                f"GET /v1/events/<unknown id> -> 404 {exc.code} (request {exc.request_id})",
                f"unknown event: {exc}",
            )

        say("==> [demo] the poison message went to the DLQ with its reason; the rest of its batch is stored")
        reasons = _dlq_reasons(stack, timeout=10)
        check(
            len(reasons) == 1,
            f"DLQ holds 1 message: {reasons[0][:110] if reasons else ''}",
            f"DLQ holds {len(reasons)} messages, expected 1",
        )
        check(
            stored == count,
            f"all {count} good events stored, none lost, none duplicated",
            f"{stored} stored, expected {count}",
        )
    finally:
        t = time.monotonic()
        stack.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        left = stack.leftovers()
        check(
            not left,
            f"stack stopped in {time.monotonic() - t:.1f} s: no process, no temporary folder left",
            f"still there after stop: {', '.join(left)}",
        )
    total = time.monotonic() - started
    if failures:
        say(f"==> [demo] FAILED ({len(failures)} check(s)) after {total:.1f} s: {failures[0]}")
        return 1
    say(f"==> [demo] all checks passed in {total:.1f} s")
    return 0


def _raw_get(url: str, headers: dict[str, str]) -> tuple[int, bytes]:
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - our own loopback gateway URL
    try:
        with opener.open(request, timeout=10) as response:
            return int(response.status), bytes(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read()


def _dlq_reasons(stack: Any, timeout: float) -> list[str]:
    sqs = stack.client("sqs")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=stack.resources.dlq_url,
            MessageAttributeNames=["All"],
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            VisibilityTimeout=30,
        )
        messages = answer.get("Messages", [])
        if messages:
            return [
                str(m.get("MessageAttributes", {}).get("rampart_failure_reason", {}).get("StringValue", "?"))
                for m in messages
            ]
    return []


def register(sub: Any) -> None:
    p = sub.add_parser("demo", help="start the stack, show the pipeline working end to end, stop it")
    p.add_argument("--count", type=positive_int, default=300, help="sample events to publish (300)")
    p.add_argument(
        "--hours",
        type=non_negative_float,
        default=6.0,
        help="spread the samples' occurred_at over this many past hours (6)",
    )
    p.set_defaults(func=cmd_demo)
