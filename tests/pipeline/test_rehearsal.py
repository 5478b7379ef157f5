"""What `make pipeline-rehearsal` must show (the session fixture in tests/pipeline/conftest.py ran the
workflows): the pull request's plan, the apply of main's sealed plan and the refusal of a stale one, a deploy
that published versions and moved the alias, and the trust matrix as intended — and that widening any role's
trust as applied would break it."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.pipeline.rehearsal import progress
from tests.pipeline.trust_matrix import INTENDED, render, trust_matrix, violations

pytestmark = pytest.mark.rehearsal
SUB = "token.actions.githubusercontent.com:sub"


def outcomes(run: Any) -> dict[str, str]:
    return {name: job.result for name, job in run.jobs.items()}


def test_the_pull_request_gate_and_plan_ran_and_the_plan_is_sealed(rehearsal: dict[str, Any]) -> None:
    runs = rehearsal["runs"]
    gate = outcomes(runs["pr_gate"])
    assert gate.pop("provenance") == "skipped"  # a pull request's build is never attested
    assert set(gate.values()) == {"success"}, gate
    assert outcomes(runs["pr_plan"]) == {"plan": "success"}
    plan_dir = runs["pr_plan"].artifacts / "terraform-plan"
    manifest = json.loads((plan_dir / "prod.tfplan.manifest.json").read_text())
    assert manifest["commit"] == rehearsal["merge"] and manifest["has_changes"] is True
    summary = (plan_dir / "prod.plan.md").read_text()
    assert "aws_wafv2_web_acl" in summary and "public access" in summary
    assert runs["pr_plan"].jobs["plan"].roles == ["plan"]


def test_main_ran_gate_plan_apply_deploy_in_that_order(rehearsal: dict[str, Any]) -> None:
    push = rehearsal["runs"]["push"]
    results = outcomes(push)
    assert {k: v for k, v in results.items() if "/" not in k} == {
        "gate": "success",
        "plan": "success",
        "apply": "success",
        "deploy": "success",
    }
    assert [k for k in results if "/" not in k] == ["gate", "plan", "apply", "deploy"]
    assert results["gate/package"] == "success" and results["gate/provenance"] == "success"
    assert [push.jobs[j].roles for j in ("plan", "apply", "deploy")] == [["plan"], ["apply"], ["deploy"]]
    assert push.jobs["gate/provenance"].roles == []  # its token went to the attestation, to no role


def test_every_job_ran_with_a_blocking_allow_list(rehearsal: dict[str, Any]) -> None:
    runs = rehearsal["runs"]
    ran = [job for run in runs.values() for job in run.jobs.values() if job.workspace is not None]
    assert ran and all(job.allowed_endpoints for job in ran), [j.name for j in ran if not j.allowed_endpoints]
    deploy = runs["push"].jobs["deploy"].allowed_endpoints
    region = rehearsal["rehearsal"].vars["AWS_REGION"]
    assert f"{rehearsal['outputs']['artifact_bucket_name']}.s3.{region}.amazonaws.com:443" in deploy


def test_the_gate_attested_main_and_the_deploy_verified_it(rehearsal: dict[str, Any]) -> None:
    push = rehearsal["runs"]["push"]
    statements = [json.loads(line) for line in rehearsal["attestations"].read_text().splitlines()]
    assert sorted(s["subject"]["name"] for s in statements) == sorted(push.jobs["gate/provenance"].attested)
    assert {s["subject"]["name"] for s in statements} == {
        "manifest.json", "ingest.zip", "api.zip", "ingest.cdx.json", "api.cdx.json"
    }  # fmt: skip
    certificate = statements[0]["certificate"]
    assert (
        certificate["BuildSignerURI"]
        == "https://github.com/rampart-project/rampart/.github/workflows/ci.yml@refs/heads/main"
    )
    assert certificate["SourceRepositoryDigest"] == rehearsal["merge"] == certificate["BuildSignerDigest"]
    log = "\n".join(p.read_text() for p in sorted(push.jobs["deploy"].workspace.parent.glob("step-*.log")))
    assert log.count("Verification succeeded!") == 10  # five files, before credentials and again before signing
    assert "provenance of rampart-project/rampart .github/workflows/ci.yml@refs/heads/main" in log


def test_the_apply_applied_the_sealed_plan_of_main(rehearsal: dict[str, Any]) -> None:
    r = rehearsal["rehearsal"]
    push = rehearsal["runs"]["push"]
    manifest = json.loads((push.artifacts / "terraform-plan" / "prod.tfplan.manifest.json").read_text())
    assert manifest["commit"] == rehearsal["merge"]
    apply_log = "\n".join(p.read_text() for p in sorted(push.jobs["apply"].workspace.parent.glob("step-*.log")))
    assert "Apply complete!" in apply_log
    assert "verified" in apply_log and "state unchanged since the plan" in apply_log
    waf = r.client("wafv2")
    acl = waf.get_web_acl(
        Name="rampart-prod", Scope="REGIONAL", Id=rehearsal["outputs"]["web_acl_arn"].rsplit("/", 1)[-1]
    )
    rate = [rule for rule in acl["WebACL"]["Rules"] if "RateBasedStatement" in rule["Statement"]]
    assert rate[0]["Statement"]["RateBasedStatement"]["Limit"] == 1500


def test_a_stale_plan_is_refused(rehearsal: dict[str, Any]) -> None:
    stale = rehearsal["stale_apply"]
    assert stale.result == "failure"
    log = "\n".join(p.read_text() for p in sorted(stale.workspace.parent.glob("step-*.log")))
    assert "stale plan" in log and "Apply complete!" not in log


def test_deploy_published_versions_and_moved_the_alias(rehearsal: dict[str, Any]) -> None:
    lam = rehearsal["rehearsal"].client("lambda")
    for function, before in rehearsal["alias_before"].items():
        alias = lam.get_alias(FunctionName=function, Name="live")
        assert alias["FunctionVersion"] != before, function
        version = lam.get_function_configuration(FunctionName=function, Qualifier=alias["FunctionVersion"])
        assert version["Description"] == rehearsal["merge"], "the published version names the commit"


def test_the_trust_matrix_is_the_intended_one(rehearsal: dict[str, Any]) -> None:
    rows = rehearsal["matrix"]
    progress("trust matrix (roles as applied into the emulator):\n" + render(rows))
    assert violations(rows) == []
    assert {row.key for row in rows if row.roles} == set(INTENDED)


WIDENINGS = {
    "plan trusts repo:<R>:*": ("plan", "StringLike", ["repo:rampart-project/rampart:*"]),
    "deploy trusts the apply environment too": (
        "deploy",
        "StringEquals",
        [
            "repo:rampart-project/rampart:environment:production",
            "repo:rampart-project/rampart:environment:production-infra",
        ],
    ),
    "apply trusts every environment": ("apply", "StringLike", ["repo:rampart-project/rampart:environment:*"]),
    "deploy trusts any repository": ("deploy", "StringLike", ["repo:*:environment:production"]),
    "plan trusts the attestation's environment too": (
        "plan",
        "StringEquals",
        [
            "repo:rampart-project/rampart:pull_request",
            "repo:rampart-project/rampart:ref:refs/heads/main",
            "repo:rampart-project/rampart:environment:provenance",
        ],
    ),
}


@pytest.mark.parametrize("widening", sorted(WIDENINGS))
def test_a_widened_trust_policy_breaks_the_matrix(rehearsal: dict[str, Any], widening: str) -> None:
    purpose, operator, subjects = WIDENINGS[widening]
    r = rehearsal["rehearsal"]
    iam = r.client("iam")
    role_name = r.role_arns[purpose].rsplit("/", 1)[-1]
    original = rehearsal["trusts"][purpose]
    widened = json.loads(json.dumps(original))
    condition = widened["Statement"][0]["Condition"]
    for values in condition.values():
        values.pop(SUB, None)
    condition = {k: v for k, v in condition.items() if v}
    condition.setdefault(operator, {})[SUB] = subjects
    widened["Statement"][0]["Condition"] = condition
    iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(widened))
    try:
        trusts = {p: r.trust_policy(arn) for p, arn in r.role_arns.items()}
        assert violations(trust_matrix(trusts, r.provider_arn)) != []
    finally:
        iam.update_assume_role_policy(RoleName=role_name, PolicyDocument=json.dumps(original))
