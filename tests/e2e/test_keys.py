"""`rampart keys` against the running twin, proven through the real gateway: a created key works, a revoked key
is refused at once, a rotation keeps both keys working for the overlap and the old one is refused once the
window is ended (forced, or expired and pruned); a key is throttled by its tier's usage plan; no key value in
any log or in the command's output."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from rampart.local.stack import Stack
from rampart.local.state import StackState, write_state
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e

RAMPART = [sys.executable, "-m", "rampart.cli"]


@pytest.fixture(scope="module")
def state_file(stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A state file for the session's stack, as `rampart up` would write it, so the CLI can find the twin."""
    assert stack.resources is not None
    path = tmp_path_factory.mktemp("keys-state") / "state.json"
    write_state(
        path,
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
            db_env={},
            started_at=dt.datetime.now(dt.UTC).isoformat(),
            stack_name=stack.config.name,
        ),
    )
    return path


OUTPUTS: list[str] = []  # everything the CLI printed in this module, scanned for values at the end
ISSUED: set[str] = set()  # every key value issued in this module (revoked ones included)


def keys_cli(state_file: Path, *argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RAMPART_", "AWS_"))}
    env["RAMPART_STATE_FILE"] = str(state_file)
    result = subprocess.run([*RAMPART, "keys", *argv], check=False, env=env, capture_output=True, text=True, timeout=60)
    OUTPUTS.append(result.stdout + result.stderr)
    if check:
        assert result.returncode == 0, result.stderr
    return result


def secret_value(stack: Stack, client: str, which: str = "current") -> str:
    raw = stack.client("secretsmanager").get_secret_value(SecretId=f"{stack.config.name}/api-keys/{client}")
    value = str(json.loads(raw["SecretString"])[which]["value"])
    ISSUED.add(value)
    return value


def status_with(stack: Stack, key: str, path: str = "/v1/health") -> int:
    conn = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=10)
    try:
        conn.request("GET", path, headers={"x-api-key": key})
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


def test_a_created_key_works_at_once_and_a_revoked_one_is_refused(stack: Stack, state_file: Path) -> None:
    created = json.loads(keys_cli(state_file, "create", "--client", "e2e-acme", "--tier", "main").stdout)
    assert created["secret"] == f"{stack.config.name}/api-keys/e2e-acme" and "value" not in created
    value = secret_value(stack, "e2e-acme")
    assert status_with(stack, value) == 200  # no waiting: an unknown key makes the gateway read the keys again
    revoked = json.loads(keys_cli(state_file, "revoke", "--client", "e2e-acme").stdout)
    assert revoked == {"client": "e2e-acme", "revoked_key_ids": [created["key_id"]]}
    wait_until(lambda: status_with(stack, value) == 403, timeout=10)
    assert status_with(stack, stack.api_key.value) == 200  # other clients are untouched


def test_rotation_keeps_both_keys_until_the_overlap_is_ended(stack: Stack, state_file: Path) -> None:
    keys_cli(state_file, "create", "--client", "e2e-rot", "--tier", "main")
    old = secret_value(stack, "e2e-rot")
    rotated = json.loads(keys_cli(state_file, "rotate", "--client", "e2e-rot", "--overlap", "24h").stdout)
    new = secret_value(stack, "e2e-rot")
    assert new != old and secret_value(stack, "e2e-rot", "previous") == old
    assert rotated["previous_key_id"] and rotated["previous_expires_at"]
    assert (status_with(stack, old), status_with(stack, new)) == (200, 200)
    listing = keys_cli(state_file, "list", "--json").stdout.splitlines()
    roles = {(r["key_id"], r["role"]) for r in map(json.loads, listing) if r["client"] == "e2e-rot"}
    assert roles == {(rotated["previous_key_id"], "previous"), (rotated["key_id"], "current")}
    # Forced expiry: the old key is refused, the new one keeps working.
    keys_cli(state_file, "revoke", "--client", "e2e-rot", "--previous")
    wait_until(lambda: status_with(stack, old) == 403, timeout=10)
    assert status_with(stack, new) == 200


