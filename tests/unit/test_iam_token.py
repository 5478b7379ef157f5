"""IAM database authentication: a real botocore presigned token, renewed before it expires."""

import json
from typing import Any

import boto3
import pytest
from botocore.stub import Stubber

from rampart.db.connection import IAM_TOKEN_RENEW_AFTER_S, Database
from rampart.db.settings import DatabaseSettings

SETTINGS = DatabaseSettings.from_env(
    {"RAMPART_DB_HOST": "db.example.internal", "RAMPART_DB_USER": "rampart_ingest", "AWS_REGION": "eu-west-1"}
)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def rds_clients(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret-example")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    return []


def _factory(created: list[Any]) -> Any:
    def make(service: str) -> Any:
        # A session of its own: boto3's default session caches the credentials it resolved first, so another
        # test's (moto's) credentials could otherwise reach this one.
        client = boto3.session.Session().client(service, region_name="eu-west-1")
        created.append(client)
        return client

    return make


def test_token_is_a_presigned_connect_request(rds_clients: list[Any]) -> None:
    db = Database(SETTINGS, aws_client_factory=_factory(rds_clients))
    token = db._password()
    assert token.startswith("db.example.internal:5432/?Action=connect")
    assert "DBUser=rampart_ingest" in token
    assert "X-Amz-Expires=900" in token
    assert "AKIDEXAMPLE" in token  # the access key id is part of a SigV4 presigned URL; the secret never is
    assert "secret-example" not in token


def test_token_is_reused_then_renewed_before_expiry(rds_clients: list[Any]) -> None:
    clock = Clock()
    db = Database(SETTINGS, clock=clock, aws_client_factory=_factory(rds_clients))
    first = db._password()
    clock.now += IAM_TOKEN_RENEW_AFTER_S - 1
    assert db._password() == first
    assert len(rds_clients) == 1
    clock.now += 2
    db._password()
    assert len(rds_clients) == 2  # a new token was generated
    assert IAM_TOKEN_RENEW_AFTER_S < 900  # renewed before the 15-minute validity ends


def test_password_from_secrets_manager_is_cached_and_refetched_after_a_failed_login() -> None:
    settings = DatabaseSettings.from_env(
        {
            "RAMPART_DB_HOST": "127.0.0.1",
            "RAMPART_DB_PORT": "1",
            "RAMPART_DB_USER": "rampart_api",
            "RAMPART_DB_AUTH": "password",
            "RAMPART_DB_PASSWORD_SECRET_ARN": "arn:aws:secretsmanager:eu-west-1:123456789012:secret:db",
            "RAMPART_DB_CONNECT_TIMEOUT_S": "1",
        }
    )
    client = boto3.client("secretsmanager", region_name="eu-west-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(client)
    for pw in ("first", "second"):
        stub.add_response(
            "get_secret_value",
            {"SecretString": json.dumps({"username": "rampart_api", "password": pw})},
            {"SecretId": settings.password_secret_arn},
        )
    with stub:
        db = Database(settings, aws_client_factory=lambda _s: client)
        assert db._password() == "first"
        assert db._password() == "first"
        db._forget_secret()  # what a failed connect does, so a rotated secret is read again
        assert db._password() == "second"
        stub.assert_no_pending_responses()
