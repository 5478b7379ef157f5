"""docs/terraform.md's bootstrap agrees with terraform.yml, deploy.yml and the tfvars, and its policies are
what it claims: an exact OIDC trust, IAM changes only on the stack's roles and only with the boundary."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "terraform.md"
ENVS = REPO / "iac" / "envs"
WORKFLOWS = REPO / ".github" / "workflows"
POLICY_BLOCK = re.compile(r"<!-- policy: ([a-z-]+) \(([^)]+)\) -->\n```json\n(.*?)```", re.DOTALL)
MANAGED_POLICY_LIMIT = 6144  # characters, whitespace not counted


def policies() -> dict[str, tuple[str, dict[str, Any]]]:
    return {kind: (name, json.loads(body)) for kind, name, body in POLICY_BLOCK.findall(DOC.read_text())}


def tfvar(env: str, name: str) -> str:
    match = re.search(rf'^{name}\s*=\s*("[^"]*"|\S+)', (ENVS / f"{env}.tfvars").read_text(), re.MULTILINE)
    assert match, f"{name} missing from {env}.tfvars"
    return match.group(1).strip('"')


def workflow(name: str) -> dict[str, Any]:
    doc: dict[str, Any] = yaml.safe_load((WORKFLOWS / name).read_text())
    doc["on"] = doc.pop(True, doc.get("on"))
    return doc


def statements(policy: dict[str, Any]) -> list[dict[str, Any]]:
    result = []
    for original in policy["Statement"]:
        statement = dict(original)
        for key in ("Action", "Resource"):
            if isinstance(statement.get(key), str):
                statement[key] = [statement[key]]
        result.append(statement)
    return result


PROD_NAME = f"rampart-{tfvar('prod', 'environment')}"


def test_the_doc_has_the_three_policies() -> None:
    assert set(policies()) == {"permissions-boundary", "apply-trust", "apply-permissions"}


def test_apply_trust_is_exactly_the_production_environment_of_this_repository() -> None:
    _, trust = policies()["apply-trust"]
    (statement,) = statements(trust)
    assert statement["Effect"] == "Allow" and statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["Principal"] == {
        "Federated": "arn:aws:iam::<ACCOUNT_ID>:oidc-provider/token.actions.githubusercontent.com"
    }
    assert statement["Condition"] == {
        "StringEquals": {
            "token.actions.githubusercontent.com:aud": "sts.amazonaws.com",
            "token.actions.githubusercontent.com:sub": "repo:<GITHUB_REPOSITORY>:environment:production-infra",
        }
    }
    assert "*" not in json.dumps(trust)


def test_workflows_and_tfvars_agree_with_the_trust() -> None:
    deploy = workflow("deploy.yml")
    apply = deploy["jobs"]["apply"]
    subject_environment = policies()["apply-trust"][1]["Statement"][0]["Condition"]["StringEquals"][
        "token.actions.githubusercontent.com:sub"
    ].rsplit(":", 1)[1]
    assert apply["environment"] == subject_environment == tfvar("prod", "github_apply_environment")
    creds = [s for s in apply["steps"] if str(s.get("uses", "")).startswith("aws-actions/configure-aws-credentials@")]
    assert creds[0]["with"]["role-to-assume"] == "${{ vars.AWS_APPLY_ROLE_ARN }}"
    # The deploy role of the stack trusts the environment the deploy job runs in, and only that one.
    assert tfvar("prod", "github_environment") == deploy["jobs"]["deploy"]["environment"] == "production"
    assert tfvar("prod", "github_environment") != tfvar("prod", "github_apply_environment")
    assert deploy["env"]["TF_ENV"] == workflow("terraform.yml")["env"]["TF_ENV"] == "prod"


def test_every_variable_the_workflows_read_is_documented() -> None:
    text = DOC.read_text()
    used = set()
    for name in ("terraform.yml", "deploy.yml"):
        used |= set(re.findall(r"\$\{\{\s*vars\.([A-Z0-9_]+)\s*\}\}", (WORKFLOWS / name).read_text()))
    assert {"AWS_APPLY_ROLE_ARN", "AWS_PLAN_ROLE_ARN", "TF_STATE_BUCKET", "RAMPART_API_KEY_SECRET_ID"} <= used
    for variable in used:
        assert f"`{variable}`" in text, f"docs/terraform.md does not say how to set {variable}"
    assert "`RAMPART_API_KEY_SECRET_ID` | `<name>/api-keys/smoke-test`" in text


def test_bootstrap_owned_pieces_are_not_created_by_prod() -> None:
    assert tfvar("prod", "create_github_oidc_provider") == "false"
    boundary_name, _ = policies()["permissions-boundary"]
    assert tfvar("prod", "iam_permissions_boundary_policy_name") == boundary_name == f"{PROD_NAME}-permissions-boundary"


def test_the_doc_says_the_repository_placeholder_must_be_replaced() -> None:
    text = DOC.read_text()
    for env in ("dev", "prod"):
        assert tfvar(env, "github_repository") == "rampart-project/rampart"
    assert '`github_repository = "rampart-project/rampart"`' in text and "**placeholder**" in text
    assert "real `owner/name`" in text


def test_state_requirements_match_the_backends() -> None:
    text = DOC.read_text()
    _, permissions = policies()["apply-permissions"]
    key = re.search(r'^key\s*=\s*"([^"]+)"', (ENVS / "prod.s3.tfbackend").read_text(), re.MULTILINE)
    assert key
    prefix = key.group(1).rsplit("/", 1)[0] + "/"
    state = [s for s in statements(permissions) if s["Sid"] == "StateObjectsOfThisEnvironment"]
    assert state[0]["Resource"] == [f"arn:aws:s3:::<STATE_BUCKET>/{prefix}*"]
    for requirement in ("Versioning on", "Block Public Access", "SSE-KMS", "aws:SecureTransport", "use_lockfile"):
        assert requirement in text, requirement


def test_apply_permissions_change_iam_only_on_stack_roles_with_the_boundary() -> None:
    boundary_name, _ = policies()["permissions-boundary"]
    apply_role_name, permissions = policies()["apply-permissions"]
    boundary_arn = f"arn:aws:iam::<ACCOUNT_ID>:policy/{boundary_name}"
    stack_roles = f"arn:aws:iam::<ACCOUNT_ID>:role/{PROD_NAME}-*"
    # The apply role must not match its own resource pattern, or it could rewrite itself.
    assert not apply_role_name.startswith(f"{PROD_NAME}-")
    assert len(re.sub(r"\s", "", json.dumps(permissions))) < MANAGED_POLICY_LIMIT
    read_only = {"iam:GetOpenIDConnectProvider", "iam:ListOpenIDConnectProviders", "iam:CreateServiceLinkedRole"}
    needs_boundary = {
        "iam:CreateRole",
        "iam:PutRolePermissionsBoundary",
        "iam:PutRolePolicy",
        "iam:DeleteRolePolicy",
        "iam:AttachRolePolicy",
        "iam:DetachRolePolicy",
    }
    granted: set[str] = set()
    for statement in statements(permissions):
        assert statement["Effect"] == "Allow"
        assert "*" not in statement["Action"] and "NotAction" not in statement
        iam = [a for a in statement["Action"] if a.startswith("iam:")]
        assert not any(a.startswith("iam:") for a in statement["Action"]) or len(iam) == len(statement["Action"])
        assert not any("*" in a for a in iam), f"{statement['Sid']}: wildcard IAM action"
        granted |= set(iam)
        if set(iam) - read_only:
            assert statement["Resource"] == [stack_roles], statement["Sid"]
        if set(iam) & needs_boundary:
            assert set(iam) <= needs_boundary, statement["Sid"]
            assert statement["Condition"]["StringEquals"]["iam:PermissionsBoundary"] == boundary_arn
        if "iam:AttachRolePolicy" in iam:
            assert all(
                arn.startswith("arn:aws:iam::aws:policy/")
                for arn in statement["Condition"]["ArnEquals"]["iam:PolicyARN"]
            )
        if statement["Resource"] == ["*"]:
            assert (
                set(statement["Action"]) == {"iam:ListOpenIDConnectProviders"}
                or statement["Condition"]["StringEquals"]["aws:RequestedRegion"] == "<REGION>"
            ), statement["Sid"]
    assert needs_boundary <= granted
    assert not granted & {"iam:CreatePolicy", "iam:CreatePolicyVersion", "iam:DeleteRolePermissionsBoundary"}


def test_boundary_never_allows_iam_writes_or_role_assumption() -> None:
    _, boundary = policies()["permissions-boundary"]
    allowed = [a for s in statements(boundary) if s["Effect"] == "Allow" for a in s["Action"]]
    denied = {a for s in statements(boundary) if s["Effect"] == "Deny" for a in s["Action"]}
    assert "*" not in allowed
    assert all(a.startswith(("iam:Get", "iam:List")) for a in allowed if a.startswith("iam:"))
    assert {"iam:PassRole", "iam:Create*", "iam:Put*", "iam:Attach*", "sts:AssumeRole"} <= denied


@pytest.mark.parametrize("workflow_name", ["deploy.yml", "terraform.yml"])
def test_jobs_that_ship_zips_require_the_rds_ca_bundle(workflow_name: str) -> None:
    doc = workflow(workflow_name)
    for job in doc["jobs"].values():
        runs = [s.get("run", "").split("#")[0].strip() for s in job.get("steps") or []]
        if "make package" in runs:
            assert job["env"]["RAMPART_REQUIRE_RDS_CA"] == "1"
