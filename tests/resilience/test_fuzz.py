"""schemathesis against the local gateway's OpenAPI document (issue 6): with a valid key, at least 1,000
generated requests, no 5xx and no response that violates the documented schema; without a key, every request
refused.

Deterministic (issue 12): one worker, a fixed seed and `--generation-deterministic`, a fixed number of examples
per operation: every fresh clone generates the same requests, so a failure here is a finding, not bad luck."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from rampart.local.stack import Stack

pytestmark = pytest.mark.e2e
ST = Path(sys.executable).parent / "st"
EXAMPLES = 400  # per operation; with the examples and coverage phases, > 1,000 requests in all
CHECKS = "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance"


SEED = 20261128


def _run(stack: Stack, tmp_path: Path, headers: list[str], checks: str, examples: int) -> tuple[int, str, int]:
    report = tmp_path / "events.ndjson"
    cmd = [
        str(ST),
        "run",
        f"{stack.api_url}/openapi.json",
        "--checks",
        checks,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        str(examples),
        "--seed",
        str(SEED),
        "--generation-deterministic",
        "--workers",
        "1",
        "--request-timeout",
        "10",
        "--report",
        "ndjson",
        "--report-ndjson-path",
        str(report),
        *[arg for h in headers for arg in ("--header", h)],
    ]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    requests = 0
    for line in report.read_text(encoding="utf-8").splitlines():
        requests += line.count('"response"') if '"ScenarioFinished"' in line else 0
    return proc.returncode, proc.stdout + proc.stderr, requests


def test_schemathesis_with_a_key_finds_no_5xx_and_no_schema_violation(stack: Stack, tmp_path: Path) -> None:
    code, out, requests = _run(stack, tmp_path, [f"x-api-key: {stack.api_key.value}"], CHECKS, EXAMPLES)
    assert code == 0, out[-4000:]
    assert requests >= 1000, f"only {requests} requests were generated\n{out[-2000:]}"


def test_schemathesis_without_a_key_is_always_refused(stack: Stack, tmp_path: Path) -> None:
    _, _, requests = _run(stack, tmp_path, [], "not_a_server_error", 60)
    assert requests > 0
    report = (tmp_path / "events.ndjson").read_text(encoding="utf-8")
    statuses = [json.loads(s) for s in _statuses(report)]
    assert statuses and set(statuses) == {403}, sorted(set(statuses))


def _statuses(report: str) -> list[str]:
    import re  # noqa: PLC0415

    return re.findall(r'"status_code":\s*(\d{3})', report)
