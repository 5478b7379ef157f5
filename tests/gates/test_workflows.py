"""The pipeline, verified statically: zizmor, checkov's github_actions framework, the Rampart workflow policies,
and the structure that makes every deploy wait for the whole gate."""

from __future__ import annotations

import copy
import os
import re
import shlex
import subprocess

import pytest

from tests.gates.workflow_model import (
    AWS_CREDENTIALS,
    REPO,
    WORKFLOWS,
    all_workflows,
    assumes_role,
    attests_only,
    deploy_violations,
    is_deploy_job,
    load,
    steps,
)
from tests.policies.checkov_runner import WORKFLOW_IDS, ensure_checkov, run_checkov

# The pipeline, then the supply-chain workflows (issue 13: codeql, dependency-review, lock, scorecard).
WORKFLOW_NAMES = sorted(
    ["ci.yml", "deploy.yml", "terraform.yml", "codeql.yml", "dependency-review.yml", "lock.yml", "scorecard.yml"]
)
SHA_USES = re.compile(r"^\s*(?:-\s+)?uses:\s+[^@\s]+@[0-9a-f]{40}\s+#\s+v\d+(\.\d+)*\s*$")


def test_the_workflows_exist() -> None:
    assert sorted(p.name for p in WORKFLOWS.glob("*.yml")) == WORKFLOW_NAMES


