"""The CI identities of iac/modules/github_oidc as the module computes them, without an emulator: the module applied
against Terraform's mocked provider (tests/iac/mock_apply.py), its trust and permission documents rebuilt as IAM
JSON from the statements Terraform computed, and evaluated (tests/pipeline/iam_eval.py) as the emulator proofs
(tests/iac/test_emulate_pipeline.py) evaluate the applied roles. Fast enough for `make prove-controls`.

The expectations are the trust design as promised (docs/architecture, SECURITY.md): one identity per purpose,
each trusted by exact subjects no other identity accepts, in the repository's immutable subject form.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import hcl2
import pytest

from tests.iac.mock_apply import ACCOUNT, REGION, MockApply, mock_apply
from tests.pipeline.iam_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate

MODULE = Path(__file__).resolve().parents[2] / "iac" / "modules" / "github_oidc"
REPOSITORY = "octo-org@123456/rampart@654321"  # GitHub's immutable form; tests/pipeline checks both forms' syntax
PROVIDER = f"arn:aws:iam::{ACCOUNT}:oidc-provider/token.actions.githubusercontent.com"
AUD, SUB = "token.actions.githubusercontent.com:aud", "token.actions.githubusercontent.com:sub"
KEY = f"arn:aws:kms:{REGION}:{ACCOUNT}:key/"
INPUTS: dict[str, Any] = {
    "name": "rampart-test",
    "github_repository": REPOSITORY,
    "github_environment": "production",
    "github_apply_environment": "production-infra",
    "function_arns": [f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:rampart-test-{f}" for f in ("ingest", "api")],
    "signing_profile_arn": f"arn:aws:signer:{REGION}:{ACCOUNT}:/signing-profiles/rampart_test",
    "artifact_bucket_arn": "arn:aws:s3:::rampart-test-artifacts",
    "artifact_kms_key_arn": f"{KEY}11111111-1111-1111-1111-111111111111",
    "api_keys_kms_key_arn": f"{KEY}22222222-2222-2222-2222-222222222222",
    "state_bucket_name": "rampart-test-state",
    "state_key": "rampart/test/terraform.tfstate",
    "state_kms_key_arn": f"{KEY}33333333-3333-3333-3333-333333333333",
}
MOCKS = f"""
  mock_resource "aws_iam_openid_connect_provider" {{
    defaults = {{ arn = "{PROVIDER}" }}
  }}
"""
PREFIX = f"repo:{REPOSITORY}"
PROMISED = {
    "plan": [f"{PREFIX}:pull_request", f"{PREFIX}:ref:refs/heads/main"],
    "deploy": [f"{PREFIX}:environment:production"],
    "apply": [f"{PREFIX}:environment:production-infra"],
}
# Which document each role of the module is given (read from the HCL, so a role pointed elsewhere fails).
ROLE_TRUST = {"plan": "plan_trust", "deploy": "deploy_trust"}
ROLE_POLICY = {"plan": "plan", "deploy": "deploy"}


@pytest.fixture(scope="module")
def planned() -> MockApply:
    result = mock_apply("github_oidc", INPUTS, MOCKS)
    assert result.status == "pass", "\n".join(result.diagnostics)
    return result


def as_iam(statements: list[dict[str, Any]]) -> dict[str, Any]:
    """An aws_iam_policy_document's statements (as Terraform computed them) as the IAM JSON it renders."""
    rendered = []
    for s in statements:
        out: dict[str, Any] = {"Effect": s.get("effect") or "Allow"}
        for key, name in (("actions", "Action"), ("not_actions", "NotAction")):
            if s.get(key):
                out[name] = sorted(s[key])
        for key, name in (("resources", "Resource"), ("not_resources", "NotResource")):
            if s.get(key):
                out[name] = sorted(s[key])
        if s.get("principals"):
            out["Principal"] = {p["type"]: sorted(p["identifiers"]) for p in s["principals"]}
        conditions: dict[str, dict[str, list[str]]] = {}
        for c in s.get("condition") or []:
            conditions.setdefault(c["test"], {})[c["variable"]] = sorted(c["values"])
        if conditions:
            out["Condition"] = conditions
        rendered.append(out)
    return {"Version": "2012-10-17", "Statement": rendered}


