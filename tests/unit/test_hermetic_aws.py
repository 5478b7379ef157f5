"""The moto-backed tests stay inside moto whatever endpoint the shell that runs them names."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# Nothing listens on port 9 (discard) here: a call that escaped moto would fail to connect, and the tests with it.
NOWHERE = "http://127.0.0.1:9"


def test_an_ambient_endpoint_never_reaches_the_mocked_tests(tmp_path: Path) -> None:
    config = tmp_path / "config"
    config.write_text(f"[default]\nendpoint_url = {NOWHERE}\n", encoding="utf-8")
    env = {
        **os.environ,
        "AWS_ENDPOINT_URL": NOWHERE,
        "AWS_ENDPOINT_URL_SQS": NOWHERE,
        "AWS_ENDPOINT_URL_SECRETS_MANAGER": NOWHERE,
        "AWS_CONFIG_FILE": str(config),
        "AWS_MAX_ATTEMPTS": "1",
    }
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "--no-cov",
            "tests/unit/test_dlq.py",
            "tests/unit/test_cursor_keys.py",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    assert " passed" in proc.stdout