def test_an_expired_overlap_is_pruned_and_the_old_key_refused(stack: Stack, state_file: Path) -> None:
    keys_cli(state_file, "create", "--client", "e2e-exp", "--tier", "main")
    old = secret_value(stack, "e2e-exp")
    rotated = json.loads(keys_cli(state_file, "rotate", "--client", "e2e-exp", "--overlap", "1s").stdout)
    new = secret_value(stack, "e2e-exp")
    assert status_with(stack, new) == 200

    def pruned() -> bool:
        out = json.loads(keys_cli(state_file, "prune", "--client", "e2e-exp").stdout)
        return {"client": "e2e-exp", "key_id": rotated["previous_key_id"]} in out["pruned"]

    wait_until(pruned, timeout=30, interval=0.2)  # the window ends one second after the rotation
    wait_until(lambda: status_with(stack, old) == 403, timeout=10)
    assert status_with(stack, new) == 200


def test_a_key_is_throttled_by_its_tiers_usage_plan(stack: Stack, state_file: Path) -> None:
    keys_cli(state_file, "create", "--client", "e2e-slow", "--tier", "limited")  # rate 2/s, burst 5
    value = secret_value(stack, "e2e-slow")
    statuses = [status_with(stack, value) for _ in range(9)]
    assert statuses[:5] == [200] * 5 and statuses.count(429) >= 3


def test_mistakes_are_one_line_without_a_trace(stack: Stack, state_file: Path) -> None:
    cases: list[tuple[list[str], str]] = [
        (["create", "--client", "e2e-x", "--tier", "platinum"], "no usage plan"),
        (["rotate", "--client", "nobody-here"], "has no keys"),
        (["revoke", "--client", "nobody-here", "--previous"], "no previous key"),
        (["create", "--client", "Not_Valid"], "lowercase letters"),
        (["rotate", "--client", "x", "--overlap", "soon"], "not a duration"),
        (["list", "--stack-name", "someone-else"], "AWS needs --aws"),
        (["list", "--aws", "--region", "eu-west-1"], "--aws needs --stack-name"),
    ]
    for argv, expected in cases:
        result = keys_cli(state_file, *argv, check=False)
        assert result.returncode != 0, argv
        assert expected in result.stderr, (argv, result.stderr)
        # One error line (argparse's usage lines may precede a usage mistake's), never a trace.
        assert "Traceback" not in result.stderr, result.stderr
        assert len([line for line in result.stderr.splitlines() if "error:" in line]) == 1, result.stderr
        if not result.stderr.startswith("usage:"):
            assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    missing = subprocess.run(
        [*RAMPART, "keys", "list", "--state-file", str(state_file.parent / "none.json")],
        check=False,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert missing.returncode == 1 and missing.stderr.count("\n") == 1 and "no running" in missing.stderr


def test_keys_help_names_every_action() -> None:
    result = subprocess.run([*RAMPART, "keys", "--help"], check=True, capture_output=True, text=True, timeout=60)
    for action in ("create", "list", "rotate", "revoke", "prune", "--aws"):
        assert action in result.stdout


def test_no_key_value_in_any_log_or_output(stack: Stack, state_file: Path) -> None:
    """Every value issued (here, and by any test before in this module) against every log line and CLI output."""
    keys_cli(state_file, "create", "--client", "e2e-logs", "--tier", "main")
    first = secret_value(stack, "e2e-logs")
    keys_cli(state_file, "rotate", "--client", "e2e-logs")
    second = secret_value(stack, "e2e-logs")
    assert (status_with(stack, first, "/v1/events?limit=1"), status_with(stack, second, "/v1/nope")) == (200, 403)
    keys_cli(state_file, "revoke", "--client", "e2e-logs")
    wait_until(lambda: status_with(stack, second) == 403, timeout=10)
    keys_cli(state_file, "list")
    values: set[str] = {k.value for k in stack.config.api_keys} | ISSUED | _values_of_secrets(stack)
    for key in stack.client("apigateway").get_api_keys(includeValues=True)["items"]:
        values.add(key["value"])
    assert {first, second} <= values
    texts = [(p.name, p.read_text(encoding="utf-8", errors="replace")) for p in Path(stack.logs_dir).rglob("*.log")]
    texts += [("cli output", "\n".join(OUTPUTS))]
    assert '"api_key_id"' in dict(texts)["gateway.log"]  # the gateway did log the requests (by key id)
    for name, text in texts:
        for value in values:
            assert value not in text, f"a key value appears in {name}"


def _values_of_secrets(stack: Stack) -> set[str]:
    sm = stack.client("secretsmanager")
    found: set[str] = set()
    for secret in sm.list_secrets()["SecretList"]:
        if "/api-keys/" in secret["Name"]:
            raw: dict[str, Any] = json.loads(sm.get_secret_value(SecretId=secret["ARN"])["SecretString"])
            found |= {v["value"] for v in (raw["current"], raw["previous"]) if v}
    return found
