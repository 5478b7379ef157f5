"""Cursor key rotation with two warm API instances: a client walking pages across the rotation, served by either
instance for each page, never gets a 400.

Each instance is its own load of the handler module (its own resolver, keyring and Powertools secrets cache), on
the real PostgreSQL, reading the key secret from Secrets Manager (moto) exactly as in Lambda.
"""

from __future__ import annotations

import importlib.util
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import boto3
import pytest
from moto import mock_aws

import rampart.api.handler
from rampart.db.connection import Database
from rampart.db.settings import DatabaseSettings
from rampart.db.store import EventStore
from rampart.local.postgres import EmbeddedPostgres
from tests.conftest import with_env
from tests.helpers import FakeContext, api_event
from tests.integration.test_api_handler import seed

K1, K2, K3 = ("key-one-" + "1" * 32, "key-two-" + "2" * 32, "key-three-" + "3" * 32)
HANDLER_FILE = Path(rampart.api.handler.__file__)


def _instance(name: str, pg: EmbeddedPostgres) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"rampart_api_instance_{name}", HANDLER_FILE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    settings = DatabaseSettings.from_env(pg.env("rampart_api"), application_name=f"rampart-api-{name}")
    module._store = EventStore(Database(settings, read_only=True))
    return module


@pytest.fixture
def secret(monkeypatch: pytest.MonkeyPatch, pg: EmbeddedPostgres, clean_events: None) -> Iterator[tuple[Any, str]]:
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = sm.create_secret(Name="rampart/api/cursor-key", SecretString=json.dumps({"current": K1}))["ARN"]
        with_env(monkeypatch, {"RAMPART_CURSOR_KEY_SECRET_ARN": arn})
        monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
        monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        monkeypatch.setenv("AWS_DEFAULT_REGION", "eu-west-1")
        yield sm, arn


@pytest.fixture
def instances(secret: Any, pg: EmbeddedPostgres) -> Iterator[tuple[ModuleType, ModuleType]]:
    a, b = _instance("a", pg), _instance("b", pg)
    try:
        yield a, b
    finally:
        for module in (a, b):
            module._store.db.close()


class Walk:
    """A client paging through /v1/events, each page from the instance it is given."""

    def __init__(self) -> None:
        self.cursor: str | None = None
        self.seen: list[str] = []
        self.statuses: list[int] = []
        self.done = False

    def page(self, instance: ModuleType) -> None:
        query = {"limit": "4"} | ({"cursor": self.cursor} if self.cursor else {})
        resp = instance.lambda_handler(api_event("/v1/events", query), FakeContext())
        self.statuses.append(resp["statusCode"])
        body = json.loads(resp["body"])
        assert resp["statusCode"] == 200, body
        self.seen += [item["event_id"] for item in body["items"]]
        self.cursor = body["next_cursor"]
        self.done = self.cursor is None


def _version(sm: Any, arn: str, stage: str) -> str:
    return str(sm.get_secret_value(SecretId=arn, VersionStage=stage)["VersionId"])


def _expire(instance: ModuleType) -> None:
    """What the TTL does to one warm instance: its cached copy of the secret is gone."""
    instance._cursors().source.provider.clear_cache()


def test_one_step_rotation_mid_walk_never_answers_400(
    secret: tuple[Any, str], instances: tuple[ModuleType, ModuleType], admin: Any
) -> None:
    sm, arn = secret
    a, b = instances
    ids = seed(admin, 40)
    walks = [Walk(), Walk()]
    for walk in walks:  # both walks begin before the rotation, on both instances
        walk.page(a)
        walk.page(b)
    # Rotate as Terraform's cursor_key_version bump does: a new version with the new key becomes AWSCURRENT, and
    # Secrets Manager moves the replaced one to AWSPREVIOUS.
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"current": K2}))
    _expire(a)  # a reads the rotation now; b keeps its cached K1 until its own TTL runs out
    while not all(w.done for w in walks):
        for i, walk in enumerate(walks):
            if not walk.done:
                # Every page from the other instance than the last: a signs with K2, b (stale) with K1.
                walk.page((a, b)[(i + len(walk.statuses)) % 2])
    for walk in walks:
        assert set(walk.statuses) == {200}
        assert walk.seen == ids


def test_staged_rotation_mid_walk_never_answers_400(
    secret: tuple[Any, str], instances: tuple[ModuleType, ModuleType], admin: Any
) -> None:
    sm, arn = secret
    a, b = instances
    ids = seed(admin, 40)
    walk = Walk()
    walk.page(a)
    walk.page(b)
    old = _version(sm, arn, "AWSCURRENT")
    staged = sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"current": K3}), VersionStages=["AWSPENDING"])
    _expire(a)
    _expire(b)  # after one TTL, every instance verifies K3 (AWSPENDING) while K1 still signs
    walk.page(a)
    walk.page(b)
    sm.update_secret_version_stage(  # promote: K3 signs, K1 (now AWSPREVIOUS) verifies
        SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=staged["VersionId"], RemoveFromVersionId=old
    )
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPENDING", RemoveFromVersionId=staged["VersionId"])
    _expire(b)  # b signs with K3 at once; a still signs with K1
    while not walk.done:
        walk.page(b)
        if not walk.done:
            walk.page(a)
    assert set(walk.statuses) == {200}
    assert walk.seen == ids
    # Staging is what made it work, not the catch-up read on a miss: no instance ever met a key it had not read.
    assert a._cursors().forced_reads == b._cursors().forced_reads == 0


def test_a_cursor_signed_with_a_retired_key_is_refused(
    secret: tuple[Any, str], instances: tuple[ModuleType, ModuleType], admin: Any
) -> None:
    """Rotation keeps old cursors working only while their key is in force: once AWSPREVIOUS is dropped, a cursor
    signed with it is a 400 (the refresh on a miss reads the secret again, and the key is still not in it)."""
    sm, arn = secret
    a, _b = instances
    seed(admin, 10)
    walk = Walk()
    walk.page(a)
    sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"current": K2}))
    previous = _version(sm, arn, "AWSPREVIOUS")
    sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSPREVIOUS", RemoveFromVersionId=previous)
    _expire(a)
    resp = a.lambda_handler(api_event("/v1/events", {"limit": "4", "cursor": str(walk.cursor)}), FakeContext())
    assert resp["statusCode"] == 400
    assert json.loads(resp["body"])["error"]["code"] == "invalid_cursor"


def test_an_unreachable_secret_is_503_not_500(
    secret: tuple[Any, str], instances: tuple[ModuleType, ModuleType], admin: Any
) -> None:
    sm, arn = secret
    a, _b = instances
    seed(admin, 10)
    sm.delete_secret(SecretId=arn, ForceDeleteWithoutRecovery=True)
    resp = a.lambda_handler(api_event("/v1/events", {"limit": "4"}), FakeContext())
    assert resp["statusCode"] == 503
    assert uuid.UUID(json.loads(resp["body"])["error"]["request_id"])
