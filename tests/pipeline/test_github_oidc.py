"""The token stand-in mints what GitHub documents, and the rehearsal's expression evaluator reads the
workflows' `if:` conditions as GitHub does."""

from __future__ import annotations

from dataclasses import replace

import pytest

from tests.pipeline.github_oidc import JobContext, NoToken, Repository, mint_claims
from tests.pipeline.rehearsal import evaluate_expression

REPO = Repository("octo-org", "octo-repo", owner_id=123456, repo_id=456789)
JOB = JobContext(REPO, "deploy.yml", "deploy", "push", "refs/heads/main", True, environment="production")


def test_default_subjects_by_context() -> None:
    assert mint_claims(JOB)["sub"] == "repo:octo-org/octo-repo:environment:production"
    assert mint_claims(replace(JOB, environment=None))["sub"] == "repo:octo-org/octo-repo:ref:refs/heads/main"
    pr = replace(JOB, event_name="pull_request", ref="refs/pull/3/merge", environment=None)
    assert mint_claims(pr)["sub"] == "repo:octo-org/octo-repo:pull_request"


def test_immutable_subject_form_and_the_other_claims() -> None:
    claims = mint_claims(replace(JOB, repository=replace(REPO, immutable_subjects=True)))
    assert claims["sub"] == "repo:octo-org@123456/octo-repo@456789:environment:production"
    assert claims["repository"] == "octo-org/octo-repo"
    assert (claims["repository_id"], claims["repository_owner_id"]) == ("456789", "123456")
    assert claims["aud"] == "sts.amazonaws.com" and claims["environment"] == "production"
    assert claims["job_workflow_ref"] == "octo-org/octo-repo/.github/workflows/deploy.yml@refs/heads/main"
    assert claims["event_name"] == "push" and claims["ref"] == "refs/heads/main"


@pytest.mark.parametrize(
    "job",
    [
        replace(JOB, id_token_write=False),
        replace(JOB, event_name="pull_request", ref="refs/pull/3/merge", environment=None, from_fork=True),
        replace(JOB, ref="refs/heads/feature"),  # production admits main only
        replace(JOB, event_name="pull_request", ref="refs/pull/3/merge"),
    ],
)
def test_no_token_where_github_mints_none(job: JobContext) -> None:
    with pytest.raises(NoToken):
        mint_claims(job)


def test_expressions_of_the_workflows() -> None:
    results = {"gate": "success", "plan": "success", "apply": "skipped"}

    def lookup(name: str) -> object:
        if name == "cancelled()":
            return False
        parts = name.split(".")
        if parts[0] == "needs" and parts[2] == "result":
            return results[parts[1]]
        if parts[0] == "needs":
            return "true"
        raise KeyError(name)

    deploy_if = (
        "!cancelled() && needs.gate.result == 'success' && needs.plan.result == 'success' && "
        "(needs.apply.result == 'success' || needs.apply.result == 'skipped')"
    )
    assert evaluate_expression(deploy_if, lookup) is True
    results["apply"] = "failure"
    assert evaluate_expression(deploy_if, lookup) is False
    assert evaluate_expression("needs.plan.outputs.has_changes == 'true'", lookup) is True
    with pytest.raises(ValueError):
        evaluate_expression("needs.plan.result == `x`", lookup)
