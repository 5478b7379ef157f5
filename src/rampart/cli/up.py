"""``rampart up``: run the whole system on this machine until Ctrl-C / SIGTERM."""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import signal
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from rampart.cli.common import (
    EXIT_USAGE,
    CliError,
    env_or,
    non_negative_float,
    port_number,
    positive_int,
    resolve_state_path,
    say,
)


def _stack_config(args: argparse.Namespace, progress: Callable[[str], None]) -> Any:
    from rampart.keys import DEFAULT_TIER, UsagePlan  # noqa: PLC0415
    from rampart.local.gateway import ApiKey  # noqa: PLC0415
    from rampart.local.stack import StackConfig  # noqa: PLC0415

    if args.api_key is not None and not (
        20 <= len(args.api_key) <= 128 and args.api_key.isascii() and args.api_key.isprintable()
    ):
        raise CliError(
            "the API key must be at least 20 characters long, at most 128, printable ASCII (as API Gateway requires)",
            EXIT_USAGE,
        )
    try:
        plan = UsagePlan(rate=args.rate, burst=args.burst, quota_per_day=args.quota)
    except ValueError as exc:
        raise CliError(str(exc), EXIT_USAGE) from None
    return StackConfig(
        name=args.name,
        api_port=args.api_port,
        data_dir=Path(args.data_dir).expanduser() if args.data_dir else None,
        # The "local" client's key, created at start like `rampart keys create --client local` would.
        api_keys=[ApiKey.generate("local", plan, args.api_key, tier=DEFAULT_TIER)],
        batch_size=args.batch_size,
        batching_window_s=args.batching_window,
        visibility_timeout_s=args.visibility_timeout,
        max_receive_count=args.max_receive_count,
        ingest_concurrency=args.concurrency,
        progress=progress,
    )


def cmd_up(args: argparse.Namespace) -> int:
    from rampart.local.slo import ACCESS_LOG, LogClock  # noqa: PLC0415
    from rampart.local.stack import Stack  # noqa: PLC0415
    from rampart.local.state import StackState, StateError, read_state, remove_state, write_state  # noqa: PLC0415

    state_path = resolve_state_path(args)
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
    stack = Stack(_stack_config(args, lambda m: say(f"==> [up] {m}")))
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
                logs_dir=str(stack.logs_dir),
                temp_dirs=[str(p) for p in stack.temp_dirs],
                stack_name=stack.config.name,
            ),
        )
        say(f"==> [up] ready in {stack.started_in_s:.1f} s; logs in {stack.logs_dir}; state in {state_path}")
        say("==> [up] Ctrl-C or SIGTERM stops everything")
        print(f"API_URL={stack.api_url}", flush=True)
        print(f"API_KEY={stack.api_key.value}", flush=True)
        access_clock = LogClock(stack.logs_dir / ACCESS_LOG)  # `rampart status`: where "5 minutes ago" starts
        while not stop.wait(0.5):
            access_clock.tick()
            for event in stack.check():
                say(f"==> [up] {event}")
        say("==> [up] stopping (the event source mapping finishes the batch in hand)")
        return 0
    finally:
        stack.stop()
        remove_state(state_path, os.getpid())
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        say("==> [up] stopped")


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
    say("==> [up] cleaned up after a previous `rampart up` that did not stop cleanly")


def register(sub: Any) -> None:
    p = sub.add_parser("up", help="run the whole system on this machine until Ctrl-C / SIGTERM")
    p.add_argument(
        "--api-port",
        type=port_number,
        default=port_number(env_or("RAMPART_API_PORT", "8080")),
        help="gateway port on 127.0.0.1, 0 for any free one (env RAMPART_API_PORT; 8080)",
    )
    p.add_argument(
        "--data-dir",
        default=env_or("RAMPART_DATA_DIR"),
        help="keep PostgreSQL data, logs and the state file here (env RAMPART_DATA_DIR; a temp folder)",
    )
    p.add_argument(
        "--api-key",
        default=env_or("RAMPART_API_KEY"),
        help='the value of the "local" client\'s API key, 20-128 characters (env RAMPART_API_KEY; generated); '
        "more keys: `rampart keys create`",
    )
    p.add_argument(
        "--name",
        default=env_or("RAMPART_NAME", "rampart-local"),
        help="resource name prefix, as the Terraform's `name` (env RAMPART_NAME; rampart-local)",
    )
    p.add_argument(
        "--rate",
        type=non_negative_float,
        default=float(env_or("RAMPART_API_RATE", "100")),
        help="usage plan <name>-standard: steady requests per second (env RAMPART_API_RATE; 100)",
    )
    p.add_argument(
        "--burst",
        type=positive_int,
        default=int(env_or("RAMPART_API_BURST", "200")),
        help="usage plan: burst (env RAMPART_API_BURST; 200)",
    )
    p.add_argument(
        "--quota",
        type=positive_int,
        default=env_or("RAMPART_API_QUOTA"),
        help="usage plan: requests per UTC day (env RAMPART_API_QUOTA; unlimited)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=int(env_or("RAMPART_BATCH_SIZE", "10")),
        help="event source mapping batch size (env RAMPART_BATCH_SIZE; 10)",
    )
    p.add_argument(
        "--batching-window",
        type=non_negative_float,
        default=float(env_or("RAMPART_BATCHING_WINDOW", "0")),
        help="maximum batching window in seconds (env RAMPART_BATCHING_WINDOW; 0)",
    )
    p.add_argument(
        "--visibility-timeout",
        type=positive_int,
        default=int(env_or("RAMPART_VISIBILITY_TIMEOUT", "30")),
        help="queue visibility timeout in seconds (env RAMPART_VISIBILITY_TIMEOUT; 30)",
    )
    p.add_argument(
        "--max-receive-count",
        type=positive_int,
        default=int(env_or("RAMPART_MAX_RECEIVE_COUNT", "5")),
        help="receives before SQS moves a message to the DLQ (env RAMPART_MAX_RECEIVE_COUNT; 5)",
    )
    p.add_argument(
        "--concurrency",
        type=positive_int,
        default=int(env_or("RAMPART_INGEST_CONCURRENCY", "2")),
        help="concurrent ingest pollers (env RAMPART_INGEST_CONCURRENCY; 2)",
    )
    p.add_argument("--state-file", default=None, help="where to write the state file (env RAMPART_STATE_FILE)")
    p.set_defaults(func=cmd_up)
