"""Emulator proofs of issue 12: the gateway responses on the applied state, and code signing in Enforce mode.

Code signing: moto 5.2.5 still has no CreateCodeSigningConfig (checked: moto/awslambda has only
GetFunctionCodeSigningConfig), so the shared apply (tests/iac/conftest.py) must leave the config out. This module
therefore asserts on the PLANNED values instead: a second copy of iac/ WITHOUT the functions override is planned
against the same emulator (`terraform plan -out`, then `terraform show -json`), and the plan must create the
code-signing config in Enforce mode, allowing only the project's Signer profile, and attach it to both functions.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.iac.emulator import (
    IAC,
    PROVIDER_OVERRIDE,
    PUBSUB_OVERRIDE,
    SERVICES,
    TFVARS,
    client,
    terraform,
    terraform_env,
)
from tests.iac.test_static_controls import GATEWAY_RESPONSES, SECURITY_HEADERS

pytestmark = pytest.mark.emulate


def test_gateway_responses_carry_the_security_headers(stack: dict[str, Any], moto_url: str) -> None:
    apigw = client("apigateway", moto_url)
    (api,) = [a for a in apigw.get_rest_apis()["items"] if a["name"] == "rampart-dev"]
    expected = {f"gatewayresponse.header.{k}": f"'{v}'" for k, v in SECURITY_HEADERS.items()}
    for response_type in sorted(GATEWAY_RESPONSES):
        response = apigw.get_gateway_response(restApiId=api["id"], responseType=response_type)
        assert response["responseParameters"] == expected, response_type


@pytest.fixture(scope="module")
def signed_plan(stack: dict[str, Any], moto_url: str, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    workdir = tmp_path_factory.mktemp("iac-plan-signing")
    copy = workdir / "iac"
    shutil.copytree(IAC, copy, ignore=shutil.ignore_patterns(".terraform", ".terraform.lock.hcl", "*.tfstate*"))
    root = copy / "envs"
    endpoints = "\n".join(f'    {service:<14} = "{moto_url}"' for service in SERVICES)
    (root / "emulator_override.tf").write_text(
        PROVIDER_OVERRIDE.format(state=workdir / "terraform.tfstate", endpoints=endpoints)
    )
    (copy / "modules" / "pubsub" / "emulator_override.tf").write_text(PUBSUB_OVERRIDE)
    applied: Path = stack["workdir"]
    env = terraform_env(workdir)
    variables = [
        "-var-file", TFVARS,
        "-var", f"ingest_zip_path={applied / 'ingest.zip'}",
        "-var", f"api_zip_path={applied / 'api.zip'}",
    ]  # fmt: skip
    terraform(root, env, "init", "-input=false", log=workdir / "init.log")
    plan = workdir / "signed.tfplan"
    terraform(root, env, "plan", "-input=false", "-refresh=false", f"-out={plan}", *variables, log=workdir / "plan.log")
    shown: dict[str, Any] = json.loads(terraform(root, env, "show", "-json", str(plan), log=workdir / "show.log"))
    return shown


def _planned(plan: dict[str, Any], address_suffix: str) -> list[dict[str, Any]]:
    return [
        change
        for change in plan["resource_changes"]
        if change["address"].endswith(address_suffix) and "create" in change["change"]["actions"]
    ]


def test_code_signing_enforced_in_the_plan(signed_plan: dict[str, Any]) -> None:
    (config,) = _planned(signed_plan, "aws_lambda_code_signing_config.this")
    after = config["change"]["after"]
    assert [p["untrusted_artifact_on_deployment"] for p in after["policies"]] == ["Enforce"]
    # The allowed publisher is the project's own Signer profile (known after apply, referenced in the config).
    config_module = next(
        m
        for m in _modules(signed_plan["configuration"]["root_module"])
        if any(r["address"] == "aws_lambda_code_signing_config.this" for r in m.get("resources", []))
    )
    (resource,) = [r for r in config_module["resources"] if r["address"] == "aws_lambda_code_signing_config.this"]
    publishers = json.dumps(resource["expressions"]["allowed_publishers"])
    assert "aws_signer_signing_profile.this.version_arn" in publishers
    functions = {c["name"]: c for c in _planned(signed_plan, "") if c["type"] == "aws_lambda_function"}
    assert set(functions) == {"ingest", "api"}
    for name in functions:
        (fn,) = [r for r in config_module["resources"] if r["address"] == f"aws_lambda_function.{name}"]
        refs = fn["expressions"]["code_signing_config_arn"]["references"]
        assert "aws_lambda_code_signing_config.this.arn" in refs, name
        (signed,) = [r for r in config_module["resources"] if r["address"] == "aws_signer_signing_job.this"]
        assert "aws_signer_signing_job.this" in json.dumps(fn["expressions"]["s3_key"]), name
        assert signed


def _modules(module: dict[str, Any]) -> list[dict[str, Any]]:
    out = [module]
    for call in module.get("module_calls", {}).values():
        out += _modules(call["module"])
    return out
