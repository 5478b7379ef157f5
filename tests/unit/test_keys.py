"""rampart.keys against moto (in-process): names, tags, plan attachment and the secret's shape per the conventions;
rotation with an overlap, pruning, revocation, rollbacks when a step fails, and what API Gateway would accept."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from collections.abc import Iterator
from typing import Any

import boto3
import pytest
from moto import mock_aws

from rampart.keys import (
    ACCOUNT_BURST,
    ACCOUNT_RATE,
    ClientKeys,
    KeyManager,
    KeysError,
    UsagePlan,
    active_keys,
    parse_duration,
)

REGION = "eu-west-1"
STACK = "rampart-test"
RFC3339_UTC = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")


class Clock:
    def __init__(self) -> None:
        self.now = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)

    def __call__(self) -> dt.datetime:
        return self.now


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, Any]]:
    for name in ("AWS_ENDPOINT_URL", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")  # pragma: allowlist secret
    with mock_aws():
        apigw = boto3.client("apigateway", region_name=REGION)
        sm = boto3.client("secretsmanager", region_name=REGION)
        kms = boto3.client("kms", region_name=REGION)
        key = kms.create_key()["KeyMetadata"]["KeyId"]
        kms.create_alias(AliasName=f"alias/{STACK}-api-keys", TargetKeyId=key)
        plans = {
            tier: apigw.create_usage_plan(name=f"{STACK}-{tier}", tags={"rampart:tier": tier}, **plan.to_api())["id"]
            for tier, plan in {
                "standard": UsagePlan(rate=50, burst=100),
                "gold": UsagePlan(rate=500, burst=1000, quota_per_day=100_000),
            }.items()
        }
        # Another stack whose name extends ours: its plan must never count as ours.
        other = apigw.create_usage_plan(name=f"{STACK}-x-standard", tags={"rampart:tier": "standard"})["id"]
        yield {"apigw": apigw, "sm": sm, "plans": plans, "other_plan": other}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def manager(aws: dict[str, Any], clock: Clock) -> KeyManager:
    return KeyManager(aws["apigw"], aws["sm"], STACK, clock=clock)


def secret_json(aws: dict[str, Any], client: str) -> dict[str, Any]:
    raw = aws["sm"].get_secret_value(SecretId=f"{STACK}/api-keys/{client}")["SecretString"]
    return dict(json.loads(raw))


def accepted(aws: dict[str, Any]) -> dict[str, str]:
    """value -> key id, for every key API Gateway would accept for this stack."""
    return {k.value: k.key_id for k in active_keys(aws["apigw"], STACK)}


def test_create_follows_the_conventions(aws: dict[str, Any], manager: KeyManager, clock: Clock) -> None:
    keys = manager.create("acme")
    key = aws["apigw"].get_api_key(apiKey=keys.current.id, includeValue=True)
    assert key["name"] == f"{STACK}-acme-1"
    assert key["enabled"] is True and key["value"] == keys.current.value
    assert key["tags"] == {"rampart:stack": STACK, "rampart:client": "acme"}
    members = aws["apigw"].get_usage_plan_keys(usagePlanId=aws["plans"]["standard"])["items"]
    assert [m["id"] for m in members] == [keys.current.id]
    described = aws["sm"].describe_secret(SecretId=f"{STACK}/api-keys/acme")
    assert described["KmsKeyId"] == f"alias/{STACK}-api-keys"
    stored = secret_json(aws, "acme")
    assert stored == {
        "client": "acme",
        "tier": "standard",
        "current": {"id": keys.current.id, "value": keys.current.value, "created_at": "2026-11-30T12:00:00Z"},
        "previous": None,
        "previous_expires_at": None,
    }
    assert len(keys.current.value) >= 20 and keys.current.value.isalnum()
    active = active_keys(aws["apigw"], STACK)
    assert [(k.key_id, k.tier, k.plan) for k in active] == [(keys.current.id, "standard", UsagePlan(50, 100))]


def test_the_tier_decides_the_usage_plan_and_its_limits(aws: dict[str, Any], manager: KeyManager) -> None:
    keys = manager.create("bigco", tier="gold")
    members = aws["apigw"].get_usage_plan_keys(usagePlanId=aws["plans"]["gold"])["items"]
    assert [m["id"] for m in members] == [keys.current.id]
    (active,) = active_keys(aws["apigw"], STACK)
    assert active.plan == UsagePlan(rate=500, burst=1000, quota_per_day=100_000)


def test_mistakes_are_one_line_errors(manager: KeyManager) -> None:
    manager.create("acme")
    with pytest.raises(KeysError, match="already has a key"):
        manager.create("acme")
    with pytest.raises(KeysError, match=r"no usage plan 'rampart-test-platinum' \(tiers of stack 'rampart-test': "):
        manager.create("other", tier="platinum")
    for bad in ("Acme", "-x", "a/b", "a" * 41, ""):
        with pytest.raises(KeysError, match="lowercase letters"):
            manager.create(bad)
    with pytest.raises(KeysError, match="has no keys"):
        manager.rotate("nobody")
    with pytest.raises(KeysError, match="has no keys"):
        manager.revoke("nobody")
    with pytest.raises(KeysError, match="no previous key"):
        manager.revoke("acme", previous_only=True)
    with pytest.raises(KeysError, match="20-128"):
        manager.create("short", value="x" * 19)


def test_rotation_keeps_both_keys_valid_for_the_overlap_then_prune_removes_the_old_one(
    aws: dict[str, Any], manager: KeyManager, clock: Clock
) -> None:
    first = manager.create("acme")
    clock.now += dt.timedelta(hours=1)
    rotated = manager.rotate("acme", overlap=dt.timedelta(hours=24))
    assert rotated.previous == first.current
    assert rotated.current.id != first.current.id
    assert aws["apigw"].get_api_key(apiKey=rotated.current.id)["name"] == f"{STACK}-acme-2"
    stored = secret_json(aws, "acme")
    assert stored["current"]["id"] == rotated.current.id
    assert stored["previous"] == {
        "id": first.current.id,
        "value": first.current.value,
        "created_at": first.current.created_at,
    }
    assert stored["previous_expires_at"] == "2026-12-01T13:00:00Z"
    assert set(accepted(aws)) == {first.current.value, rotated.current.value}  # both work
    # A second rotation inside the window would silently end a client's grace: refused.
    with pytest.raises(KeysError, match="inside an overlap window"):
        manager.rotate("acme")
    # Before the end of the window, prune keeps the old key; after it, the old key goes.
    clock.now += dt.timedelta(hours=23, minutes=59)
    assert manager.prune() == []
    clock.now += dt.timedelta(minutes=2)
    assert manager.prune() == [("acme", first.current.id)]
    assert set(accepted(aws)) == {rotated.current.value}
    assert secret_json(aws, "acme")["previous"] is None
    assert secret_json(aws, "acme")["previous_expires_at"] is None
    third = manager.rotate("acme")
    assert aws["apigw"].get_api_key(apiKey=third.current.id)["name"] == f"{STACK}-acme-3"


def test_rotate_prunes_an_ended_window_first(aws: dict[str, Any], manager: KeyManager, clock: Clock) -> None:
    first = manager.create("acme")
    second = manager.rotate("acme", overlap=dt.timedelta(minutes=5))
    clock.now += dt.timedelta(minutes=6)
    third = manager.rotate("acme")
    assert set(accepted(aws)) == {second.current.value, third.current.value}
    assert first.current.value not in accepted(aws)


def test_rotate_without_overlap_retires_the_old_key_at_once(aws: dict[str, Any], manager: KeyManager) -> None:
    first = manager.create("acme")
    second = manager.rotate("acme", overlap=dt.timedelta(0))
    assert second.previous is None
    assert set(accepted(aws)) == {second.current.value}
    assert first.current.id not in {k["id"] for k in aws["apigw"].get_api_keys()["items"]}


def test_revoke_previous_ends_the_overlap_now(aws: dict[str, Any], manager: KeyManager) -> None:
    first = manager.create("acme")
    second = manager.rotate("acme")
    assert manager.revoke("acme", previous_only=True) == [first.current.id]
    assert set(accepted(aws)) == {second.current.value}
    assert secret_json(aws, "acme")["previous"] is None


def test_revoke_disables_and_deletes_every_key_and_the_secret(aws: dict[str, Any], manager: KeyManager) -> None:
    manager.create("keep")
    first = manager.create("acme")
    second = manager.rotate("acme")
    revoked = manager.revoke("acme")
    assert set(revoked) == {first.current.id, second.current.id}
    remaining = {k["id"] for k in aws["apigw"].get_api_keys()["items"]}
    assert first.current.id not in remaining and second.current.id not in remaining
    assert manager.read("acme") is None
    assert {c.value for c in [*active_keys(aws["apigw"], STACK)]} == {secret_json(aws, "keep")["current"]["value"]}
    # The client can be issued a key again (the secret was deleted for good, not scheduled for deletion).
    again = manager.create("acme")
    assert aws["apigw"].get_api_key(apiKey=again.current.id)["name"] == f"{STACK}-acme-1"


def test_list_shows_ids_roles_and_windows_never_values(aws: dict[str, Any], manager: KeyManager) -> None:
    first = manager.create("acme")
    second = manager.rotate("acme")
    gold = manager.create("bigco", tier="gold")
    rows = manager.list_keys()
    assert [(r.client, r.key_id, r.role, r.tier, r.enabled) for r in rows] == [
        ("acme", first.current.id, "previous", "standard", True),
        ("acme", second.current.id, "current", "standard", True),
        ("bigco", gold.current.id, "current", "gold", True),
    ]
    assert rows[0].expires_at == second.previous_expires_at
    text = json.dumps([dataclasses.asdict(r) for r in rows]) + repr(rows) + repr(second)
    for value in (first.current.value, second.current.value, gold.current.value):
        assert value not in text


def test_a_failed_secret_write_leaves_no_orphan_key(aws: dict[str, Any], clock: Clock) -> None:
    class FailingSecrets:
        def __init__(self, real: Any) -> None:
            self.real = real

        def __getattr__(self, name: str) -> Any:
            if name in ("create_secret", "put_secret_value"):
                raise_ = aws["sm"].exceptions.InternalServiceError

                def fail(**_kwargs: Any) -> None:
                    raise raise_({"Error": {"Code": "InternalServiceError", "Message": "down"}}, name)

                return fail
            return getattr(self.real, name)

    good = KeyManager(aws["apigw"], aws["sm"], STACK, clock=clock)
    first = good.create("acme")
    broken = KeyManager(aws["apigw"], FailingSecrets(aws["sm"]), STACK, clock=clock)
    with pytest.raises(Exception, match="down"):
        broken.create("other")
    with pytest.raises(Exception, match="down"):
        broken.rotate("acme")
    # Only acme's first key exists, still current; nothing half-made is accepted.
    assert [k["id"] for k in aws["apigw"].get_api_keys()["items"]] == [first.current.id]
    assert accepted(aws) == {first.current.value: first.current.id}
    assert secret_json(aws, "acme")["current"]["id"] == first.current.id


def test_api_gateway_accepts_only_enabled_keys_on_this_stacks_plans(aws: dict[str, Any], manager: KeyManager) -> None:
    mine = manager.create("acme")
    apigw = aws["apigw"]
    stray = apigw.create_api_key(name="stray", value="s" * 30, enabled=True)
    foreign = apigw.create_api_key(name="foreign", value="f" * 30, enabled=True)
    apigw.create_usage_plan_key(usagePlanId=aws["other_plan"], keyId=foreign["id"], keyType="API_KEY")
    disabled = apigw.create_api_key(name="off", value="d" * 30, enabled=False)
    apigw.create_usage_plan_key(usagePlanId=aws["plans"]["standard"], keyId=disabled["id"], keyType="API_KEY")
    assert accepted(aws) == {mine.current.value: mine.current.id}
    assert stray["id"] not in accepted(aws).values()


def test_the_secret_round_trips_and_rejects_other_shapes() -> None:
    text = json.dumps({"client": "a", "tier": "standard", "current": {"id": "i", "value": "v" * 20, "created_at": "t"}})
    keys = ClientKeys.from_secret_string(text)
    assert ClientKeys.from_secret_string(keys.to_secret_string()) == keys
    for bad in ('"just a string"', '{"client": "a"}', '{"client": "a", "tier": "s", "current": {"id": 1}}'):
        with pytest.raises(ValueError):
            ClientKeys.from_secret_string(bad)


def test_usage_plan_limits_as_api_gateway_holds_them() -> None:
    assert UsagePlan.from_api({}) == UsagePlan(ACCOUNT_RATE, ACCOUNT_BURST)
    assert UsagePlan.from_api({"throttle": {"rateLimit": 2.5, "burstLimit": 5}}) == UsagePlan(2.5, 5)
    assert UsagePlan.from_api({"quota": {"limit": 9, "period": "WEEK"}}).quota_per_day is None
    assert UsagePlan(1, 2, 3).to_api() == {
        "throttle": {"rateLimit": 1, "burstLimit": 2},
        "quota": {"limit": 3, "period": "DAY"},
    }


def test_durations() -> None:
    assert parse_duration("24h") == dt.timedelta(hours=24)
    assert parse_duration("90") == parse_duration("90s") == dt.timedelta(seconds=90)
    assert parse_duration("7d") == dt.timedelta(days=7)
    for bad in ("", "1w", "-5m", "1.5h", "h"):
        with pytest.raises(ValueError):
            parse_duration(bad)


def test_times_are_rfc3339_utc(manager: KeyManager) -> None:
    rotated = manager.rotate(manager.create("acme").client)
    assert RFC3339_UTC.fullmatch(rotated.current.created_at)
    assert rotated.previous_expires_at is not None and RFC3339_UTC.fullmatch(rotated.previous_expires_at)