def document(planned: MockApply, name: str) -> dict[str, Any]:
    return as_iam(planned.one(f"data.aws_iam_policy_document.{name}")["statement"])


def _hcl_module() -> dict[str, Any]:
    with (MODULE / "main.tf").open(encoding="utf-8") as f:
        return dict(hcl2.load(f))


def _block(parsed: dict[str, Any], kind: str, rtype: str, name: str) -> dict[str, Any]:
    for block in parsed.get(kind, []):
        for key, named in block.items():
            if key.strip('"') == rtype:
                for rname, body in named.items():
                    if rname.strip('"') == name:
                        return dict(body)
    raise AssertionError(f"{kind} {rtype}.{name} not in {MODULE / 'main.tf'}")


def test_each_role_carries_its_own_trust_and_policy_and_nothing_attached() -> None:
    parsed = _hcl_module()
    for role, trust in ROLE_TRUST.items():
        body = _block(parsed, "resource", "aws_iam_role", role)
        assert body["assume_role_policy"] == f"${{data.aws_iam_policy_document.{trust}.json}}", role
        policy = _block(parsed, "resource", "aws_iam_role_policy", role)
        assert policy["role"] == f"${{aws_iam_role.{role}.id}}", role
        assert policy["policy"] == f"${{data.aws_iam_policy_document.{ROLE_POLICY[role]}.json}}", role
    attachments = [b for block in parsed.get("resource", []) for k, b in block.items() if "attachment" in k]
    assert attachments == [], "a managed policy attached to a CI role"


def test_identities_trust_exact_disjoint_subjects(planned: MockApply) -> None:
    assert planned.outputs["subjects"] == PROMISED
    every = [s for subjects in PROMISED.values() for s in subjects]
    assert len(set(every)) == len(every), "two identities share a subject"
    for role, trust in ROLE_TRUST.items():
        (statement,) = document(planned, trust)["Statement"]
        assert statement["Effect"] == "Allow" and statement["Action"] == ["sts:AssumeRoleWithWebIdentity"]
        assert statement["Principal"] == {"Federated": [PROVIDER]}
        assert statement["Condition"] == {"StringEquals": {AUD: ["sts.amazonaws.com"], SUB: sorted(PROMISED[role])}}


@pytest.mark.parametrize("role", ROLE_TRUST)
def test_only_the_promised_subjects_may_assume_each_role(planned: MockApply, role: str) -> None:
    trust = document(planned, ROLE_TRUST[role])
    others = [s for purpose, subjects in PROMISED.items() if purpose != role for s in subjects]
    foreign = [f"repo:octo-org@123456/other@1:{context}" for context in ("pull_request", "environment:production")] + [
        f"{PREFIX}:ref:refs/heads/feature",
        f"{PREFIX}:environment:staging",
        f"{PREFIX}:*",
    ]
    for subject in PROMISED[role] + others + foreign:
        context = {AUD: "sts.amazonaws.com", SUB: subject}
        request = Request("sts:AssumeRoleWithWebIdentity", principal={"Federated": PROVIDER}, context=context)
        expected = ALLOW if subject in PROMISED[role] else IMPLICIT_DENY
        assert evaluate([trust], request) == expected, (role, subject)
    wrong_audience = {AUD: "https://github.com/octo-org", SUB: PROMISED[role][0]}
    request = Request("sts:AssumeRoleWithWebIdentity", principal={"Federated": PROVIDER}, context=wrong_audience)
    assert evaluate([trust], request) == IMPLICIT_DENY


def test_two_identities_on_one_subject_are_refused_before_anything_is_created() -> None:
    shared = mock_apply("github_oidc", {**INPUTS, "github_apply_environment": "production"}, MOCKS)
    assert shared.status != "pass"
    assert any("Two identities share an OIDC subject" in d for d in shared.diagnostics), shared.diagnostics


