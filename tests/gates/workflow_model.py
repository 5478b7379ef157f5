"""A small model of .github/workflows: load, and decide which jobs deploy and which gate jobs they wait for."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[2]
WORKFLOWS = REPO / ".github" / "workflows"
GATE_WORKFLOW = "./.github/workflows/ci.yml"
AWS_CREDENTIALS = "aws-actions/configure-aws-credentials"
ATTEST = "actions/attest-build-provenance"
ATTEST_JOB_ACTIONS = {"step-security/harden-runner", "actions/download-artifact", ATTEST}
# Environments that hold no deploy credential: lock.yml's holds only a GitHub App key that opens a pull request;
# provenance (ci.yml's provenance job) holds nothing: it only gives the attesting job's token a subject of its own.
NON_DEPLOY_ENVIRONMENTS = {"dependency-updates", "provenance"}


def load(path: Path) -> dict[str, Any]:
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    if True in doc:  # YAML 1.1 reads the key `on` as the boolean true
        doc["on"] = doc.pop(True)
    return doc


def all_workflows() -> dict[str, dict[str, Any]]:
    return {p.name: load(p) for p in sorted(WORKFLOWS.glob("*.yml"))}


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job.get("steps") or [])


def assumes_role(job: dict[str, Any]) -> bool:
    return any(str(s.get("uses", "")).split("@")[0] == AWS_CREDENTIALS for s in steps(job))


def attests_only(job: dict[str, Any]) -> bool:
    """A job whose OIDC token can reach Sigstore only (as CKV_RAMPART_16 (b) decides): it attests with
    actions/attest-build-provenance, holds `attestations: write`, runs in an environment and runs no `run:` step
    and no action but the attestation, the runner hardening and the artifact download."""
    actions = [str(s.get("uses", "")).split("@")[0] for s in steps(job)]
    return (
        (job.get("permissions") or {}).get("attestations") == "write"
        and bool(job.get("environment"))
        and ATTEST in actions
        and all("uses" in s and "run" not in s for s in steps(job))
        and set(actions) <= ATTEST_JOB_ACTIONS
    )


def is_deploy_job(job: dict[str, Any]) -> bool:
    """A job that changes production: it runs in an environment, or assumes a role that is not the plan role."""
    environment = job.get("environment")
    name = environment.get("name") if isinstance(environment, dict) else environment
    if name and name not in NON_DEPLOY_ENVIRONMENTS:
        return True
    roles = [str((s.get("with") or {}).get("role-to-assume", "")) for s in steps(job) if assumes_role(job)]
    return any(r and "PLAN" not in r.upper() for r in roles)


def needs(job: dict[str, Any]) -> list[str]:
    value = job.get("needs") or []
    return [value] if isinstance(value, str) else list(value)


def ancestors(jobs: dict[str, Any], name: str) -> set[str]:
    seen: set[str] = set()
    todo = list(needs(jobs[name]))
    while todo:
        current = todo.pop()
        if current not in seen:
            seen.add(current)
            todo += needs(jobs[current])
    return seen


RUNS_DESPITE_FAILURE = ("always()", "failure()", "cancelled()", "!cancelled()")


def requires_every_need_to_succeed(condition: str, job: dict[str, Any], jobs: dict[str, Any]) -> bool:
    """`!cancelled() && needs.x.result == 'success' && ...`: a status function that still demands every needed
    job succeeded (or, for a job with its own `if:`, was skipped by it). The only safe way past a skipped job."""
    text = condition.replace(" ", "").replace('"', "'")
    if "always()" in text or "failure()" in text.replace("!cancelled()", "") or "result!=" in text:
        return False
    accepted = re.findall(r"needs\.[A-Za-z0-9_-]+\.result=='([a-z]+)'", text)
    if set(accepted) - {"success", "skipped"}:
        return False
    for need in needs(job):
        success = f"needs.{need}.result=='success'"
        if success not in text:
            return False
        skipped = f"needs.{need}.result=='skipped'"
        if skipped in text and "if" not in jobs[need]:
            return False  # only a job that skips itself by design may be skipped
    return True


def deploy_violations(workflow: dict[str, Any], gate: dict[str, Any]) -> list[str]:
    """Why a deploy job of `workflow` could run without every gate job of `gate` (ci.yml) succeeding."""
    problems = []
    jobs = workflow.get("jobs") or {}
    gate_jobs = [n for n, j in jobs.items() if j.get("uses") == GATE_WORKFLOW]
    for name, job in jobs.items():
        if not is_deploy_job(job):
            continue
        upstream = ancestors(jobs, name)
        if not any(g in upstream for g in gate_jobs):
            problems.append(f"{name}: does not need a job that calls {GATE_WORKFLOW}")
        for job_name in [name, *upstream]:
            condition = str(jobs[job_name].get("if", ""))
            if any(marker in condition.replace(" ", "") for marker in RUNS_DESPITE_FAILURE) and not (
                requires_every_need_to_succeed(condition, jobs[job_name], jobs)
            ):
                problems.append(f"{job_name}: `if: {condition}` runs even when a needed job failed")
            if jobs[job_name].get("continue-on-error"):
                problems.append(f"{job_name}: continue-on-error")
    if not gate_jobs:
        return problems
    # Inside the gate: a skipped or error-tolerant gate job would still let the caller job succeed.
    for gate_name, gate_job in (gate.get("jobs") or {}).items():
        # An attesting job checks nothing: skipped, it leaves bytes unattested, and the deploy job refuses those.
        if "if" in gate_job and not attests_only(gate_job):
            problems.append(f"ci.yml {gate_name}: has `if:`; a skipped gate job counts as success")
        if gate_job.get("continue-on-error"):
            problems.append(f"ci.yml {gate_name}: continue-on-error")
        for step in steps(gate_job):
            if step.get("continue-on-error"):
                problems.append(f"ci.yml {gate_name}: a step has continue-on-error")
    return problems
