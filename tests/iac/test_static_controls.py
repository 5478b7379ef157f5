"""Static proofs of Terraform controls that no checkov policy covers, read from the HCL itself (python-hcl2).

Fast (no provider, no emulator), so `make prove-controls` reruns them for every mutation of these controls; the
emulator proofs (`make iac-emulate`) check the same controls on the applied state.
"""

from __future__ import annotations

import re
from functools import cache
from pathlib import Path
from typing import Any

import hcl2
import pytest

IAC = Path(__file__).resolve().parents[2] / "iac"

# What every answer of the API carries, literally (SECURITY.md, src/rampart/api/handler.py).
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
# The answers API Gateway gives by itself that a client of this API can meet.
GATEWAY_RESPONSES = {
    "DEFAULT_4XX", "DEFAULT_5XX", "ACCESS_DENIED", "INVALID_API_KEY", "MISSING_AUTHENTICATION_TOKEN",
    "THROTTLED", "QUOTA_EXCEEDED", "WAF_FILTERED", "INTEGRATION_FAILURE", "INTEGRATION_TIMEOUT",
    "BAD_REQUEST_PARAMETERS", "RESOURCE_NOT_FOUND", "REQUEST_TOO_LARGE",
}  # fmt: skip


def _clean(value: Any) -> Any:
    """python-hcl2 keeps the quotes of keys and strings; drop them, and its bookkeeping keys."""
    if isinstance(value, dict):
        return {_unquote(k): _clean(v) for k, v in value.items() if k not in ("__is_block__", "__comments__")}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return _unquote(value) if isinstance(value, str) else value


def _unquote(text: str) -> str:
    return text[1:-1] if len(text) >= 2 and text[0] == text[-1] == '"' else text


@cache
def module(name: str) -> dict[str, Any]:
    """Every block of a module: {"resource": {type: {name: body}}, "data": ..., "locals": {...}}."""
    out: dict[str, Any] = {"resource": {}, "data": {}, "locals": {}, "ephemeral": {}}
    for path in sorted((IAC / "modules" / name).glob("*.tf")):
        with path.open(encoding="utf-8") as f:
            parsed = _clean(hcl2.load(f))
        for kind in ("resource", "data", "ephemeral"):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    out[kind].setdefault(rtype, {}).update(named)
        for block in parsed.get("locals", []):
            out["locals"].update(block)
    return out


def resources(name: str, rtype: str) -> dict[str, Any]:
    found = module(name)["resource"].get(rtype, {})
    assert found, f"module {name} declares no {rtype}"
    return dict(found)


def test_every_gateway_response_carries_the_security_headers() -> None:
    api = module("api")
    (response,) = resources("api", "aws_api_gateway_gateway_response").values()
    types_expr = api["locals"][response["for_each"].removeprefix("${local.").removesuffix("}")]
    types = set(re.findall(r'"([A-Z0-9_]+)"', types_expr))
    assert types >= GATEWAY_RESPONSES, sorted(GATEWAY_RESPONSES - types)
    headers_local = re.search(r"local\.(\w+)", response["response_parameters"])
    assert headers_local, response["response_parameters"]
    assert api["locals"][headers_local.group(1)] == SECURITY_HEADERS
    # Each header becomes a static value: the value in single quotes, under gatewayresponse.header.<name>.
    assert re.fullmatch(
        r"\$\{\{for (\w+), (\w+) in local\.\w+ : \"gatewayresponse\.header\.\$\{\1\}\" => \"'\$\{\2\}'\"\}\}",
        response["response_parameters"],
    ), response["response_parameters"]
    assert response["rest_api_id"] == "${aws_api_gateway_rest_api.this.id}"


def test_a_changed_gateway_response_redeploys_the_stage() -> None:
    (deployment,) = resources("api", "aws_api_gateway_deployment").values()
    assert "aws_api_gateway_gateway_response.security_headers" in str(deployment["triggers"])


def test_every_usage_plan_throttles_and_meters_a_quota() -> None:
    for name, plan in resources("api", "aws_api_gateway_usage_plan").items():
        (throttle,) = plan.get("throttle_settings") or [{}]
        (quota,) = plan.get("quota_settings") or [{}]
        assert throttle.get("rate_limit") and throttle.get("burst_limit"), f"usage plan {name}: no throttle"
        assert quota.get("limit") and quota.get("period"), f"usage plan {name}: no quota"
        assert plan.get("api_stages"), f"usage plan {name}: attached to no stage"


def test_code_signing_enforced_on_both_functions() -> None:
    (config,) = resources("functions", "aws_lambda_code_signing_config").items()
    name, body = config
    assert [p["untrusted_artifact_on_deployment"] for p in body["policies"]] == ["Enforce"]
    assert body["allowed_publishers"][0]["signing_profile_version_arns"]
    functions = resources("functions", "aws_lambda_function")
    assert set(functions) >= {"ingest", "api"}
    for fname, fn in functions.items():
        assert fn.get("code_signing_config_arn") == f"${{aws_lambda_code_signing_config.{name}.arn}}", fname


