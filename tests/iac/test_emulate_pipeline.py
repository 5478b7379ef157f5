"""The pipeline's identities and the "no key value in state" promise, on the dev root as applied to moto
(the shared `stack` fixture of tests/iac/conftest.py; run by `make iac-emulate`).

- No attribute anywhere in the applied state (`terraform show -json`, every module) holds an API key value or
  a secret string: keys are issued outside Terraform (`rampart keys`), the cursor key is write-only, the RDS
  master password is RDS-managed.
- One usage plan per client tier, tagged; the api-keys CMK (rotating, usable only through Secrets Manager).
- Three identities with disjoint, exact subjects; the plan role, evaluated as applied (tests/pipeline/iam_eval.py,
  checked against AWS's documented examples), reads the state and nothing secret; the deploy role reads only
  the smoke-test client's key secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from tests.iac.emulator import REGION, REPOSITORY, client, customer_managed_rotating
from tests.pipeline.iam_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, evaluate

pytestmark = pytest.mark.emulate

SUB = "token.actions.githubusercontent.com:sub"
# Attributes that hold a secret whenever they hold anything (write-only ones are null in state): by name
# anywhere, and `value` where the resource type makes it a secret.
SECRET_ATTRIBUTES = {"secret_string", "secret_binary", "password", "master_password", "private_key", "secret"}
SECRET_VALUE_TYPES = {"aws_api_gateway_api_key", "aws_ssm_parameter", "aws_secretsmanager_secret_version"}


def walk(node: Any, path: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(node, dict):
        for key, value in node.items():
            yield from walk(value, f"{path}.{key}" if path else key)
    elif isinstance(node, list):
        for index, value in enumerate(node):
            yield from walk(value, f"{path}[{index}]")
    else:
        yield path, node


def resources(module: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from resources(child)


def secret_values(moto_url: str) -> dict[str, str]:
    """Every secret string and API key value the emulator holds, by where it lives."""
    sm, apigw = client("secretsmanager", moto_url), client("apigateway", moto_url)
    values = {}
    for secret in sm.list_secrets()["SecretList"]:
        try:
            values[f"secret {secret['Name']}"] = sm.get_secret_value(SecretId=secret["ARN"])["SecretString"]
        except sm.exceptions.ResourceNotFoundException:
            continue  # no value written (yet)
    for key in apigw.get_api_keys(includeValues=True)["items"]:
        values[f"api key {key['name']}"] = key["value"]
    return values


def test_no_key_value_or_secret_string_anywhere_in_state(stack: dict[str, Any], moto_url: str) -> None:
    state = stack["state"]
    kinds = {r["type"] for r in resources(state["values"]["root_module"])}
    assert "aws_api_gateway_api_key" not in kinds, "API keys are issued by rampart keys, never by Terraform"
    holding = [
        f"{r['address']}.{path}"
        for r in resources(state["values"]["root_module"])
        for path, value in walk(r.get("values", {}))
        if value not in (None, "", [], {})
        and (
            (name := path.split(".")[-1].split("[")[0]) in SECRET_ATTRIBUTES
            or (name == "value" and r["type"] in SECRET_VALUE_TYPES)
        )
    ]
    assert holding == [], "attributes holding a secret"
    # And no secret the emulator holds appears anywhere in the state text, under any attribute name. A key
    # issued the way `rampart keys create` does it must exist for this to bite: issue one.
    apigw, sm = client("apigateway", moto_url), client("secretsmanager", moto_url)
    key = apigw.create_api_key(name="rampart-dev-state-probe-1", enabled=True)
    sm.create_secret(
        Name="rampart-dev/api-keys/state-probe", SecretString=json.dumps({"current": {"value": key["value"]}})
    )
    text = json.dumps(state)
    values = secret_values(moto_url)
    assert any(name.startswith("api key") for name in values) and any(name.startswith("secret") for name in values)
    leaked = sorted(name for name, value in values.items() if value and value in text)
    assert leaked == []


def test_one_usage_plan_per_tier_tagged(stack: dict[str, Any], moto_url: str) -> None:
    apigw = client("apigateway", moto_url)
    plans = {p["name"]: p for p in apigw.get_usage_plans()["items"] if p["name"].startswith("rampart-dev-")}
    assert set(plans) == {"rampart-dev-standard"}
    ids = stack["outputs"]["api_usage_plan_ids"]
    assert ids == {"standard": plans["rampart-dev-standard"]["id"]}
    assert (
        plans["rampart-dev-standard"]["tags"] == {"rampart:tier": "standard"}
        or plans["rampart-dev-standard"]["tags"].get("rampart:tier") == "standard"
    )
    assert apigw.get_usage_plan_keys(usagePlanId=ids["standard"])["items"] == []


def test_api_keys_cmk_rotating_aliased_and_only_through_secrets_manager(stack: dict[str, Any], moto_url: str) -> None:
    kms = client("kms", moto_url)
    key_arn = stack["outputs"]["api_keys_kms_key_arn"]
    aliases = {a["AliasName"] for a in kms.list_aliases(KeyId=key_arn)["Aliases"]}
    assert aliases == {"alias/rampart-dev-api-keys"}
    assert customer_managed_rotating(moto_url, key_arn)
    policy = json.loads(kms.get_key_policy(KeyId=key_arn, PolicyName="default")["Policy"])
    direct = Request(
        "kms:Decrypt",
        key_arn,
        principal={"AWS": "arn:aws:iam::123456789012:role/anyone"},
        context={"kms:ViaService": "s3.eu-central-1.amazonaws.com"},
    )
    assert evaluate([policy], direct) == EXPLICIT_DENY
    via_secrets_manager = Request(
        direct.action,
        key_arn,
        principal=direct.principal,
        context={"kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com"},
    )
    assert evaluate([policy], via_secrets_manager) != EXPLICIT_DENY


def trust(moto_url: str, role_arn: str) -> dict[str, Any]:
    role = client("iam", moto_url).get_role(RoleName=role_arn.rsplit("/", 1)[-1])["Role"]
    document = role["AssumeRolePolicyDocument"]
    return json.loads(document) if isinstance(document, str) else dict(document)


def test_identities_trust_exact_disjoint_subjects(stack: dict[str, Any], moto_url: str) -> None:
    outputs = stack["outputs"]
    subjects = outputs["github_subjects"]
    prefix = f"repo:{REPOSITORY}"
    assert subjects == {
        "plan": [f"{prefix}:pull_request", f"{prefix}:ref:refs/heads/main"],
        "deploy": [f"{prefix}:environment:dev"],
        "apply": [f"{prefix}:environment:dev-infra"],
    }
    all_subjects = [s for values in subjects.values() for s in values]
    assert len(set(all_subjects)) == len(all_subjects), "two identities share a subject"
    for role, output in (("plan", "github_plan_role_arn"), ("deploy", "github_deploy_role_arn")):
        (statement,) = trust(moto_url, outputs[output])["Statement"]
        assert statement["Action"] == "sts:AssumeRoleWithWebIdentity"
        assert set(statement["Condition"]) == {"StringEquals"}, "no StringLike: no pattern in the trust"
        applied = statement["Condition"]["StringEquals"][SUB]
        assert sorted(applied if isinstance(applied, list) else [applied]) == sorted(subjects[role])
        assert "*" not in json.dumps(statement["Condition"])


def role_documents(moto_url: str, role_name: str) -> list[dict[str, Any]]:
    iam = client("iam", moto_url)
    docs = []
    for name in iam.list_role_policies(RoleName=role_name)["PolicyNames"]:
        document = iam.get_role_policy(RoleName=role_name, PolicyName=name)["PolicyDocument"]
        docs.append(json.loads(document) if isinstance(document, str) else document)
    for attached in iam.list_attached_role_policies(RoleName=role_name)["AttachedPolicies"]:
        policy = iam.get_policy(PolicyArn=attached["PolicyArn"])["Policy"]
        version = iam.get_policy_version(PolicyArn=attached["PolicyArn"], VersionId=policy["DefaultVersionId"])
        document = version["PolicyVersion"]["Document"]
        docs.append(json.loads(document) if isinstance(document, str) else document)
    return docs


def test_plan_role_reads_the_state_and_nothing_secret(stack: dict[str, Any], moto_url: str) -> None:
    outputs = stack["outputs"]
    role_name = outputs["github_plan_role_arn"].rsplit("/", 1)[-1]
    assert client("iam", moto_url).list_attached_role_policies(RoleName=role_name)["AttachedPolicies"] == []
    docs = role_documents(moto_url, role_name)
    account = outputs["github_plan_role_arn"].split(":")[4]
    secret = f"arn:aws:secretsmanager:{REGION}:{account}:secret:rampart-dev/api-keys/smoke-test-AbCdEf"
    any_key = f"arn:aws:kms:{REGION}:{account}:key/0000"
    forbidden = [
        Request("apigateway:GET", f"arn:aws:apigateway:{REGION}::/apikeys/abc123"),
        Request("apigateway:GET", f"arn:aws:apigateway:{REGION}::/apikeys"),
        Request("secretsmanager:GetSecretValue", secret),
        Request("kms:Decrypt", any_key),
        Request("s3:PutObject", "arn:aws:s3:::state-bucket/rampart/dev/terraform.tfstate.tflock"),
        Request("s3:DeleteObject", "arn:aws:s3:::state-bucket/rampart/dev/terraform.tfstate.tflock"),
        Request("lambda:UpdateFunctionCode", f"arn:aws:lambda:{REGION}:{account}:function:rampart-dev-api"),
    ]
    granted = {f"{r.action} {r.resource}": evaluate(docs, r) for r in forbidden}
    assert all(decision in {EXPLICIT_DENY, IMPLICIT_DENY} for decision in granted.values()), granted
    # The explicit denies hold even if a wider policy were attached later.
    widened = [*docs, {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}]
    assert {r.action: evaluate(widened, r) for r in forbidden[:5]} == {r.action: EXPLICIT_DENY for r in forbidden[:5]}
    assert (
        evaluate(
            docs,
            Request(
                "iam:GetOpenIDConnectProvider",
                f"arn:aws:iam::{account}:oidc-provider/token.actions.githubusercontent.com",
            ),
        )
        == ALLOW
    )


def test_deploy_role_reads_only_the_smoke_test_client_secret(stack: dict[str, Any], moto_url: str) -> None:
    outputs = stack["outputs"]
    account = outputs["github_deploy_role_arn"].split(":")[4]
    docs = role_documents(moto_url, outputs["github_deploy_role_arn"].rsplit("/", 1)[-1])
    base = f"arn:aws:secretsmanager:{REGION}:{account}:secret:rampart-dev/api-keys"
    assert evaluate(docs, Request("secretsmanager:GetSecretValue", f"{base}/smoke-test-AbCdEf")) == ALLOW
    for other in (f"{base}/analytics-AbCdEf", f"{base}/smoke-test-extra-AbCdEf", f"{base}/smoke-test"):
        assert evaluate(docs, Request("secretsmanager:GetSecretValue", other)) == IMPLICIT_DENY, other
    key = outputs["api_keys_kms_key_arn"]
    via_sm = {
        "kms:ViaService": f"secretsmanager.{REGION}.amazonaws.com",
        "kms:EncryptionContext:SecretARN": f"{base}/smoke-test-AbCdEf",
    }
    assert evaluate(docs, Request("kms:Decrypt", key, context=via_sm)) == ALLOW
    other_secret = {**via_sm, "kms:EncryptionContext:SecretARN": f"{base}/analytics-AbCdEf"}
    assert evaluate(docs, Request("kms:Decrypt", key, context=other_secret)) == IMPLICIT_DENY
    direct = {"kms:EncryptionContext:SecretARN": f"{base}/smoke-test-AbCdEf"}
    assert evaluate(docs, Request("kms:Decrypt", key, context=direct)) == IMPLICIT_DENY
