"""The trust matrix: for each (workflow, job, event, environment) — the project's own jobs, read from
.github/workflows, plus a fork's pull request, a fork's own run, another repository, a pull request edited to
claim an environment, a feature-branch push and the immutable subject form — the roles it can assume, with
the trust policies as applied into the emulator. INTENDED is the design; `violations` compares."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml

from tests.pipeline.github_oidc import JobContext, Repository, assumable

REPO = Path(__file__).resolve().parents[2]
THIS = Repository("rampart-project", "rampart", owner_id=98765432, repo_id=123456789)
FORK = Repository("mallory", "rampart", owner_id=666, repo_id=667)
OTHER = Repository("other-org", "other-repo", owner_id=555, repo_id=556)
# Each workflow's jobs run on these (event, ref) pairs (their `on:`); deploy.yml's on main only.
EVENTS = {
    # ci.yml also runs on main, called by deploy.yml (its provenance job holds a token there, in `provenance`)
    "ci.yml": [("pull_request", "refs/pull/1/merge"), ("push", "refs/heads/feature"), ("push", "refs/heads/main")],
    "terraform.yml": [("pull_request", "refs/pull/1/merge")],
    "deploy.yml": [("push", "refs/heads/main")],
}
INTENDED = {
    ("terraform.yml", "plan", "pull_request", None): ["plan"],
    ("deploy.yml", "plan", "push", None): ["plan"],
    ("deploy.yml", "apply", "push", "production-infra"): ["apply"],
    ("deploy.yml", "deploy", "push", "production"): ["deploy"],
}  # every other row: no role


@dataclass(frozen=True)
class Row:
    label: str
    key: tuple[str, str, str, str | None]
    roles: list[str]
    why: str


def _load(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((REPO / ".github" / "workflows" / name).read_text())
    return doc


def contexts() -> list[tuple[str, JobContext]]:
    found: list[tuple[str, JobContext]] = []
    for workflow, events in EVENTS.items():
        for job_id, job in _load(workflow)["jobs"].items():
            if "steps" not in job:
                continue  # a reusable-workflow call: its jobs are listed under their own file
            write = (job.get("permissions") or {}).get("id-token") == "write"
            for event, ref in events:
                found.append(
                    (
                        "",
                        JobContext(THIS, workflow, job_id, event, ref, write, environment=job.get("environment")),
                    )
                )
    plan = JobContext(THIS, "terraform.yml", "plan", "pull_request", "refs/pull/7/merge", True)
    deploy = JobContext(THIS, "deploy.yml", "deploy", "push", "refs/heads/main", True, environment="production")
    apply = replace(deploy, job="apply", environment="production-infra")
    found += [
        ("a fork's pull request (runs here, GitHub mints no token)", replace(plan, from_fork=True)),
        ("a pull request edited to run in environment production", replace(plan, environment="production")),
        ("a pull request edited to run in environment production-infra", replace(plan, environment="production-infra")),
        (
            "a push to a feature branch asking for a token",
            replace(deploy, job="any", ref="refs/heads/feature", environment=None),
        ),
        ("a fork's own deploy.yml (mallory/rampart)", replace(deploy, repository=FORK)),
        ("a fork's own apply job (mallory/rampart)", replace(apply, repository=FORK)),
        ("a fork's own pull request plan (mallory/rampart)", replace(plan, repository=FORK)),
        ("another repository's deploy job (other-org/other-repo)", replace(deploy, repository=OTHER)),
        (
            "this repository after opting in to immutable subjects, unconfigured",
            replace(deploy, repository=replace(THIS, immutable_subjects=True)),
        ),
    ]
    return found


def trust_matrix(trusts: dict[str, dict[str, Any]], provider_arn: str) -> list[Row]:
    rows = []
    for note, job in contexts():
        roles, why = assumable(job, trusts, provider_arn)
        label = f"{job.workflow}/{job.job} on {job.event_name} {job.ref}" + (
            f" in {job.environment}" if job.environment else ""
        )
        if note:
            label = note
            key = ("synthetic", note, job.event_name, job.environment)
        else:
            key = (job.workflow, job.job, job.event_name, job.environment)
        rows.append(Row(label, key, roles, why))
    return rows


def violations(rows: list[Row]) -> list[str]:
    problems = []
    for row in rows:
        intended = INTENDED.get(row.key, [])
        if row.roles != intended:
            problems.append(f"{row.label}: can assume {row.roles or 'nothing'}, intended {intended or 'nothing'}")
    missing = set(INTENDED) - {row.key for row in rows}
    problems += [f"no row for {key}" for key in sorted(missing, key=str)]
    return problems


def render(rows: list[Row]) -> str:
    width = max(len(r.label) for r in rows)
    lines = [f"{'who (workflow/job, event, ref, environment)':<{width}}  roles    why", "-" * (width + 60)]
    for row in rows:
        lines.append(f"{row.label:<{width}}  {','.join(row.roles) or '-':<7}  {row.why}")
    return "\n".join(lines)
