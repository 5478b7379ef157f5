"""Each Rampart policy passes its compliant fixture and fails its non-compliant one (exact ID and resource),
and the project's own iac/ and .github/ pass them all. Three checkov runs in total (5-9 s each)."""

from __future__ import annotations

import pytest

from tests.policies.checkov_runner import (
    ALL_IDS,
    FIXTURES,
    REPO,
    TERRAFORM_IDS,
    WORKFLOW_IDS,
    Result,
    ensure_checkov,
    run_checkov,
)

# The complete list of failures the non-compliant fixtures must produce, no more, no less.
EXPECTED_FAILURES = {
    ("CKV_RAMPART_1", "main.tf", "aws_api_gateway_method.bad_no_key"),
    ("CKV2_RAMPART_2", "main.tf", "aws_api_gateway_stage.bad_no_waf"),
    ("CKV2_RAMPART_2", "main.tf", "aws_api_gateway_stage.bad_waf_without_rate_rule"),
    ("CKV_RAMPART_4", "main.tf", "aws_db_instance.bad_no_iam_auth"),
    ("CKV_RAMPART_5", "main.tf", "aws_db_instance.bad_public"),
    ("CKV2_RAMPART_6", "main.tf", "aws_db_instance.bad_no_subnet_group"),
    ("CKV2_RAMPART_7", "main.tf", "aws_subnet.bad_public"),
    ("CKV_RAMPART_8", "main.tf", "aws_sqs_queue.bad_aws_managed_key"),
    ("CKV2_RAMPART_9", "main.tf", "aws_sqs_queue.bad_aws_managed_key"),
    ("CKV2_RAMPART_9", "main.tf", "aws_sns_topic.bad_unrotated_key"),
    ("CKV2_RAMPART_9", "main.tf", "aws_sqs_queue.bad_no_redrive"),  # a literal key ARN: no CMK of this config
    ("CKV2_RAMPART_10", "main.tf", "aws_sqs_queue.bad_no_redrive"),
    ("CKV2_RAMPART_10", "main.tf", "aws_sqs_queue.bad_orphan_dlq"),
    ("CKV2_RAMPART_10", "main.tf", "aws_sqs_queue.bad_source_without_redrive"),
    ("CKV2_RAMPART_10", "main.tf", "aws_sqs_queue.bad_dlq_of_a_source_without_redrive"),
    ("CKV_RAMPART_11", "main.tf", "aws_iam_policy.bad_star_action"),
    ("CKV_RAMPART_11", "main.tf", "aws_iam_policy_document.bad_star_action_doc"),
    # "*" also grants rds-db:connect on "*" and sts:AssumeRoleWithWebIdentity without conditions:
    ("CKV_RAMPART_12", "main.tf", "aws_iam_policy.bad_star_action"),
    ("CKV_RAMPART_12", "main.tf", "aws_iam_policy_document.bad_star_action_doc"),
    ("CKV_RAMPART_13", "main.tf", "aws_iam_policy_document.bad_star_action_doc"),
    ("CKV_RAMPART_12", "main.tf", "aws_iam_role_policy.bad_rds_any_user"),
    ("CKV_RAMPART_12", "main.tf", "aws_iam_policy_document.bad_rds_any_db_doc"),
    ("CKV_RAMPART_13", "main.tf", "aws_iam_role.bad_oidc_no_aud"),
    ("CKV_RAMPART_13", "main.tf", "aws_iam_policy_document.bad_oidc_org_wide_sub_doc"),
    ("CKV_RAMPART_13", "main.tf", "aws_iam_policy_document.bad_oidc_any_ref_doc"),  # repo:o/r:* with aud pinned
    ("CKV_RAMPART_17", "main.tf", "aws_iam_role.bad_pr_role_reads_secrets"),
    ("CKV_RAMPART_17", "main.tf", "aws_iam_role.bad_pr_role_read_only_access"),
    ("CKV_RAMPART_18", "main.tf", "aws_iam_role.bad_shared_subject_deploy"),
    ("CKV_RAMPART_18", "main.tf", "aws_iam_role.bad_shared_subject_apply"),
    ("CKV_RAMPART_14", "bad_tag_pin.yml", "jobs(bad_tag_pin)"),
    ("CKV_RAMPART_15", "bad_tag_pin.yml", "permissions"),  # no top-level permissions at all
    ("CKV_RAMPART_15", "bad_permissions.yml", "permissions"),  # contents: write at the top level
    ("CKV_RAMPART_16", "bad_permissions.yml", "jobs(bad_id_token)"),
    ("CKV_RAMPART_16", "bad_attest.yml", "jobs(bad_attest_runs_code)"),  # project code next to the token
    ("CKV_RAMPART_16", "bad_attest.yml", "jobs(bad_attest_without_environment)"),  # the branch's subject
    ("CKV_RAMPART_16", "bad_attest.yml", "jobs(bad_other_signer)"),  # not actions/attest-build-provenance
    ("CKV_RAMPART_16", "bad_attest.yml", "jobs(bad_remote_reusable)"),  # a callee out of sight
    ("CKV_RAMPART_19", "bad_install_after_credentials.yml", "jobs(bad_install_after_credentials)"),
}