def test_the_plan_role_reads_the_state_and_nothing_secret(planned: MockApply) -> None:
    docs = [document(planned, "plan")]
    secret = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rampart-test/api-keys/smoke-test-AbCdEf"
    state = f"arn:aws:s3:::rampart-test-state/{INPUTS['state_key']}"
    via_s3 = {"kms:ViaService": f"s3.{REGION}.amazonaws.com"}
    forbidden = [
        Request("apigateway:GET", f"arn:aws:apigateway:{REGION}::/apikeys/abc123"),
        Request("apigateway:GET", f"arn:aws:apigateway:{REGION}::/apikeys"),
        Request("secretsmanager:GetSecretValue", secret),
        Request("kms:Decrypt", INPUTS["api_keys_kms_key_arn"], context=via_s3),
        Request("s3:PutObject", f"{state}.tflock"),
        Request("s3:DeleteObject", f"{state}.tflock"),
    ]
    # Explicitly denied: whatever a wider policy or boundary grants later, these stay refused.
    widened = [*docs, {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    assert {f"{r.action} {r.resource}": evaluate(widened, r) for r in forbidden} == {
        f"{r.action} {r.resource}": EXPLICIT_DENY for r in forbidden
    }
    not_granted = [
        Request("s3:GetObject", "arn:aws:s3:::rampart-test-state/rampart/other/terraform.tfstate"),
        Request("lambda:UpdateFunctionCode", INPUTS["function_arns"][1]),
        Request("ssm:GetParameter", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/anything"),
        Request("kms:Decrypt", INPUTS["state_kms_key_arn"]),  # not through S3
    ]
    assert [evaluate(docs, r) for r in not_granted] == [IMPLICIT_DENY] * len(not_granted)
    granted = [
        Request("s3:GetObject", state),
        Request("kms:Decrypt", INPUTS["state_kms_key_arn"], context=via_s3),
        Request("iam:GetOpenIDConnectProvider", PROVIDER),
    ]
    assert [evaluate(docs, r) for r in granted] == [ALLOW] * len(granted)


def test_the_deploy_role_reads_only_the_smoke_test_clients_key(planned: MockApply) -> None:
    docs = [document(planned, "deploy")]
    base = f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:rampart-test/api-keys"
    assert evaluate(docs, Request("secretsmanager:GetSecretValue", f"{base}/smoke-test-AbCdEf")) == ALLOW
    for other in (f"{base}/analytics-AbCdEf", f"{base}/smoke-test-extra-AbCdEf", f"{base}/smoke-test"):
        assert evaluate(docs, Request("secretsmanager:GetSecretValue", other)) == IMPLICIT_DENY, other
    key = INPUTS["api_keys_kms_key_arn"]
    via_sm = {
        "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com",
        "kms:EncryptionContext:SecretARN": f"{base}/smoke-test-AbCdEf",
    }
    assert evaluate(docs, Request("kms:Decrypt", key, context=via_sm)) == ALLOW
    other_secret = {**via_sm, "kms:EncryptionContext:SecretARN": f"{base}/analytics-AbCdEf"}
    assert evaluate(docs, Request("kms:Decrypt", key, context=other_secret)) == IMPLICIT_DENY
    direct = {"kms:EncryptionContext:SecretARN": f"{base}/smoke-test-AbCdEf"}
    assert evaluate(docs, Request("kms:Decrypt", key, context=direct)) == IMPLICIT_DENY
    # It updates, publishes and aliases exactly the two functions (and their versions), nothing else.
    for arn in INPUTS["function_arns"]:
        assert evaluate(docs, Request("lambda:UpdateFunctionCode", arn)) == ALLOW
        assert evaluate(docs, Request("lambda:UpdateAlias", f"{arn}:live")) == ALLOW
    other_function = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:someone-else"
    assert evaluate(docs, Request("lambda:UpdateFunctionCode", other_function)) == IMPLICIT_DENY
    assert evaluate(docs, Request("lambda:UpdateFunctionConfiguration", INPUTS["function_arns"][0])) == IMPLICIT_DENY
    assert evaluate(docs, Request("iam:PassRole", "*")) == IMPLICIT_DENY
