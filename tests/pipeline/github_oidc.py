"""What GitHub would mint for a job's OIDC token, and who may assume which role with it (the trust matrix).

GitHub's rules modelled here (docs: "OpenID Connect reference"; GitHub changelog 2026-04-23):
- a job gets a token only with `permissions: id-token: write`, and never in a pull request from a fork;
- the default `sub` is `repo:<R>:<context>` where <context> is `environment:<name>` for a job in an
  environment, `pull_request` for a pull_request event, else `ref:<ref>`; <R> is `owner/name`, or
  `owner@<owner_id>/name@<repo_id>` for a repository with immutable subject claims;
- a job may enter an environment only from a branch its deployment-branch rule allows (Rampart's environments:
  `main` only, docs/terraform.md step 5): otherwise GitHub does not run the job, so it gets no token.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from tests.pipeline.iam_eval import ALLOW, Request, evaluate

ISSUER = "token.actions.githubusercontent.com"
AUDIENCE = "sts.amazonaws.com"
# .github/environments/*.json: every environment admits main only.
ENVIRONMENT_BRANCHES = {
    "production": {"refs/heads/main"},
    "production-infra": {"refs/heads/main"},
    "provenance": {"refs/heads/main"},
}


@dataclass(frozen=True)
class Repository:
    owner: str
    name: str
    owner_id: int
    repo_id: int
    immutable_subjects: bool = False

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"

    @property
    def subject_name(self) -> str:
        if self.immutable_subjects:
            return f"{self.owner}@{self.owner_id}/{self.name}@{self.repo_id}"
        return self.full_name


@dataclass(frozen=True)
class JobContext:
    """One job of one workflow run, as GitHub sees it when the job asks for a token."""

    repository: Repository
    workflow: str  # file name, e.g. deploy.yml
    job: str
    event_name: str
    ref: str
    id_token_write: bool
    environment: str | None = None
    from_fork: bool = False
    run_id: int = 1
    sha: str = "0" * 40
    extra: dict[str, str] = field(default_factory=dict)


class NoToken(Exception):
    """GitHub would not mint a token for this job (or would not run it at all)."""


def mint_claims(job: JobContext) -> dict[str, Any]:
    if not job.id_token_write:
        raise NoToken("the job has no `id-token: write` permission")
    if job.event_name == "pull_request" and job.from_fork:
        raise NoToken("pull requests from forks get no OIDC token")
    if job.environment is not None:
        allowed = ENVIRONMENT_BRANCHES.get(job.environment)
        if allowed is not None and job.ref not in allowed:
            raise NoToken(f"environment {job.environment} admits deployments from {sorted(allowed)} only")
        context = f"environment:{job.environment}"
    elif job.event_name == "pull_request":
        context = "pull_request"
    else:
        context = f"ref:{job.ref}"
    repo = job.repository
    claims: dict[str, Any] = {
        "iss": f"https://{ISSUER}",
        "aud": AUDIENCE,
        "sub": f"repo:{repo.subject_name}:{context}",
        "repository": repo.full_name,
        "repository_owner": repo.owner,
        "repository_id": str(repo.repo_id),
        "repository_owner_id": str(repo.owner_id),
        "event_name": job.event_name,
        "ref": job.ref,
        "sha": job.sha,
        "run_id": str(job.run_id),
        "workflow": job.workflow,
        "job_workflow_ref": f"{repo.full_name}/.github/workflows/{job.workflow}@{job.ref}",
        "job_workflow_sha": job.sha,  # a workflow of this repository runs at the run's commit
        "runner_environment": "github-hosted",
        **job.extra,
    }
    if job.environment is not None:
        claims["environment"] = job.environment
    return claims


def unsigned_jwt(claims: dict[str, Any]) -> str:
    """A token-shaped string for the emulator's STS (moto does not verify signatures; the trust check is ours)."""

    def part(value: dict[str, Any]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def may_assume(trust_policy: dict[str, Any], provider_arn: str, claims: dict[str, Any]) -> bool:
    """IAM's decision for AssumeRoleWithWebIdentity with a GitHub token: the trust policy's conditions see the
    token's `aud` and `sub` as <issuer>:aud and <issuer>:sub (the only GitHub claims AWS exposes)."""
    request = Request(
        "sts:AssumeRoleWithWebIdentity",
        principal={"Federated": provider_arn},
        context={f"{ISSUER}:aud": claims["aud"], f"{ISSUER}:sub": claims["sub"]},
    )
    return evaluate([trust_policy], request) == ALLOW


def assumable(job: JobContext, trusts: dict[str, dict[str, Any]], provider_arn: str) -> tuple[list[str], str]:
    """The roles (by purpose) this job could assume, and why (the subject, or why no token)."""
    try:
        claims = mint_claims(job)
    except NoToken as why:
        return [], f"no token: {why}"
    roles = sorted(role for role, trust in trusts.items() if may_assume(trust, provider_arn, claims))
    return roles, claims["sub"]