@pytest.fixture(scope="module")
def compliant() -> list[Result]:
    ensure_checkov()
    return run_checkov(FIXTURES / "terraform" / "compliant", FIXTURES / "github" / "compliant")


@pytest.fixture(scope="module")
def noncompliant() -> list[Result]:
    ensure_checkov()
    return run_checkov(FIXTURES / "terraform" / "noncompliant", FIXTURES / "github" / "noncompliant")


@pytest.fixture(scope="module")
def project() -> list[Result]:
    ensure_checkov()
    return run_checkov(REPO / "iac", REPO / ".github")


def test_compliant_fixtures_pass_every_policy(compliant: list[Result]) -> None:
    failed = {(r.check_id, r.file, r.resource) for r in compliant if not r.passed}
    assert failed == set()
    assert {r.check_id for r in compliant if r.passed} == ALL_IDS


@pytest.mark.parametrize("check_id", sorted(ALL_IDS))
def test_each_policy_fails_its_noncompliant_fixture(noncompliant: list[Result], check_id: str) -> None:
    failed = {(r.check_id, r.file, r.resource) for r in noncompliant if not r.passed and r.check_id == check_id}
    expected = {f for f in EXPECTED_FAILURES if f[0] == check_id}
    assert expected, f"{check_id} has no non-compliant fixture"
    assert failed == expected


def test_noncompliant_fixtures_fail_exactly_as_expected(noncompliant: list[Result]) -> None:
    failed = {(r.check_id, r.file, r.resource) for r in noncompliant if not r.passed}
    assert failed == EXPECTED_FAILURES


def test_every_policy_carries_a_severity(compliant: list[Result]) -> None:
    severities = {r.check_id: r.severity for r in compliant}
    assert all(severities[i] in {"LOW", "MEDIUM", "HIGH", "CRITICAL"} for i in ALL_IDS), severities


def test_policies_readme_documents_every_policy() -> None:
    readme = (REPO / "policies" / "README.md").read_text(encoding="utf-8")
    missing = [i for i in sorted(ALL_IDS) if f"`{i}`" not in readme]
    assert missing == []


def test_project_iac_and_workflows_pass_every_policy(project: list[Result]) -> None:
    failed = sorted((r.check_id, r.file, r.resource) for r in project if not r.passed)
    assert failed == []
    ran = {r.check_id for r in project}
    assert ran >= WORKFLOW_IDS
    # The stack has a REST API, RDS, SQS/SNS, IAM policies and OIDC trust: every Terraform policy applies.
    assert ran >= TERRAFORM_IDS, sorted(TERRAFORM_IDS - ran)
    # checkov skips, silently, a workflow its bundled schema rejects (one granting `attestations`, before
    # policies/checkov/github_actions.py taught it the scope): every workflow must have been looked at.
    workflows = {r.file for r in project if r.check_id == "CKV_RAMPART_15"}
    assert workflows == {p.name for p in (REPO / ".github" / "workflows").glob("*.yml")}
