"""scripts/tfplan.py on fixtures: the summary calls out what a reviewer must see; the seal ties a plan to its
commit, environment and state; verify and check-state refuse a changed, foreign or stale plan."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "tfplan.py"
FIXTURE = Path(__file__).parent / "fixtures" / "plan.json"
sys.path.insert(0, str(REPO / "scripts"))
import tfplan  # noqa: E402


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], capture_output=True, text=True, check=False)


def test_summary_counts_and_calls_out_iam_kms_policy_security_groups_and_public_access() -> None:
    summary = tfplan.summarise(json.loads(FIXTURE.read_text()))
    assert summary["counts"] == {"create": 1, "update": 4, "replace": 1, "delete": 1}
    called = summary["called_out"]
    assert called["IAM"] == ["update `module.github_oidc.aws_iam_role_policy.plan` (policy)"]
    # A new key and a changed key policy are called out; a description-only change is not a key-policy change.
    assert called["KMS key policy"] == ["create `module.api.module.api_keys_key.aws_kms_key.this`"]
    assert called["security group"] == ["replace `module.network.aws_security_group.lambda`"]
    assert "update `module.database.aws_db_instance.this` (publicly_accessible)" in called["public access"]
    assert "update `module.api.aws_wafv2_web_acl.this` (rule)" in called["public access"]
    assert summary["outputs"] == ["api_usage_plan_ids"] and summary["has_changes"] is True


def test_summary_markdown_and_an_empty_plan() -> None:
    result = run("summary", str(FIXTURE), "--title", "plan (prod)")
    assert result.returncode == 0
    assert "**1 to add, 4 to change, 1 to replace, 1 to destroy**" in result.stdout
    assert "#### ⚠ IAM changes (1)" in result.stdout
    empty = tfplan.summarise({"resource_changes": [], "output_changes": {}})
    assert empty["has_changes"] is False and "No changes." in tfplan.markdown(empty, "t")


def plan_file(path: Path, lineage: str | None = "L", serial: int = 5) -> Path:
    with zipfile.ZipFile(path, "w") as archive:
        archive.writestr("tfplan", b"plan bytes")
        if lineage is not None:
            archive.writestr("tfstate", json.dumps({"lineage": lineage, "serial": serial}))
    return path


@pytest.fixture
def sealed(tmp_path: Path) -> Path:
    plan = plan_file(tmp_path / "prod.tfplan")
    assert run("seal", str(plan), str(FIXTURE), "--commit", "abc", "--env", "prod").returncode == 0
    manifest = json.loads((tmp_path / "prod.tfplan.manifest.json").read_text())
    assert manifest["state"] == {"lineage": "L", "serial": 5} and manifest["has_changes"] is True
    return plan


def test_verify_accepts_the_sealed_plan_of_this_commit(sealed: Path) -> None:
    assert run("verify", str(sealed), "--commit", "abc", "--env", "prod").returncode == 0


@pytest.mark.parametrize(
    ("commit", "env", "why"),
    [("def", "prod", "made for commit abc"), ("abc", "dev", "made for environment prod")],
)
def test_verify_refuses_another_commit_or_environment(sealed: Path, commit: str, env: str, why: str) -> None:
    result = run("verify", str(sealed), "--commit", commit, "--env", env)
    assert result.returncode == 1 and why in result.stderr


def test_verify_refuses_a_changed_plan_file(sealed: Path) -> None:
    with zipfile.ZipFile(sealed, "a") as archive:
        archive.writestr("extra", b"x")
    result = run("verify", str(sealed), "--commit", "abc", "--env", "prod")
    assert result.returncode == 1 and "does not match its sealed sha256" in result.stderr


def test_verify_refuses_a_missing_manifest(tmp_path: Path) -> None:
    plan = plan_file(tmp_path / "prod.tfplan")
    assert run("verify", str(plan), "--commit", "abc", "--env", "prod").returncode == 1


@pytest.mark.parametrize(("lineage", "serial"), [("L", 6), ("other", 5)])
def test_check_state_refuses_a_stale_plan(sealed: Path, tmp_path: Path, lineage: str, serial: int) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps({"lineage": lineage, "serial": serial}))
    result = run("check-state", str(sealed), str(state))
    assert result.returncode == 1 and "stale plan" in result.stderr
    state.write_text(json.dumps({"lineage": "L", "serial": 5}))
    assert run("check-state", str(sealed), str(state)).returncode == 0


def test_a_first_apply_plans_against_no_state(tmp_path: Path) -> None:
    plan = plan_file(tmp_path / "prod.tfplan", lineage=None)
    assert run("seal", str(plan), str(FIXTURE), "--commit", "abc", "--env", "prod").returncode == 0
    empty = tmp_path / "state.json"
    empty.write_text("")
    assert run("check-state", str(plan), str(empty)).returncode == 0
