"""The state file that lets `publish`, `status` and `query` find a running `rampart up`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from rampart.local.state import StackState, StateError, pid_alive, read_state, remove_state, write_state


def state(pid: int) -> StackState:
    return StackState(
        pid=pid, api_url="http://127.0.0.1:1/v1", api_key="k" * 30, api_key_id="abc", aws_endpoint="http://x",
        region="eu-west-1", topic_arn="t", queue_url="q", dlq_url="d", db_env={"RAMPART_DB_PASSWORD": "p"},
        started_at="2026-01-01T00:00:00+00:00",
    )  # fmt: skip


def test_written_private_and_read_back(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "state.json"
    write_state(path, state(os.getpid()))
    assert path.stat().st_mode & 0o777 == 0o600
    assert path.parent.stat().st_mode & 0o777 == 0o700
    assert read_state(path) == state(os.getpid())
    assert [p.name for p in path.parent.iterdir()] == ["state.json"]  # no temporary file left


def test_missing_stale_or_foreign_state_is_a_clear_error(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    with pytest.raises(StateError, match="no running"):
        read_state(path)
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, check=True)
    write_state(path, state(int(dead.stdout)))
    with pytest.raises(StateError, match="stale"):
        read_state(path)
    path.write_text("{not json")
    with pytest.raises(StateError, match="cannot read"):
        read_state(path)
    path.write_text('{"version": 99}')
    with pytest.raises(StateError, match="another version"):
        read_state(path)


def test_only_the_owner_removes_the_state_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    write_state(path, state(os.getpid()))
    remove_state(path, os.getpid() + 1)
    assert path.exists()
    remove_state(path, os.getpid())
    assert not path.exists()


def test_a_zombie_is_not_alive() -> None:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    try:
        for _ in range(100):
            if Path(f"/proc/{proc.pid}/stat").exists() and " Z " in Path(f"/proc/{proc.pid}/stat").read_text():
                break
            subprocess.run(["sleep", "0.02"], check=True)
        assert not pid_alive(proc.pid)  # exited, not reaped yet
    finally:
        proc.wait()
    assert pid_alive(os.getpid())
