"""``rampart``: run the whole system on this machine, publish to it, look at it, query it; migrate a database.

Every option has an environment variable equivalent (shown in ``--help``). ``up`` writes a state file that
``publish``, ``status`` and ``query`` read to find the running stack. Mistakes get one clear line on stderr
and a non-zero exit, never a stack trace (``RAMPART_DEBUG=1`` shows traces of unexpected errors).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import datetime as dt
import json
import os
import signal
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import IO, Any, NoReturn

EXIT_USAGE = 2


class CliError(Exception):
    """A user mistake or an unusable environment: printed as one line, exit code 1 (or ``code``)."""

    def __init__(self, message: str, code: int = 1) -> None:
        super().__init__(message)
        self.code = code


# -- small helpers -----------------------------------------------------------------------------------------------------
def _env(name: str, default: Any = None) -> Any:
    value = os.environ.get(name)
    return default if value in (None, "") else value


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


class ProgressBar:
    """A plain text bar on stderr: redrawn in place on a terminal, a line per quarter otherwise."""

    def __init__(self, total: int, label: str, stream: IO[str] | None = None, width: int = 30) -> None:
        self.total, self.label, self.width = max(1, total), label, width
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._last_draw = 0.0
        self._last_quarter = -1
        self.done = 0

    def update(self, done: int, _total: int | None = None) -> None:
        self.done = min(done, self.total)
        now = time.monotonic()
        if self.tty:
            if now - self._last_draw >= 0.1 or self.done == self.total:
                self.stream.write("\r" + self._line())
                self.stream.flush()
                self._last_draw = now
        else:
            quarter = self.done * 4 // self.total
            if quarter != self._last_quarter:
                self._last_quarter = quarter
                self.stream.write(self._line() + "\n")
                self.stream.flush()

    def _line(self) -> str:
        filled = self.width * self.done // self.total
        return f"    [{'#' * filled}{'-' * (self.width - filled)}] {self.done}/{self.total} {self.label}"

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")
            self.stream.flush()


def _jsonable(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    return value


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be at least 1")
    return value


def _non_negative_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{value} must not be negative")
    return value


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"{value} is not a port number (0-65535; 0 picks a free one)")
    return value


def _state_path(args: argparse.Namespace) -> Path:
    from rampart.local.state import default_state_path  # noqa: PLC0415

    if getattr(args, "state_file", None):
        return Path(args.state_file).expanduser()
    return default_state_path(getattr(args, "data_dir", None))


# -- migrate -----------------------------------------------------------------------------------------------------------
def cmd_migrate(args: argparse.Namespace) -> int:
    from rampart.db import migrate  # noqa: PLC0415
    from rampart.db.connection import Database, DatabaseUnavailableError  # noqa: PLC0415
    from rampart.db.settings import DatabaseSettings  # noqa: PLC0415

    settings = DatabaseSettings.from_env(application_name="rampart-migrate")
    _say(
        f"==> [migrate] connecting to {settings.host}:{settings.port}/{settings.name} as {settings.user} "
        f"(auth {settings.auth}, sslmode {settings.sslmode})"
    )
    try:
        conn = Database(settings).connect()
    except DatabaseUnavailableError:
        raise CliError(
            f"cannot connect to {settings.host}:{settings.port}/{settings.name} as {settings.user}; "
            "check RAMPART_DB_* and that the server is up"
        ) from None
    try:
        if not args.skip_roles:
            _say("==> [migrate] ensuring roles and schema (roles.sql)")
            migrate.bootstrap_roles(conn)
        applied = migrate.apply_migrations(conn, progress=lambda m: _say(f"    {m}"))
    finally:
        conn.close()
    _say(f"==> [migrate] done: {len(applied)} migration(s) applied now, schema up to date")
    return 0


# -- up ----------------------------------------------------------------------------------------------------------------
def _stack_config(args: argparse.Namespace, progress: Callable[[str], None]) -> Any:
    from rampart.local.gateway import ApiKey, UsagePlan  # noqa: PLC0415
    from rampart.local.stack import StackConfig  # noqa: PLC0415

    if args.api_key is not None and len(args.api_key) < 20:
        raise CliError("the API key must be at least 20 characters long (as API Gateway requires)", EXIT_USAGE)
    try:
        plan = UsagePlan(rate=args.rate, burst=args.burst, quota_per_day=args.quota)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    return StackConfig(
        name=args.name,
        api_port=args.api_port,
        data_dir=Path(args.data_dir).expanduser() if args.data_dir else None,
        api_keys=[ApiKey.generate("local", plan, args.api_key)],
        batch_size=args.batch_size,
        batching_window_s=args.batching_window,
        visibility_timeout_s=args.visibility_timeout,
        max_receive_count=args.max_receive_count,
        ingest_concurrency=args.concurrency,
        progress=progress,
    )


def cmd_up(args: argparse.Namespace) -> int:
    from rampart.local.stack import Stack  # noqa: PLC0415
    from rampart.local.state import StackState, StateError, read_state, remove_state, write_state  # noqa: PLC0415

    state_path = _state_path(args)
    try:
        running = read_state(state_path)
    except StateError:
        running = None
        _clean_up_after_a_killed_up(state_path)
    if running is not None:
        raise CliError(f"`rampart up` is already running (pid {running.pid}, {running.api_url}); stop it first")
    stop = threading.Event()

    def on_signal(signum: int, _frame: Any) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    stack = Stack(_stack_config(args, lambda m: _say(f"==> [up] {m}")))
    try:
        stack.start()
        if stack.resources is None:
            raise RuntimeError("internal error: stack.resources is not set")
        write_state(
            state_path,
            StackState(
                pid=os.getpid(),
                api_url=stack.api_url,
                api_key=stack.api_key.value,
                api_key_id=stack.api_key.key_id,
                aws_endpoint=stack.endpoint,
                region=stack.config.region,
                topic_arn=stack.resources.topic_arn,
                queue_url=stack.resources.queue_url,
                dlq_url=stack.resources.dlq_url,
                db_env=stack.db_env("rampart_api"),
                started_at=dt.datetime.now(dt.UTC).isoformat(),
                children=stack.pids(),
                postgres_pid=stack.postgres_pid,
                temp_dirs=[str(p) for p in stack.temp_dirs],
            ),
        )
        _say(f"==> [up] ready in {stack.started_in_s:.1f} s; logs in {stack.logs_dir}; state in {state_path}")
        _say("==> [up] Ctrl-C or SIGTERM stops everything")
        print(f"API_URL={stack.api_url}", flush=True)
        print(f"API_KEY={stack.api_key.value}", flush=True)
        while not stop.wait(0.5):
            for event in stack.check():
                _say(f"==> [up] {event}")
        _say("==> [up] stopping (the event source mapping finishes the batch in hand)")
        return 0
    finally:
        stack.stop()
        remove_state(state_path, os.getpid())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _say("==> [up] stopped")


def _clean_up_after_a_killed_up(state_path: Path) -> None:
    """A previous `up` that was killed (SIGKILL) left its state file: stop its PostgreSQL, remove its temp dirs.

    Its other processes exit by themselves when their supervisor disappears. Only a process whose command
    line names one of that run's own folders is signalled.
    """
    import shutil  # noqa: PLC0415

    from rampart.local.state import pid_alive  # noqa: PLC0415

    try:
        stale = json.loads(state_path.read_text(encoding="utf-8"))
        temp_dirs = [str(d) for d in stale.get("temp_dirs", [])]
        pg_pid = stale.get("postgres_pid")
        owner = int(stale["pid"])
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return
    if pid_alive(owner):
        return
    if isinstance(pg_pid, int) and pid_alive(pg_pid):
        try:
            cmdline = Path(f"/proc/{pg_pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            cmdline = ""
        if "postgres" in cmdline and any(d in cmdline for d in temp_dirs):
            os.kill(pg_pid, signal.SIGINT)  # PostgreSQL's fast shutdown
            deadline = time.monotonic() + 15
            while pid_alive(pg_pid) and time.monotonic() < deadline:
                time.sleep(0.1)
    for folder in temp_dirs:
        shutil.rmtree(folder, ignore_errors=True)
    with contextlib.suppress(OSError):
        state_path.unlink()
    _say("==> [up] cleaned up after a previous `rampart up` that did not stop cleanly")


# -- publish -----------------------------------------------------------------------------------------------------------
def _read_lines(path: Path, validate: bool) -> tuple[list[str], list[int], list[str]]:
    """(bodies, their line numbers, problems) for the non-empty lines of a JSON-lines file."""
    from rampart.events import InvalidEventError, parse_event  # noqa: PLC0415

    try:
        raw_lines = path.read_bytes().splitlines()
    except OSError as exc:
        raise CliError(f"cannot read {path}: {exc.strerror or type(exc).__name__}") from None
    bodies, numbers, problems = [], [], []
    for number, raw in enumerate(raw_lines, start=1):
        if not raw.strip():
            continue
        try:
            text = raw.decode("utf-8")
            if validate:
                parse_event(text)
        except UnicodeDecodeError:
            problems.append(f"{path}:{number}: not valid UTF-8; skipped")
            continue
        except InvalidEventError as exc:
            problems.append(f"{path}:{number}: {exc.reason[:300]}; skipped")
            continue
        bodies.append(text)
        numbers.append(number)
    return bodies, numbers, problems


def cmd_publish(args: argparse.Namespace) -> int:
    from rampart.local import aws  # noqa: PLC0415
    from rampart.local.producer import publish, sample_events  # noqa: PLC0415
    from rampart.local.state import read_state  # noqa: PLC0415

    state = read_state(_state_path(args))
    problems: list[str] = []
    if args.file:
        bodies, numbers, problems = _read_lines(Path(args.file).expanduser(), validate=not args.raw)
        for problem in problems:
            _say(f"rampart publish: {problem}")
        what = f"{len(bodies)} line(s) of {args.file}"
    else:
        backdate = dt.timedelta(hours=args.backdate_hours) if args.backdate_hours else None
        bodies, numbers = sample_events(args.count, backdate=backdate), list(range(1, args.count + 1))
        what = f"{len(bodies)} sample event(s)"
    _say(f"==> [publish] {what} to {state.topic_arn}" + (f" at {args.rate:g}/s" if args.rate else ""))
    long_run = len(bodies) >= 200 or (args.rate and len(bodies) / args.rate > 2)
    bar = ProgressBar(len(bodies), "published") if long_run else None
    sns = aws.client("sns", state.aws_endpoint, state.region)
    result = publish(sns, state.topic_arn, bodies, args.rate or None, bar.update if bar else None, numbers)
    if bar:
        bar.close()
    for label, reason in result.failed[:20]:
        _say(f"rampart publish: {'line' if args.file else 'event'} {label}: not published ({reason})")
    _say(f"==> [publish] published {result.sent}, failed {len(result.failed)}, skipped {len(problems)}")
    return 0 if not result.failed and not problems else 1


# -- status ------------------------------------------------------------------------------------------------------------
LAG_SQL = """
SELECT count(*),
       percentile_cont(0.5) WITHIN GROUP (ORDER BY extract(epoch FROM received_at - occurred_at)),
       max(extract(epoch FROM received_at - occurred_at)),
       extract(epoch FROM now() - max(received_at))