def test_zizmor_offline_reports_no_finding() -> None:
    zizmor = str(REPO / ".venv/bin/zizmor")
    proc = subprocess.run(
        [zizmor, "--offline", "--format", "json", ".github/workflows", ".github/dependabot.yml"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.strip() in {"[]", ""}


def test_checkov_github_actions_framework_reports_no_failed_check() -> None:
    ensure_checkov()
    results = run_checkov(REPO / ".github", frameworks=("github_actions",), only_rampart=False)
    failed = sorted((r.check_id, r.file, r.resource) for r in results if not r.passed)
    assert failed == []
    ran = {r.check_id for r in results}
    assert ran >= WORKFLOW_IDS  # the Rampart workflow policies ran, on top of checkov's CKV_GHA_*
    assert any(i.startswith("CKV_GHA_") for i in ran)


def test_no_deploy_job_can_run_unless_every_gate_job_succeeded() -> None:
    workflows = all_workflows()
    gate = workflows["ci.yml"]
    deploy_jobs = [(w, n) for w, doc in workflows.items() for n, j in doc["jobs"].items() if is_deploy_job(j)]
    assert ("deploy.yml", "deploy") in deploy_jobs and ("deploy.yml", "apply") in deploy_jobs
    for name, doc in workflows.items():
        assert deploy_violations(doc, gate) == [], name


def test_the_structure_check_catches_a_deploy_that_skips_the_gate() -> None:
    workflows = all_workflows()
    gate = workflows["ci.yml"]
    broken = copy.deepcopy(workflows["deploy.yml"])
    del broken["jobs"]["deploy"]["needs"]
    assert deploy_violations(broken, gate) != []
    always = copy.deepcopy(workflows["deploy.yml"])
    always["jobs"]["deploy"]["if"] = "${{ always() }}"
    assert deploy_violations(always, gate) != []
    # Past a skipped apply only if every needed job succeeded (or the apply skipped itself).
    lax = copy.deepcopy(workflows["deploy.yml"])
    lax["jobs"]["deploy"]["if"] = "${{ !cancelled() && needs.gate.result == 'success' }}"
    assert deploy_violations(lax, gate) != []
    lax["jobs"]["deploy"]["if"] = (
        "${{ !cancelled() && needs.gate.result == 'success' && needs.plan.result == 'success' && "
        "(needs.apply.result == 'success' || needs.apply.result == 'failure') }}"
    )
    assert deploy_violations(lax, gate) != []
    skippable_gate = copy.deepcopy(gate)
    skippable_gate["jobs"]["bandit"]["if"] = "github.actor != 'dependabot[bot]'"
    assert deploy_violations(workflows["deploy.yml"], skippable_gate) != []
    # The provenance job may skip itself (off main) only while it checks nothing: give it a `run:` and it is a gate.
    running = copy.deepcopy(gate)
    running["jobs"]["provenance"]["steps"].insert(1, {"run": "make verify-artifacts"})
    assert deploy_violations(workflows["deploy.yml"], running) != []


def test_the_gate_workflow_covers_every_gate() -> None:
    ci = load(WORKFLOWS / "ci.yml")
    assert set(ci["on"]) == {"pull_request", "push", "workflow_call"}
    targets = {shlex.split(s["run"], comments=True)[1] for j in ci["jobs"].values() for s in steps(j) if "run" in s}
    assert targets >= {
        "lint", "typecheck", "pytest-all", "checkov", "checkov-actions", "bandit", "audit", "zizmor",
        "iac-validate", "secrets", "sbom-check", "verify-artifacts", "iam-lint", "scorecard-offline", "audit-canary",
    }  # fmt: skip
    uploads = [s for j in ci["jobs"].values() for s in steps(j) if "upload-sarif" in str(s.get("uses", ""))]
    assert {u["with"]["sarif_file"] for u in uploads} == {"build/reports/checkov.sarif", "build/reports/bandit.sarif"}


@pytest.mark.parametrize("name", WORKFLOW_NAMES)
def test_hardening(name: str) -> None:
    text = (WORKFLOWS / name).read_text(encoding="utf-8")
    doc = load(WORKFLOWS / name)
    assert "pull_request_target" not in doc["on"]
    assert doc["permissions"] == {}
    for job_name, job in doc["jobs"].items():
        if "uses" in job:  # a reusable-workflow call: permissions cap the callee; no steps, no runner
            if (job.get("permissions") or {}).get("id-token") == "write":  # only for a callee job that attests
                callee = load(REPO / job["uses"])
                assert job["uses"].startswith("./") and any(attests_only(j) for j in callee["jobs"].values())
            continue
        assert isinstance(job.get("timeout-minutes"), int), job_name
        assert "concurrency" in doc or "concurrency" in job, job_name
        id_token = job.get("permissions", {}).get("id-token") == "write"
        assert id_token == (assumes_role(job) or attests_only(job)), job_name
        assert not (assumes_role(job) and attests_only(job)), job_name
        for step in steps(job):
            if "run" in step:
                assert "${{" not in step["run"], f"{job_name}: expression in run:"
                words = shlex.split(step["run"], comments=True)
                assert words[0] == "make" and len(words) == 2, f"{job_name}: {step['run']!r} is not one make target"
            if str(step.get("uses", "")).startswith("actions/checkout@"):
                assert step["with"]["persist-credentials"] is False, job_name
    uses_lines = [ln for ln in text.splitlines() if re.match(r"^\s*(-\s+)?uses:", ln) and "./.github/" not in ln]
    assert uses_lines and all(SHA_USES.match(ln) for ln in uses_lines), [
        ln for ln in uses_lines if not SHA_USES.match(ln)
    ]


def test_every_make_target_a_workflow_runs_exists() -> None:
    database = subprocess.run(
        ["make", "-pRrq", "-f", "Makefile", ":"], cwd=REPO, capture_output=True, text=True, check=False
    ).stdout
    defined = set(re.findall(r"^([A-Za-z0-9_.-]+):", database, re.MULTILINE))
    wanted = {
        shlex.split(s["run"], comments=True)[1]
        for doc in all_workflows().values()
        for j in doc["jobs"].values()
        for s in steps(j)
        if "run" in s
    }
    assert wanted - defined == set()


def test_deploy_workflow_is_one_ordered_path_gate_plan_apply_deploy() -> None:
    deploy = load(WORKFLOWS / "deploy.yml")
    assert deploy["on"] == {"push": {"branches": ["main"]}}
    assert deploy["concurrency"] == {"group": "production", "cancel-in-progress": False}
    jobs = deploy["jobs"]
    assert jobs["gate"]["uses"] == "./.github/workflows/ci.yml"
    assert jobs["plan"]["needs"] == ["gate"] and "environment" not in jobs["plan"]
    assert jobs["apply"]["needs"] == ["gate", "plan"] and jobs["apply"]["environment"] == "production-infra"
    assert jobs["apply"]["if"] == "${{ needs.plan.outputs.has_changes == 'true' }}"
    assert jobs["deploy"]["needs"] == ["gate", "plan", "apply"] and jobs["deploy"]["environment"] == "production"
    runs = {name: [s["run"] for s in steps(job) if "run" in s] for name, job in jobs.items() if "steps" in job}
    assert runs == {
        "plan": ["make verify-artifacts", "make terraform-providers", "make terraform-plan"],
        "apply": [
            "make verify-artifacts", "make terraform-verify-plan", "make terraform-providers", "make terraform-apply"
        ],
        "deploy": ["make verify-provenance", "make deploy-functions", "make smoke-test", "make rollback"],
    }  # fmt: skip
    rollback = next(s for s in steps(jobs["deploy"]) if s.get("run") == "make rollback")
    assert "failure()" in rollback["if"]
    roles = {}
    for name, job in jobs.items():
        creds = [s for s in steps(job) if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
        if creds:
            assert "aws-access-key-id" not in creds[0]["with"]
            roles[name] = creds[0]["with"]["role-to-assume"]
    assert roles == {
        "plan": "${{ vars.AWS_PLAN_ROLE_ARN }}",
        "apply": "${{ vars.AWS_APPLY_ROLE_ARN }}",
        "deploy": "${{ vars.AWS_DEPLOY_ROLE_ARN }}",
    }


def test_credentials_are_the_last_step_before_the_cloud_calls() -> None:
    """Build once, verify, then assume: nothing before the credentials step needs them; after it, no install."""
    installs = {"make install", "make package", "make checkov-install", "make terraform-providers"}
    for name, doc in all_workflows().items():
        for job_name, job in doc["jobs"].items():
            job_steps = steps(job)
            at = [i for i, s in enumerate(job_steps) if str(s.get("uses", "")).startswith(AWS_CREDENTIALS)]
            if not at:
                continue
            after = job_steps[at[0] + 1 :]
            assert not [s for s in after if s.get("run") in installs or "setup-" in str(s.get("uses", ""))], (
                f"{name} {job_name}: installs after credentials"
            )
            cloud = {"make terraform-plan", "make terraform-apply", "make deploy-functions", "make smoke-test"}
            assert not [s for s in job_steps[: at[0]] if s.get("run") in cloud], f"{name} {job_name}"


def test_the_gate_builds_the_zips_once_and_later_jobs_verify_them() -> None:
    ci = load(WORKFLOWS / "ci.yml")
    package = ci["jobs"]["package"]
    assert "id-token" not in package["permissions"]
    assert [s["run"] for s in steps(package) if "run" in s] == [
        "make package",
        "make sbom-check",
        "make verify-artifacts",
    ]
    upload = [s for s in steps(package) if "upload-artifact" in str(s.get("uses", ""))]
    assert upload[0]["with"]["name"] == "lambda-zips" and upload[0]["with"]["path"] == "dist/lambda/"
    verifying = {"make verify-artifacts", "make verify-provenance"}
    for job_name, job in load(WORKFLOWS / "deploy.yml")["jobs"].items():
        if job_name == "gate":
            continue
        job_steps = steps(job)
        download = [i for i, s in enumerate(job_steps) if "download-artifact" in str(s.get("uses", ""))]
        verify = [i for i, s in enumerate(job_steps) if s.get("run") in verifying]
        assert download and verify and download[0] < verify[0], job_name
        assert not [s for s in job_steps if s.get("run") == "make package"], f"{job_name} rebuilds the zips"


def test_the_gate_attests_exactly_the_bytes_it_built_with_a_token_no_role_trusts() -> None:
    """ci.yml's provenance job: after the package job, on main only, in environment provenance, the download of
    lambda-zips and the attestation of every file the deploy verifies, nothing else; deploy.yml's gate call grants
    what it needs (a called workflow gets no more than its caller job)."""
    ci = load(WORKFLOWS / "ci.yml")
    job = ci["jobs"]["provenance"]
    assert job["needs"] == ["package"] and job["if"] == "${{ github.ref == 'refs/heads/main' }}"
    assert job["environment"] == "provenance" and attests_only(job)
    assert job["permissions"] == {"id-token": "write", "attestations": "write"}
    download = next(s for s in steps(job) if str(s.get("uses", "")).startswith("actions/download-artifact@"))
    assert download["with"] == {"name": "lambda-zips", "path": "dist/lambda"}
    attest = next(s for s in steps(job) if str(s.get("uses", "")).startswith("actions/attest-build-provenance@"))
    assert sorted(attest["with"]["subject-path"].split()) == sorted(
        f"dist/lambda/{n}" for n in ("manifest.json", "ingest.zip", "api.zip", "ingest.cdx.json", "api.cdx.json")
    )
    assert [n for n, j in ci["jobs"].items() if (j.get("permissions") or {}).get("id-token")] == ["provenance"]
    gate = load(WORKFLOWS / "deploy.yml")["jobs"]["gate"]["permissions"]
    assert gate["id-token"] == "write" and gate["attestations"] == "write"


def test_the_deploy_job_verifies_provenance_before_it_holds_credentials() -> None:
    deploy = load(WORKFLOWS / "deploy.yml")["jobs"]["deploy"]
    names = [s.get("run") or str(s.get("uses", "")).split("@")[0] for s in steps(deploy)]
    assert names.index("make verify-provenance") < names.index(AWS_CREDENTIALS) < names.index("make deploy-functions")
    assert deploy["permissions"] == {"contents": "read", "id-token": "write", "attestations": "read"}
    for target in ("make verify-provenance", "make deploy-functions"):  # deploy-functions verifies again
        step = next(s for s in steps(deploy) if s.get("run") == target)
        assert step["env"] == {"GH_TOKEN": "${{ github.token }}"}, target


def test_emulator_proofs_run_in_github_ci() -> None:
    ci = load(WORKFLOWS / "ci.yml")
    emulate = ci["jobs"]["emulate"]
    assert [s["run"] for s in steps(emulate) if "run" in s] == ["make iac-emulate", "make iam-lint"]
    setup = [s for s in steps(emulate) if str(s.get("uses", "")).startswith("hashicorp/setup-terraform@")]
    assert setup and setup[0]["with"]["terraform_version"].startswith("1.11")


def test_terraform_workflow_plans_pull_requests_only() -> None:
    tf = load(WORKFLOWS / "terraform.yml")
    assert set(tf["on"]) == {"pull_request"} and tf["on"]["pull_request"]["paths"][0] == "iac/**"
    assert set(tf["jobs"]) == {"plan"}
    plan = tf["jobs"]["plan"]
    assert "environment" not in plan
    creds = [s for s in steps(plan) if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
    assert creds[0]["with"]["role-to-assume"] == "${{ vars.AWS_PLAN_ROLE_ARN }}"
    assert [s["run"] for s in steps(plan) if "run" in s] == [
        "make package",
        "make terraform-providers",
        "make terraform-plan",
    ]
    assert any("upload-artifact" in str(s.get("uses", "")) for s in steps(plan))


def test_dependabot_and_codeowners() -> None:
    dependabot = load(REPO / ".github" / "dependabot.yml")
    # pip is left to lock.yml (scripts/lock.sh re-resolves the uv-compiled locks coherently; dependabot cannot).
    assert {u["package-ecosystem"] for u in dependabot["updates"]} == {"github-actions", "terraform"}
    codeowners = (REPO / ".github" / "CODEOWNERS").read_text(encoding="utf-8")
    assert re.search(r"^/\.github/\s+@", codeowners, re.MULTILINE)


def test_zizmor_runs_online_in_github_ci_with_a_read_only_token() -> None:
    """ci.yml's workflows job: `make zizmor` with the job's token (contents: read) as GH_TOKEN; on GitHub the target
    runs the online audits (impostor commits, version comments, known-vulnerable actions) and never falls back."""
    job = load(WORKFLOWS / "ci.yml")["jobs"]["workflows"]
    assert job["permissions"] == {"contents": "read"}
    step = next(s for s in steps(job) if s.get("run", "").startswith("make zizmor"))
    assert step["env"] == {"GH_TOKEN": "${{ github.token }}"}
    assert "make scorecard-offline" in [s.get("run") for s in steps(job)]


def test_zizmor_on_github_without_a_token_fails_instead_of_going_offline() -> None:
    env = {k: v for k, v in os.environ.items() if k not in {"GH_TOKEN", "GITHUB_TOKEN", "ZIZMOR_GITHUB_TOKEN"}}
    online = subprocess.run(
        ["make", "--no-print-directory", "zizmor"], cwd=REPO, env={**env, "GITHUB_ACTIONS": "true"},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert online.returncode != 0 and "online audits need GH_TOKEN" in online.stdout
    offline = subprocess.run(
        ["make", "--no-print-directory", "zizmor"], cwd=REPO, env={**env, "GITHUB_ACTIONS": ""},
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert offline.returncode == 0 and "zizmor --offline" in offline.stdout