def test_the_queue_accepts_messages_only_from_this_topic() -> None:
    documents = module("pubsub")["data"]["aws_iam_policy_document"]
    statements = documents["queue"]["statement"]
    allows = [s for s in statements if s.get("effect", "Allow") == "Allow"]
    assert allows, "the queue policy allows nothing"
    for statement in allows:
        principals = statement.get("principals", [])
        assert principals and all(p["identifiers"] != ["*"] for p in principals), statement
        conditions = {(c["test"], c["variable"]): c["values"] for c in statement.get("condition", [])}
        assert conditions.get(("ArnEquals", "aws:SourceArn")) == ["${aws_sns_topic.this.arn}"], statement


def test_undeliverable_notifications_go_to_an_encrypted_delivery_dlq() -> None:
    # What SNS cannot deliver into the queue (after its retries) is kept, not dropped: the subscription's redrive
    # policy names the delivery DLQ, which is on the module's CMK and accepts messages only from this topic.
    pubsub = module("pubsub")
    subscriptions = resources("pubsub", "aws_sns_topic_subscription")
    assert subscriptions, "no subscription"
    for name, subscription in subscriptions.items():
        assert re.fullmatch(
            r"\$\{jsonencode\(\{deadLetterTargetArn = aws_sqs_queue\.(\w+)\.arn\}\)\}",
            str(subscription.get("redrive_policy", "")),
        ), f"subscription {name}: no redrive policy to a delivery DLQ"
        target = re.search(r"aws_sqs_queue\.(\w+)\.arn", subscription["redrive_policy"])
        assert target
        dlq = resources("pubsub", "aws_sqs_queue")[target.group(1)]
        assert dlq["kms_master_key_id"] == "${module.key.arn}", "the delivery DLQ is not on the module's CMK"
        policy = pubsub["data"]["aws_iam_policy_document"][target.group(1)]
        allows = [s for s in policy["statement"] if s.get("effect", "Allow") == "Allow"]
        assert allows and all(
            {(c["test"], c["variable"]): c["values"] for c in s.get("condition", [])}.get(
                ("ArnEquals", "aws:SourceArn")
            )
            == ["${aws_sns_topic.this.arn}"]
            for s in allows
        ), "the delivery DLQ accepts messages from more than this topic"


def test_the_cursor_key_is_write_only_and_generated_ephemerally() -> None:
    (version,) = [v for n, v in resources("functions", "aws_secretsmanager_secret_version").items() if "cursor" in n]
    assert "secret_string" not in version and "secret_binary" not in version
    # The documented JSON, {"current": KEY} (src/rampart/api/cursor_keys.py), KEY generated by Secrets Manager as an
    # ephemeral value: never in the plan or the state. A new version per cursor_key_version (one-step rotation).
    written = re.fullmatch(
        r"\$\{jsonencode\(\{current = ephemeral\.aws_secretsmanager_random_password\.(\w+)\.random_password\}\)\}",
        version["secret_string_wo"],
    )
    assert written, version["secret_string_wo"]
    assert written.group(1) in module("functions")["ephemeral"]["aws_secretsmanager_random_password"]
    assert version["secret_string_wo_version"] == "${var.cursor_key_version}"


MODULES = sorted(p.name for p in (IAC / "modules").iterdir() if (p / "main.tf").is_file())
# Resources whose value, once Terraform creates them, is a secret in the state (an API key's value is).
SECRET_RESOURCES = {"aws_api_gateway_api_key", "aws_api_gateway_usage_plan_key", "aws_iam_access_key"}


def _blocks(path: Path) -> dict[str, Any]:
    with path.open(encoding="utf-8") as f:
        return dict(_clean(hcl2.load(f)))


@pytest.mark.parametrize("name", [*MODULES, "envs"])
def test_no_terraform_holds_an_api_key_or_a_secret_value(name: str) -> None:
    folder = IAC / "envs" if name == "envs" else IAC / "modules" / name
    for path in sorted(folder.glob("*.tf")):
        parsed = _blocks(path)
        for block in parsed.get("resource", []):
            for rtype, named in block.items():
                # API keys are issued per client by `rampart keys`, outside Terraform (docs/conventions).
                assert rtype not in SECRET_RESOURCES, f"{path.name}: {rtype} puts a key value into the state"
                for rname, body in named.items():
                    if rtype in ("aws_secretsmanager_secret_version", "aws_ssm_parameter"):
                        held = {k for k in ("secret_string", "secret_binary", "value") if body.get(k)}
                        assert not held, f"{path.name}: {rtype}.{rname}.{sorted(held)} is stored in the state"
        for block in parsed.get("output", []):
            for oname, body in block.items():
                value = str(body.get("value", ""))
                assert not any(f"{r}." in value for r in SECRET_RESOURCES), f"{path.name}: output {oname}"


def test_private_subnets_never_map_public_ips_and_have_no_route_out() -> None:
    # checkov's CKV2_RAMPART_7 cannot follow the subnet ids from the network module into the database module's
    # subnet group, so the network module is checked here directly (and on the applied state by the emulator).
    network = module("network")["resource"]
    subnets = network.get("aws_subnet", {})
    assert subnets, "the network module declares no subnet"
    for name, subnet in subnets.items():
        assert subnet.get("map_public_ip_on_launch", False) in (False, "false"), f"aws_subnet.{name} maps public IPs"
    for forbidden in ("aws_internet_gateway", "aws_nat_gateway", "aws_egress_only_internet_gateway"):
        assert forbidden not in network, f"the network module creates an {forbidden}"