FROM rampart.events WHERE received_at > now() - interval '5 minutes'
"""


def database_status(db_env: dict[str, str]) -> dict[str, Any]:
    """Events stored and ingest lag (received_at - occurred_at over the last 5 minutes), read-only."""
    from rampart.db.connection import Database  # noqa: PLC0415
    from rampart.db.settings import DatabaseSettings  # noqa: PLC0415

    db = Database(DatabaseSettings.from_env(db_env, application_name="rampart-status"), read_only=True)

    def work(cur: Any) -> dict[str, Any]:
        cur.execute("SELECT count(*) FROM rampart.events")
        total = int(cur.fetchone()[0])
        cur.execute(LAG_SQL)
        recent, p50, worst, since_last = cur.fetchone()
        return {
            "events_stored": total,
            "recent_events": int(recent),
            "lag_p50_s": float(p50) if p50 is not None else None,
            "lag_max_s": float(worst) if worst is not None else None,
            "last_stored_s_ago": float(since_last) if since_last is not None else None,
        }

    try:
        return db.run(work)
    finally:
        db.close()


def queue_depths(state: Any) -> dict[str, int]:
    from rampart.local import aws  # noqa: PLC0415

    sqs = aws.client("sqs", state.aws_endpoint, state.region)
    names = ["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    q = sqs.get_queue_attributes(QueueUrl=state.queue_url, AttributeNames=names)["Attributes"]
    d = sqs.get_queue_attributes(QueueUrl=state.dlq_url, AttributeNames=names)["Attributes"]
    return {
        "queue_visible": int(q["ApproximateNumberOfMessages"]),
        "queue_in_flight": int(q["ApproximateNumberOfMessagesNotVisible"]),
        "dlq_depth": int(d["ApproximateNumberOfMessages"]) + int(d["ApproximateNumberOfMessagesNotVisible"]),
    }


def cmd_status(args: argparse.Namespace) -> int:
    from rampart.local.state import pid_alive, read_state  # noqa: PLC0415

    state = read_state(_state_path(args))
    depths = queue_depths(state)
    db = database_status(state.db_env)
    children = {name: pid_alive(pid) for name, pid in state.children.items()}
    if args.json:
        print(json.dumps({"api_url": state.api_url, **depths, **db, "processes_alive": children}, indent=2))
        return 0
    lag = "no events in the last 5 minutes"
    if db["lag_p50_s"] is not None:
        lag = (
            f"p50 {db['lag_p50_s']:.2f} s, max {db['lag_max_s']:.2f} s over {db['recent_events']} event(s) "
            f"received in the last 5 min; last stored {db['last_stored_s_ago']:.0f} s ago"
        )
    down = [n for n, alive in children.items() if not alive]
    print(f"API_URL        {state.api_url}  (up since {state.started_at[:19]}Z, pid {state.pid})")
    print(f"queue depth    {depths['queue_visible']} waiting, {depths['queue_in_flight']} in flight")
    print(f"DLQ depth      {depths['dlq_depth']}")
    print(f"events stored  {db['events_stored']}")
    print(f"ingest lag     {lag}")
    print(f"processes      {'all running' if not down else 'NOT RUNNING: ' + ', '.join(down)}")
    return 0 if not down else 1


# -- query -------------------------------------------------------------------------------------------------------------
def _client(args: argparse.Namespace) -> Any:
    from rampart.client import RampartClient  # noqa: PLC0415
    from rampart.local.state import read_state  # noqa: PLC0415

    url, key = args.url, args.api_key
    if not url or not key:
        state = read_state(_state_path(args))
        url, key = url or state.api_url, key or state.api_key
    try:
        return RampartClient(url, key, timeout=args.timeout)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None


def cmd_query(args: argparse.Namespace) -> int:
    client = _client(args)
    if args.what == "events":
        shown = 0
        for event in client.list_events(
            source=args.source, type=args.type, since=args.since, until=args.until, page_size=args.page_size
        ):
            if args.max is not None and shown >= args.max:
                break
            print(json.dumps(_jsonable(event), sort_keys=True))
            shown += 1
        _say(f"{shown} event(s)")
    elif args.what == "event":
        print(json.dumps(_jsonable(client.get_event(args.event_id)), indent=2, sort_keys=True))
    elif args.what == "stats":
        print(json.dumps(_jsonable(client.stats(args.bucket, args.since, args.until)), indent=2))
    else:
        print(json.dumps(_jsonable(client.health()), indent=2))
    return 0


# -- dlq ---------------------------------------------------------------------------------------------------------------
def _dead_letter_queue(args: argparse.Namespace) -> Any:
    """The DLQ of the running `rampart up`, or (with --dlq-url and --queue-url) real queues with the caller's
    ordinary AWS credentials."""
    from rampart.dlq import DeadLetterQueue  # noqa: PLC0415

    if args.dlq_url or args.queue_url:
        if not (args.dlq_url and args.queue_url):
            raise CliError("--dlq-url and --queue-url go together", EXIT_USAGE)
        import boto3  # noqa: PLC0415

        return DeadLetterQueue(boto3.client("sqs"), args.dlq_url, args.queue_url)
    from rampart.local import aws  # noqa: PLC0415
    from rampart.local.state import read_state  # noqa: PLC0415

    state = read_state(_state_path(args))
    return DeadLetterQueue(aws.client("sqs", state.aws_endpoint, state.region), state.dlq_url, state.queue_url)


def cmd_dlq(args: argparse.Namespace) -> int:
    dlq = _dead_letter_queue(args)
    if args.action == "list":
        letters = dlq.list(limit=args.max)
        if args.json:
            for m in letters:
                row = {
                    "message_id": m.message_id,
                    "sent_at": m.sent_at.isoformat() if m.sent_at else None,
                    "receive_count": m.receive_count,
                    "reason": m.reason,
                    "original_message_id": m.original_message_id,
                    "body": m.body,
                }
                print(json.dumps(row, sort_keys=True))
        else:
            for m in letters:
                sent = m.sent_at.strftime("%Y-%m-%d %H:%M:%S") if m.sent_at else "?"
                print(f"{m.message_id}  {sent}  {m.reason[:70]}")
                print(f"    {m.preview(100)}")
        _say(f"{len(letters)} message(s) in the DLQ")
        return 0
    if args.action == "show":
        letter = dlq.show(args.message_id)
        if letter is None:
            raise CliError(f"no message {args.message_id} in the DLQ", 1)
        print(f"message id     {letter.message_id}")
        print(f"sent at        {letter.sent_at.isoformat() if letter.sent_at else '?'}")
        print(f"receive count  {letter.receive_count}")
        print(f"reason         {letter.reason}")
        print(f"original id    {letter.original_message_id or '-'}")
        print("body:")
        print(letter.body)
        return 0
    ids = None if args.all else set(args.message_ids)
    if not args.all and not ids:
        raise CliError("name the message ids to redrive, or --all", EXIT_USAGE)
    moved, failed = dlq.redrive(ids)
    _say(f"moved {moved} message(s) back to the queue" + (f"; {failed} could not be moved" if failed else ""))
    return 0 if not failed else 1


# -- demo --------------------------------------------------------------------------------------------------------------
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
        _say(f"    {'OK  ' if ok else 'FAIL'} {good if ok else bad}")
        if not ok:
            failures.append(bad)

    count = args.count
    _say(
        "==> [demo] starting the local stack: PostgreSQL (TLS, scram), SNS/SQS/KMS emulator, "
        "event source mapping -> ingest Lambda, API gateway -> API Lambda"
    )
    stack = Stack(StackConfig(api_port=0, progress=lambda m: _say(f"    {m}")))

    def interrupt(_signum: int, _frame: Any) -> None:
        raise KeyboardInterrupt  # SIGTERM like Ctrl-C: unwind, and stop the stack on the way out

    previous = {signal.SIGTERM: signal.signal(signal.SIGTERM, interrupt)}
    try:
        stack.start()
        if stack.resources is None:
            raise RuntimeError("internal error: stack.resources is not set")
        _say(f"    API_URL={stack.api_url}  (started in {stack.started_in_s:.1f} s)")

        poison = '{"event_id": "not-a-uuid", "source": "demo", "type": "poison", "occurred_at": 42}'
        bodies = sample_events(count, backdate=dt.timedelta(hours=args.hours))
        bodies.insert(count // 2, poison)  # in the middle: it shares a batch with good events
        _say(f"==> [demo] publishing {count} sample events and 1 poison message to {stack.resources.topic_arn}")
        bar = ProgressBar(len(bodies), "published")
        result = stack.publish(bodies, on_progress=bar.update)
        bar.close()
        check(
            result.sent == len(bodies) and not result.failed,
            f"published {result.sent}",
            f"published {result.sent} of {len(bodies)}: {result.failed[:3]}",
        )

        _say("==> [demo] waiting until every event is stored (SNS -> SQS -> event source mapping -> PostgreSQL)")
        db_env = stack.db_env("rampart_api")
        stored = _wait_for("stored", lambda: int(database_status(db_env)["events_stored"]), count, 60)
        check(
            stored == count,
            f"{stored} events stored in {time.monotonic() - started:.1f} s since start",
            f"only {stored} of {count} events stored after 60 s",
        )

        _say("==> [demo] reading through the API gateway with the key")
        client = RampartClient(stack.api_url, stack.api_key.value)
        page = client.get_page(limit=5)
        for e in page.items:
            _say(f"    {e.occurred_at:%H:%M:%S.%f}"[:-3] + f"  {e.source:<10} {e.type:<20} {e.event_id}")
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

        _say("==> [demo] the gateway refuses requests without a valid key")
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

        _say("==> [demo] the poison message went to the DLQ with its reason; the rest of its batch is stored")
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
        _say(f"==> [demo] FAILED ({len(failures)} check(s)) after {total:.1f} s: {failures[0]}")
        return 1
    _say(f"==> [demo] all checks passed in {total:.1f} s")
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


# -- the parser --------------------------------------------------------------------------------------------------------
def _add_state_file(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--state-file",
        default=None,
        help="state file of the running `rampart up` (env RAMPART_STATE_FILE; default "
        "<data dir>/state.json or ~/.rampart/state.json)",
    )
    p.add_argument("--data-dir", default=_env("RAMPART_DATA_DIR"), help=argparse.SUPPRESS)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="rampart", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("migrate", help="create roles and schema, apply migrations (RAMPART_DB_* as an admin)")
    p.add_argument("--skip-roles", action="store_true", help="only apply migrations (roles already exist)")
    p.set_defaults(func=cmd_migrate)

    p = sub.add_parser("up", help="run the whole system on this machine until Ctrl-C / SIGTERM")
    p.add_argument(
        "--api-port",
        type=_port,
        default=_port(_env("RAMPART_API_PORT", "8080")),
        help="gateway port on 127.0.0.1, 0 for any free one (env RAMPART_API_PORT; 8080)",
    )
    p.add_argument(
        "--data-dir",
        default=_env("RAMPART_DATA_DIR"),
        help="keep PostgreSQL data, logs and the state file here (env RAMPART_DATA_DIR; a temp folder)",
    )
    p.add_argument(
        "--api-key",
        default=_env("RAMPART_API_KEY"),
        help="the API key to accept, at least 20 characters (env RAMPART_API_KEY; generated)",
    )
    p.add_argument(
        "--name",
        default=_env("RAMPART_NAME", "rampart-local"),
        help="resource name prefix, as the Terraform's `name` (env RAMPART_NAME; rampart-local)",
    )
    p.add_argument(
        "--rate",
        type=_non_negative_float,
        default=float(_env("RAMPART_API_RATE", "100")),
        help="usage plan: steady requests per second (env RAMPART_API_RATE; 100)",
    )
    p.add_argument(
        "--burst",
        type=_positive_int,
        default=int(_env("RAMPART_API_BURST", "200")),
        help="usage plan: burst (env RAMPART_API_BURST; 200)",
    )
    p.add_argument(
        "--quota",
        type=_positive_int,
        default=_env("RAMPART_API_QUOTA"),
        help="usage plan: requests per UTC day (env RAMPART_API_QUOTA; unlimited)",
    )
    p.add_argument(
        "--batch-size",
        type=_positive_int,
        default=int(_env("RAMPART_BATCH_SIZE", "10")),
        help="event source mapping batch size (env RAMPART_BATCH_SIZE; 10)",
    )
    p.add_argument(
        "--batching-window",
        type=_non_negative_float,
        default=float(_env("RAMPART_BATCHING_WINDOW", "0")),
        help="maximum batching window in seconds (env RAMPART_BATCHING_WINDOW; 0)",
    )
    p.add_argument(
        "--visibility-timeout",
        type=_positive_int,
        default=int(_env("RAMPART_VISIBILITY_TIMEOUT", "30")),
        help="queue visibility timeout in seconds (env RAMPART_VISIBILITY_TIMEOUT; 30)",
    )
    p.add_argument(
        "--max-receive-count",
        type=_positive_int,
        default=int(_env("RAMPART_MAX_RECEIVE_COUNT", "5")),
        help="receives before SQS moves a message to the DLQ (env RAMPART_MAX_RECEIVE_COUNT; 5)",
    )
    p.add_argument(
        "--concurrency",
        type=_positive_int,
        default=int(_env("RAMPART_INGEST_CONCURRENCY", "2")),
        help="concurrent ingest pollers (env RAMPART_INGEST_CONCURRENCY; 2)",
    )
    p.add_argument("--state-file", default=None, help="where to write the state file (env RAMPART_STATE_FILE)")
    p.set_defaults(func=cmd_up)

    p = sub.add_parser("publish", help="publish sample events, or the lines of a file, to the running stack")
    p.add_argument(
        "--count",
        type=_positive_int,
        default=int(_env("RAMPART_PUBLISH_COUNT", "100")),
        help="number of generated sample events (env RAMPART_PUBLISH_COUNT; 100)",
    )
    p.add_argument(
        "--file",
        default=_env("RAMPART_PUBLISH_FILE"),
        help="publish the lines of this JSON-lines file instead (env RAMPART_PUBLISH_FILE)",
    )
    p.add_argument(
        "--rate",
        type=_non_negative_float,
        default=float(_env("RAMPART_PUBLISH_RATE", "0")),
        help="messages per second, 0 for as fast as possible (env RAMPART_PUBLISH_RATE; 0)",
    )
    p.add_argument(
        "--backdate-hours",
        type=_non_negative_float,
        default=0.0,
        help="spread the samples' occurred_at over this many past hours",
    )
    p.add_argument(
        "--raw",
        action="store_true",
        help="publish file lines as they are, without validating them first (to exercise the DLQ)",
    )
    _add_state_file(p)
    p.set_defaults(func=cmd_publish)

    p = sub.add_parser("status", help="queue depth, DLQ depth, events stored, ingest lag")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    _add_state_file(p)
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("query", help="call the API through the client (the running stack, or --url/--api-key)")
    p.add_argument("--url", default=_env("RAMPART_API_URL"), help="API URL, e.g. https://.../v1 (env RAMPART_API_URL)")
    p.add_argument("--api-key", default=_env("RAMPART_API_KEY"), help="API key (env RAMPART_API_KEY)")
    p.add_argument("--timeout", type=_non_negative_float, default=10.0, help="seconds per request (10)")
    _add_state_file(p)
    q = p.add_subparsers(dest="what", metavar="WHAT")
    q.required = True
    e = q.add_parser("events", help="list events as JSON lines, following cursors")
    e.add_argument("--source")
    e.add_argument("--type")
    e.add_argument("--since", help="ISO-8601 with a timezone")
    e.add_argument("--until", help="ISO-8601 with a timezone")
    e.add_argument("--page-size", type=_positive_int, default=None, help="events per request (API default 100)")
    e.add_argument("--max", type=_positive_int, default=100, help="stop after this many events (100)")
    e.add_argument("--all", dest="max", action="store_const", const=None, help="every matching event")
    g = q.add_parser("event", help="one event by id")
    g.add_argument("event_id")
    s = q.add_parser("stats", help="counts per type per hour or day")
    s.add_argument("--bucket", choices=["hour", "day"], default="hour")
    s.add_argument("--since")
    s.add_argument("--until")
    q.add_parser("health", help="the API's health, including the database")
    p.set_defaults(func=cmd_query)

    p = sub.add_parser("dlq", help="inspect dead-lettered messages and move them back after a fix")
    p.add_argument("--dlq-url", default=_env("RAMPART_DLQ_URL"), help="a real DLQ (env RAMPART_DLQ_URL)")
    p.add_argument("--queue-url", default=_env("RAMPART_QUEUE_URL"), help="its source queue (env RAMPART_QUEUE_URL)")
    _add_state_file(p)
    d = p.add_subparsers(dest="action", metavar="ACTION")
    d.required = True
    dl = d.add_parser("list", help="every dead letter with the reason it failed (consumes nothing)")
    dl.add_argument("--max", type=_positive_int, default=100, help="at most this many (100)")
    dl.add_argument("--json", action="store_true", help="one JSON object per line")
    ds = d.add_parser("show", help="one dead letter, with its body")
    ds.add_argument("message_id")
    dr = d.add_parser("redrive", help="send messages back to the source queue, then delete them from the DLQ")
    dr.add_argument("message_ids", nargs="*", metavar="MESSAGE_ID")
    dr.add_argument("--all", action="store_true", help="every message in the DLQ")
    p.set_defaults(func=cmd_dlq)

    p = sub.add_parser("demo", help="start the stack, show the pipeline working end to end, stop it")
    p.add_argument("--count", type=_positive_int, default=300, help="sample events to publish (300)")
    p.add_argument(
        "--hours",
        type=_non_negative_float,
        default=6.0,
        help="spread the samples' occurred_at over this many past hours (6)",
    )
    p.set_defaults(func=cmd_demo)
    return parser


def _fail(message: str, code: int = 1) -> NoReturn:
    print(f"rampart: error: {message}", file=sys.stderr, flush=True)
    raise SystemExit(code)


def main(argv: Sequence[str] | None = None) -> int:
    try:
        parser = build_parser()
    except argparse.ArgumentTypeError as exc:  # a bad RAMPART_* default
        _fail(f"invalid environment setting: {exc}", EXIT_USAGE)
    args = parser.parse_args(argv)
    from rampart.client import RampartApiError, RampartConnectionError  # noqa: PLC0415
    from rampart.db.settings import SettingsError  # noqa: PLC0415
    from rampart.local.postgres import PostgresNotFoundError  # noqa: PLC0415
    from rampart.local.stack import StackError  # noqa: PLC0415
    from rampart.local.state import StateError  # noqa: PLC0415

    known: tuple[type[BaseException], ...] = (
        StateError, StackError, RampartApiError, RampartConnectionError, SettingsError, PostgresNotFoundError,
    )  # fmt: skip
    try:
        return int(args.func(args))
    except CliError as exc:
        _fail(str(exc), exc.code)
    except known as exc:
        _fail(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    except Exception as exc:
        if os.environ.get("RAMPART_DEBUG"):
            raise
        from botocore.exceptions import BotoCoreError, ClientError  # noqa: PLC0415

        if isinstance(exc, BotoCoreError | ClientError):
            _fail(
                f"the AWS emulator did not answer as expected ({type(exc).__name__}: {exc}); is `rampart up` "
                "still running?"
            )
        _fail(f"unexpected {type(exc).__name__}: {exc} (RAMPART_DEBUG=1 shows the trace)")


if __name__ == "__main__":
    sys.exit(main())
