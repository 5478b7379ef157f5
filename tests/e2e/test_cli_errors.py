"""`rampart` as a user runs it (a real subprocess, measured by coverage): every mistake — a bad option, a bad
environment value, no or a broken state file, a stack that is gone, an unreachable API, bad database settings —
gets one line on stderr and a non-zero exit, never a stack trace."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

RAMPART = [sys.executable, "-m", "rampart.cli"]


def _run(tmp_path: Path, *argv: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("RAMPART_")}
    base |= {"RAMPART_STATE_FILE": str(tmp_path / "state.json"), "HOME": str(tmp_path)}
    return subprocess.run(
        [*RAMPART, *argv], env=base | (env or {}), capture_output=True, text=True, timeout=120, check=False
    )


def _one_line_error(result: subprocess.CompletedProcess[str], expected: str) -> None:
    assert result.returncode != 0, result.stdout
    assert "Traceback" not in result.stderr, result.stderr
    assert expected in result.stderr, result.stderr


def _state(tmp_path: Path, **overrides: object) -> None:
    state = {
        "pid": 999_999_999, "api_url": "http://127.0.0.1:1/v1", "api_key": "k", "api_key_id": "id",
        "aws_endpoint": "http://127.0.0.1:1", "region": "eu-west-1", "topic_arn": "arn:aws:sns:eu-west-1:1:t",
        "queue_url": "http://127.0.0.1:1/q", "dlq_url": "http://127.0.0.1:1/d", "db_env": {},
        "started_at": "2026-01-01T00:00:00+00:00", "version": 1,
    }  # fmt: skip
    (tmp_path / "state.json").write_text(json.dumps(state | overrides), encoding="utf-8")


@pytest.mark.parametrize("command", ["status", "publish", "query health", "dlq list"])
def test_no_running_stack(tmp_path: Path, command: str) -> None:
    _one_line_error(_run(tmp_path, *command.split()), "no running `rampart up` found")


def test_an_unreadable_or_foreign_state_file(tmp_path: Path) -> None:
    (tmp_path / "state.json").write_text("{not json", encoding="utf-8")
    _one_line_error(_run(tmp_path, "status"), "cannot read the state file")
    (tmp_path / "state.json").write_text('{"version": 99}', encoding="utf-8")
    _one_line_error(_run(tmp_path, "status"), "from another version of rampart")
    (tmp_path / "state.json").write_text('{"version": 1, "nonsense": true}', encoding="utf-8")
    _one_line_error(_run(tmp_path, "status"), "malformed")


def test_a_stack_that_is_gone(tmp_path: Path) -> None:
    _state(tmp_path)
    result = _run(tmp_path, "status")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert result.stderr.count("\n") == 1, result.stderr


@pytest.mark.parametrize(
    ("argv", "env", "expected"),
    [
        (["publish"], {"RAMPART_PUBLISH_COUNT": "abc"}, "is not a whole number"),
        (["publish", "--rate", "-1"], {}, "must not be negative"),
        (["up", "--api-port", "99999"], {}, "is not a port number"),
        (["nonsense"], {}, "invalid choice"),
        (
            ["migrate"],
            {"RAMPART_DB_AUTH": "nonsense", "RAMPART_DB_HOST": "x", "RAMPART_DB_USER": "y"},
            "RAMPART_DB_AUTH",
        ),
        (["query", "--url", "http://127.0.0.1:1/v1", "--api-key", "x", "health"], {}, "cannot reach"),
    ],
)
def test_usage_mistakes(tmp_path: Path, argv: list[str], env: dict[str, str], expected: str) -> None:
    _one_line_error(_run(tmp_path, *argv, env=env), expected)


def test_help_lists_every_command(tmp_path: Path) -> None:
    result = _run(tmp_path, "--help")
    assert result.returncode == 0
    for command in ("migrate", "up", "publish", "status", "query", "dlq", "demo"):
        assert command in result.stdout
