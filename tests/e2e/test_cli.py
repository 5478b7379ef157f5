"""The `rampart` command as a user runs it: `up` until SIGTERM, and `demo`."""

from __future__ import annotations

import decimal
import json
import os
import queue
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from rampart.client import RampartClient
from rampart.local.stack import Stack
from rampart.local.state import pid_alive
from tests.e2e.helpers import event

pytestmark = pytest.mark.e2e

RAMPART = [sys.executable, "-m", "rampart.cli"]


@pytest.fixture
def scratch() -> Iterator[Path]:
    """A TMPDIR of our own (traversable by PostgreSQL's unprivileged user) to prove nothing is left in it."""
    path = Path(tempfile.mkdtemp(prefix="rampart-e2e-"))
    path.chmod(0o755)
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _env(scratch: Path) -> dict[str, str]:
    tmp = scratch / "tmp"
    tmp.mkdir(exist_ok=True)
    tmp.chmod(0o1777)
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env |= {"TMPDIR": str(tmp), "RAMPART_STATE_FILE": str(scratch / "state" / "state.json")}
    return env


def _run(env: dict[str, str], *argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*RAMPART, *argv], check=False, env=env, capture_output=True, text=True, timeout=60)


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        try:
            cmdline = (proc / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if text in cmdline and pid_alive(int(proc.name)):
            found.append(f"{proc.name}: {cmdline[:200]}")
    return found


def test_up_serves_until_sigterm_then_leaves_nothing_running(scratch: Path) -> None:
    env = _env(scratch)
    proc = subprocess.Popen(
        [*RAMPART, "up", "--api-port", "0"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=lambda: [lines.put(line) for line in proc.stdout or []], daemon=True).start()
    stderr: list[str] = []
    threading.Thread(target=lambda: stderr.extend(proc.stderr or []), daemon=True).start()
    try:
        printed: dict[str, str] = {}
        deadline = time.monotonic() + 60
        while len(printed) < 2:
            try:
                line = lines.get(timeout=max(0.1, deadline - time.monotonic()))
            except queue.Empty:
                pytest.fail(f"`rampart up` printed no API_URL/API_KEY in 60 s: {''.join(stderr)[-2000:]}")
            name, _, value = line.strip().partition("=")
            printed[name] = value
        assert printed["API_URL"].startswith("http://127.0.0.1:") and printed["API_URL"].endswith("/v1")
        assert len(printed["API_KEY"]) >= 20
        assert RampartClient(printed["API_URL"], printed["API_KEY"]).health().status == "ok"

        state_file = Path(env["RAMPART_STATE_FILE"])
        assert state_file.stat().st_mode & 0o777 == 0o600
        state = json.loads(state_file.read_text())
        assert state["api_url"] == printed["API_URL"]
        pids = [*state["children"].values(), state["postgres_pid"]]
        assert len(pids) >= 4 and all(pid_alive(p) for p in pids)
        # publish --file: a bad line is reported with its number, the others still go.
        source = f"e2e-cli-{uuid.uuid4().hex[:8]}"
        # Each payload carries a number no binary float holds: the CLI must print it back digit for digit.
        exact = "0.1000000000000000055511151231257827"
        good = [json.dumps(event(source, i=i)).replace('"i": ', f'"amount": {exact}, "i": ') for i in range(3)]
        assert all(exact in line for line in good)
        events_file = scratch / "events.jsonl"
        events_file.write_text(f"{good[0]}\n{{not json\n{good[1]}\n\n{good[2]}\n")
        published = _run(env, "publish", "--file", str(events_file))
        assert published.returncode == 1
        assert f"{events_file}:2: not valid JSON" in published.stderr
        assert "published 3, failed 0, skipped 1" in published.stderr
        deadline = time.monotonic() + 120
        while True:
            listed = _run(env, "query", "events", "--source", source, "--all")
            if len(listed.stdout.splitlines()) == 3 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert listed.returncode == 0, listed.stderr
        assert sorted(json.loads(line)["payload"]["i"] for line in listed.stdout.splitlines()) == [0, 1, 2]
        read = [json.loads(line, parse_float=decimal.Decimal) for line in listed.stdout.splitlines()]
        assert all(item["payload"]["amount"] == decimal.Decimal(exact) for item in read)
        status = _run(env, "status", "--json")
        assert status.returncode == 0, status.stderr
        figures = json.loads(status.stdout)
        assert figures["events_stored"] == 3 and figures["dlq_depth"] == 0 and figures["lag_p50_s"] is not None
        assert all(figures["processes_alive"].values())

        # rampart dlq: a raw (unvalidated) poison line is dead-lettered with its reason; list consumes nothing;
        # redrive moves it back to the queue (where the handler rejects it again, with the same reason).
        poison_file = scratch / "poison.jsonl"
        poison_file.write_text('{"event_id": "nope"}\n')
        assert _run(env, "publish", "--raw", "--file", str(poison_file)).returncode == 0
        deadline = time.monotonic() + 120
        while True:
            dead = _run(env, "dlq", "list", "--json")
            if dead.stdout.strip() or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert dead.returncode == 0, dead.stderr
        [letter] = [json.loads(line) for line in dead.stdout.splitlines()]
        assert letter["body"] == '{"event_id": "nope"}' and "schema violation" in letter["reason"]
        again = [json.loads(x) for x in _run(env, "dlq", "list", "--json").stdout.splitlines()]
        assert [{**x, "receive_count": 0} for x in again] == [{**letter, "receive_count": 0}]
        shown = _run(env, "dlq", "show", letter["message_id"])
        assert shown.returncode == 0 and "schema violation" in shown.stdout
        assert _run(env, "dlq", "show", "no-such-id").returncode == 1
        redriven = _run(env, "dlq", "redrive", "--all")
        assert redriven.returncode == 0 and "moved 1 message(s)" in redriven.stderr
        assert _run(env, "dlq", "redrive").returncode == 2  # neither ids nor --all: a usage error

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    assert [p for p in pids if pid_alive(p)] == []
    assert _processes_mentioning(str(scratch)) == []
    assert list(Path(env["TMPDIR"]).iterdir()) == []
    assert not state_file.exists()
    assert "stopped" in "".join(stderr)


def test_demo_exits_0(scratch: Path) -> None:
    env = _env(scratch)
    result = subprocess.run([*RAMPART, "demo"], check=False, env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    assert "all checks passed" in result.stderr
    assert "FAIL" not in result.stderr
    assert list(Path(env["TMPDIR"]).iterdir()) == []


def test_user_mistakes_get_one_line_and_no_trace(scratch: Path) -> None:
    env = _env(scratch)
    for argv in (["status"], ["publish", "--count", "3"], ["query", "health"]):
        result = subprocess.run([*RAMPART, *argv], check=False, env=env, capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert result.stderr.startswith("rampart: error: no running `rampart up` found"), result.stderr
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = subprocess.run(
        [*RAMPART, "up", "--api-key", "short"], check=False, env=env, capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 2 and "at least 20 characters" in result.stderr
    result = subprocess.run(
        [*RAMPART, "query", "--url", "http://example.com/v1", "--api-key", "k", "health"],
        check=False,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2 and "HTTPS" in result.stderr


def test_migrate_brings_a_database_up_to_date_idempotently(stack: Stack) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    env |= stack.db_env("rampart_admin")
    first = _run(env, "migrate")
    assert first.returncode == 0, first.stderr
    assert "connecting to localhost" in first.stderr and "0 migration(s) applied now" in first.stderr
    env["RAMPART_DB_PASSWORD"] = "wrong"  # pragma: allowlist secret
    refused = _run(env, "migrate")
    assert refused.returncode == 1
    assert refused.stderr.splitlines()[-1].startswith("rampart: error: cannot connect to localhost")
    assert "wrong" not in refused.stderr and "Traceback" not in refused.stderr
