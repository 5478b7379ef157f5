"""scripts/deploy_functions.sh against a fake `aws` and `curl` on PATH: signing before any code moves, version
published and alias moved for both functions, the smoke test's checks, and the automatic alias rollback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "deploy_functions.sh"

FAKE_AWS = r"""#!/usr/bin/env bash
# Records every call; answers like the aws CLI with --output text.
echo "aws $*" >> "$FAKE_LOG"
case "$1 $2" in
  "s3api put-object") echo "objversion1" ;;
  "signer start-signing-job") echo "job-$(grep -c 'start-signing-job' "$FAKE_LOG")" ;;
  "signer wait") exit "${FAKE_SIGNING_FAILS:-0}" ;;
  "signer describe-signing-job") echo "signed/abc/$4-signed.zip" ;;
  "lambda update-function-code") echo "InProgress" ;;
  "lambda wait") ;;
  "lambda publish-version") echo "8" ;;
  "lambda get-alias") echo "7" ;;
  "lambda update-alias") for a; do [[ $prev == --function-version ]] && echo "$a"; prev=$a; done ;;
  "secretsmanager get-secret-value") # rampart keys' secret document (docs: conventions)
    printf '{"client": "smoke-test", "tier": "standard", "current": {"id": "k1", "value": "%s",' \
      k3y-from-secrets-manager
    printf ' "created_at": "2026-11-30T00:00:00Z"}, "previous": null, "previous_expires_at": null}\n' ;;
  *) echo "unexpected aws call: $*" >&2; exit 99 ;;
esac
"""

FAKE_CURL = r"""#!/usr/bin/env bash
# 200 + JSON with the key header file, 403 without; FAKE_API_STATUS overrides the keyed status.
echo "curl $*" >> "$FAKE_LOG"
out=/dev/null; keyed=0
while [[ $# -gt 0 ]]; do
  case "$1" in
    -o) out=$2; shift ;;
    -H) [[ $2 == @* ]] && grep -q '^x-api-key: k3y-from-secrets-manager$' "${2#@}" && keyed=1; shift ;;
  esac
  shift
done
if [[ $keyed == 1 ]]; then echo '{"status":"ok"}' > "$out"; printf '%s' "${FAKE_API_STATUS:-200}"; else printf 403; fi
"""


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for name, body in (("aws", FAKE_AWS), ("curl", FAKE_CURL)):
        (bindir / name).write_text(body, encoding="utf-8")
        (bindir / name).chmod(0o755)
    dist = tmp_path / "dist"
    dist.mkdir()
    for component in ("ingest", "api"):
        (dist / f"{component}.zip").write_bytes(b"PK\x05\x06" + b"\0" * 18)
    return {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "GITHUB_SHA": "abc",
        "RAMPART_DIST_DIR": str(dist),
        "RAMPART_DEPLOY_STATE_DIR": str(tmp_path / "state"),
        "RAMPART_ARTIFACT_BUCKET": "artifacts",
        "RAMPART_SIGNING_PROFILE": "rampart",
        "RAMPART_INGEST_FUNCTION": "rampart-ingest",
        "RAMPART_API_FUNCTION": "rampart-api",
        "RAMPART_API_URL": "https://api.example.test/v1",
        "RAMPART_API_KEY_SECRET_ID": "rampart/api-key",
    }


def run(command: str, env: dict[str, str], **extra: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", str(SCRIPT), command], cwd=REPO, env={**env, **extra}, capture_output=True, text=True, check=False
    )


def calls(env: dict[str, str]) -> list[str]:
    return Path(env["FAKE_LOG"]).read_text(encoding="utf-8").splitlines()


def test_deploy_signs_both_then_updates_publishes_and_moves_the_alias(env: dict[str, str]) -> None:
    result = run("deploy", env)
    assert result.returncode == 0, result.stderr
    log = calls(env)
    signing = [i for i, c in enumerate(log) if "signer start-signing-job" in c]
    updates = [i for i, c in enumerate(log) if "lambda update-function-code" in c]
    assert len(signing) == 2 and len(updates) == 2 and max(signing) < min(updates)  # both signed before any update
    assert any("--s3-key signed/abc/job-1-signed.zip" in c and "rampart-ingest" in c for c in log)
    moves = [c for c in log if "update-alias" in c]
    assert moves == [
        "aws lambda update-alias --function-name rampart-ingest --name live --function-version 8 "
        "--query FunctionVersion --output text",
        "aws lambda update-alias --function-name rampart-api --name live --function-version 8 "
        "--query FunctionVersion --output text",
    ]
    state = (Path(env["RAMPART_DEPLOY_STATE_DIR"]) / "alias-moves.tsv").read_text(encoding="utf-8")
    assert state == "rampart-ingest\t7\t8\nrampart-api\t7\t8\n"


def test_a_failed_signature_moves_nothing(env: dict[str, str]) -> None:
    result = run("deploy", env, FAKE_SIGNING_FAILS="1")
    assert result.returncode != 0
    assert not any("update-function-code" in c or "update-alias" in c for c in calls(env))
    assert run("rollback", env).returncode == 0  # nothing recorded, nothing to roll back


def test_smoke_test_passes_with_the_key_and_checks_that_no_key_is_refused(env: dict[str, str]) -> None:
    result = run("smoke", env)
    assert result.returncode == 0, result.stderr
    log = calls(env)
    assert any("secretsmanager get-secret-value --secret-id rampart/api-key" in c for c in log)
    assert not any("k3y-from-secrets-manager" in c for c in log if c.startswith("curl"))  # never on a command line


def test_failed_smoke_test_then_rollback_restores_the_previous_versions(env: dict[str, str]) -> None:
    assert run("deploy", env).returncode == 0
    smoke = run("smoke", env, FAKE_API_STATUS="502")
    assert smoke.returncode != 0 and "HTTP 502" in smoke.stderr
    rollback = run("rollback", env)
    assert rollback.returncode == 0, rollback.stderr
    moves = [c for c in calls(env) if "update-alias" in c]
    assert moves[-2:] == [
        "aws lambda update-alias --function-name rampart-ingest --name live --function-version 7 "
        "--query FunctionVersion --output text",
        "aws lambda update-alias --function-name rampart-api --name live --function-version 7 "
        "--query FunctionVersion --output text",
    ]


def test_missing_configuration_fails_before_any_call(env: dict[str, str]) -> None:
    result = run("deploy", {**env, "RAMPART_SIGNING_PROFILE": ""})
    assert result.returncode != 0 and "RAMPART_SIGNING_PROFILE is not set" in result.stderr
    assert not Path(env["FAKE_LOG"]).exists()


def test_smoke_needs_the_secret_id_before_any_call(env: dict[str, str]) -> None:
    result = run("smoke", {**env, "RAMPART_API_KEY_SECRET_ID": ""})
    assert result.returncode != 0 and "RAMPART_API_KEY_SECRET_ID is not set" in result.stderr
    assert not Path(env["FAKE_LOG"]).exists()


@pytest.mark.parametrize("github_actions", ["", "true"])
def test_smoke_key_never_reaches_the_log(env: dict[str, str], github_actions: str) -> None:
    result = run("smoke", env, GITHUB_ACTIONS=github_actions)
    assert result.returncode == 0, result.stderr
    lines = (result.stdout + result.stderr).splitlines()
    leaking = [line for line in lines if "k3y-from-secrets-manager" in line]
    # On GitHub the one line with the key is the workflow command that masks it in every later line.
    assert leaking == (["::add-mask::k3y-from-secrets-manager"] if github_actions else [])
