"""`rampart keys --aws` as an operator runs it against AWS (moto in-process stands in for AWS): what it prints, and
that every failure is one line with no trace and no key value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rampart.cli import main
from rampart.keys import UsagePlan

AWS = ["--aws", "--stack-name", "rampart-prod", "--region", "eu-west-1"]


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE", "RAMPART_STACK_NAME", "AWS_REGION", "AWS_DEFAULT_REGION"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")  # pragma: allowlist secret
    with mock_aws():
        apigw = boto3.client("apigateway", region_name="eu-west-1")
        apigw.create_usage_plan(name="rampart-prod-standard", tags={"rampart:tier": "standard"}, **UsagePlan().to_api())
        kms = boto3.client("kms", region_name="eu-west-1")
        kms.create_alias(AliasName="alias/rampart-prod-api-keys", TargetKeyId=kms.create_key()["KeyMetadata"]["KeyId"])
        yield {"apigw": apigw, "sm": boto3.client("secretsmanager", region_name="eu-west-1")}


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["keys", *argv])
    except SystemExit as exc:
        code = int(exc.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def test_create_rotate_list_revoke_against_aws(aws: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "create", "--client", "acme", *AWS)
    assert code == 0
    created = json.loads(out)
    assert created["secret"] == "rampart-prod/api-keys/acme" and "value" not in created  # pragma: allowlist secret
    secret = json.loads(aws["sm"].get_secret_value(SecretId="rampart-prod/api-keys/acme")["SecretString"])
    value = secret["current"]["value"]
    code, out, _ = run(capsys, "rotate", "--client", "acme", "--overlap", "2h", "--show-value", *AWS)
    rotated = json.loads(out)
    assert code == 0 and rotated["previous_key_id"] == created["key_id"] and rotated["value"] != value
    code, out, _ = run(capsys, "list", *AWS)
    assert code == 0 and created["key_id"] in out and "previous" in out and value not in out
    code, out, _ = run(capsys, "revoke", "--client", "acme", *AWS)
    assert code == 0 and set(json.loads(out)["revoked_key_ids"]) == {created["key_id"], rotated["key_id"]}
    assert aws["apigw"].get_api_keys()["items"] == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["rotate", "--client", "nobody", *AWS], "has no keys"),
        (["create", "--client", "acme", "--tier", "gold", *AWS], "no usage plan 'rampart-prod-gold'"),
        (["list", "--aws", "--region", "eu-west-1"], "--aws needs --stack-name"),
        (["list", "--aws", "--stack-name", "rampart-prod"], "--aws needs --region"),
    ],
)
def test_mistakes_are_one_line(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    code, _, err = run(capsys, *argv)
    assert code != 0
    assert err.startswith("rampart: error: ") and expected in err, err
    assert len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_aws_refusals_and_missing_credentials_are_one_line(
    aws: dict[str, Any], capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    real_client = boto3.session.Session.client

    def refusing(self: Any, service: str, *args: Any, **kwargs: Any) -> Any:
        client = real_client(self, service, *args, **kwargs)
        if service == "apigateway":

            def denied(*_a: Any, **_k: Any) -> None:
                raise client.exceptions.ClientError(
                    {"Error": {"Code": "AccessDeniedException", "Message": "User: x is not authorized\nmore"}},
                    "GetUsagePlans",
                )

            client.get_paginator = lambda _name: type("P", (), {"paginate": denied})()
        return client

    monkeypatch.setattr(boto3.session.Session, "client", refusing)
    code, _, err = run(capsys, "create", "--client", "acme", *AWS)
    assert code == 1
    assert err.strip() == (
        "rampart: error: AWS (eu-west-1) refused GetUsagePlans: AccessDeniedException: User: x is not authorized"
    )
    monkeypatch.undo()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    code, _, err = run(capsys, "list", *AWS)
    assert (code, err.strip()) == (1, "rampart: error: no AWS credentials found (configure them as for the AWS CLI)")
