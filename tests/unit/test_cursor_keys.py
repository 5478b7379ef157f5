"""Cursor keys: the documented secret format, and a keyring that follows a rotation without a single refusal."""

from __future__ import annotations

import datetime as dt
import json
import uuid

import boto3
import pytest
from moto import mock_aws

from rampart.api.cursor import CursorSignatureError, filters_digest
from rampart.api.cursor_keys import (
    CursorKeyring,
    CursorKeysInvalidError,
    CursorKeysUnavailableError,
    FixedKeySource,
    Keys,
    SecretKeySource,
    keyring_from_env,
    keys_in_force,
    parse_version,
)

K1, K2, K3 = ("1" * 32, "2" * 32, "3" * 32)
POS = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), uuid.UUID("00000000-0000-4000-8000-000000000001"))
DIGEST = filters_digest(None)


class Secret:
    """A secret's AWSCURRENT value with a per-reader cache, as Powertools keeps one per warm instance: ``read``
    answers from the cache unless forced or expired."""

    def __init__(self, value: str) -> None:
        self.value = value
        self.reads = 0

    def reader(self) -> CachedReader:
        return CachedReader(self)


class CachedReader:
    def __init__(self, secret: Secret) -> None:
        self.secret, self.cached = secret, None

    def read(self, force: bool) -> Keys:
        if force or self.cached is None:
            self.secret.reads += 1
            self.cached = self.secret.value
        return keys_in_force(self.cached)

    def expire(self) -> None:
        self.cached = None


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_the_documented_format() -> None:
    assert parse_version(json.dumps({"current": K1})) == {"current": K1}
    full = {"current": K1, "previous": K2, "next": K3}
    assert parse_version(json.dumps(full)) == full
    assert parse_version(K1) == {"current": K1}  # the plain text of the earlier format: the current key
    assert parse_version({"current": K1, "previous": "", "next": None}) == {"current": K1}


def test_the_keys_in_force_come_from_the_three_staging_labels() -> None:
    current = json.dumps({"current": K2})
    assert keys_in_force(current) == (K2,)
    # AWSPREVIOUS: where Secrets Manager moves the replaced version; AWSPENDING: a staged one.
    assert keys_in_force(current, json.dumps({"current": K1}), json.dumps({"current": K3})) == (K2, K1, K3)
    # Only the other versions' current key counts: a key two rotations old never verifies again.
    old = json.dumps({"current": K1, "previous": "0" * 32})
    assert keys_in_force(current, old) == (K2, K1)
    assert keys_in_force(json.dumps({"current": K2, "previous": K1}), json.dumps({"current": K1})) == (K2, K1)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (json.dumps({"previous": K1}), "no current key"),
        (json.dumps({"current": "short"}), "current cursor key must be"),
        (json.dumps({"current": K1, "next": 42}), "next cursor key must be"),
        (json.dumps({"current": K1, "older": K2}), "unknown fields: older"),
        ("[1, 2]", "at least 32"),
        ("x", "at least 32"),
    ],
)
def test_a_malformed_secret_is_named_without_its_values(value: str, reason: str) -> None:
    with pytest.raises(CursorKeysInvalidError, match=reason) as err:
        parse_version(value)
    assert K1 not in str(err.value) and K2 not in str(err.value)


def test_the_environment_path_of_the_local_twin() -> None:
    old = keyring_from_env({"RAMPART_CURSOR_KEY": K1})
    cursor = old.encode(*POS, DIGEST)
    rotated = keyring_from_env({"RAMPART_CURSOR_KEY": K2, "RAMPART_CURSOR_KEY_PREVIOUS": K1})
    assert rotated.decode(cursor, DIGEST) == POS
    staged = keyring_from_env({"RAMPART_CURSOR_KEY": K1, "RAMPART_CURSOR_KEY_NEXT": K2})
    assert staged.decode(rotated.encode(*POS, DIGEST), DIGEST) == POS


def test_a_stale_instance_catches_up_on_the_first_cursor_signed_with_a_key_it_has_not_read() -> None:
    secret = Secret(json.dumps({"current": K1}))
    fresh_reader, stale_reader = secret.reader(), secret.reader()
    fresh, stale = CursorKeyring(fresh_reader), CursorKeyring(stale_reader)
    stale.encode(*POS, DIGEST)  # warm: K1 cached
    secret.value = json.dumps({"current": K2, "previous": K1})  # a one-step rotation
    fresh_reader.expire()
    new_cursor = fresh.encode(*POS, DIGEST)  # signed with K2
    assert stale.decode(new_cursor, DIGEST) == POS  # missed, read the secret again, verified


def test_forced_reads_are_rate_limited_so_forgeries_cannot_flood_secrets_manager() -> None:
    secret, clock = Secret(json.dumps({"current": K1})), Clock()
    keyring = CursorKeyring(secret.reader(), clock=clock, min_forced_refresh_s=30)
    forged = CursorKeyring(FixedKeySource({"current": K3})).encode(*POS, DIGEST)
    for _ in range(100):
        with pytest.raises(CursorSignatureError):
            keyring.decode(forged, DIGEST)
    assert secret.reads == 2  # the first read, and one forced read
    clock.now += 31
    with pytest.raises(CursorSignatureError):
        keyring.decode(forged, DIGEST)
    assert secret.reads == 3


def test_staged_rotation_never_needs_a_forced_read() -> None:
    """Stage ``next`` first: once every instance has read it, promoting it breaks nothing even for an instance
    that has not read the promotion yet."""
    secret = Secret(json.dumps({"current": K1}))
    readers = [secret.reader(), secret.reader()]
    a, b = (CursorKeyring(r, min_forced_refresh_s=1e9) for r in readers)
    a.encode(*POS, DIGEST), b.encode(*POS, DIGEST)
    secret.value = json.dumps({"current": K1, "next": K2})
    for r in readers:
        r.expire()
    a.encode(*POS, DIGEST), b.encode(*POS, DIGEST)  # both have read the staged key
    secret.value = json.dumps({"current": K2, "previous": K1})
    readers[0].expire()  # only a has read the promotion
    from_a, from_b = a.encode(*POS, DIGEST), b.encode(*POS, DIGEST)  # signed with K2 and K1
    reads = secret.reads
    assert b.decode(from_a, DIGEST) == POS  # K2 verifies at b as its "next"
    assert a.decode(from_b, DIGEST) == POS  # K1 verifies at a as its "previous"
    assert secret.reads == reads


def test_an_unreachable_secret_is_unavailable_not_a_crash() -> None:
    class Down:
        def read(self, force: bool) -> Keys:
            raise ConnectionError("secretsmanager unreachable")

    with pytest.raises(CursorKeysUnavailableError):
        CursorKeyring(Down()).encode(*POS, DIGEST)


def test_the_secret_source_reads_the_three_staging_labels(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="eu-west-1")
        arn = sm.create_secret(Name="cursor", SecretString=json.dumps({"current": K1}))["ARN"]
        source = SecretKeySource(arn, max_age_s=300, client=sm)
        assert source.read(force=False) == (K1,)
        sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"current": K2}))
        assert source.read(force=False) == (K1,)  # cached: the TTL has not run out
        assert source.read(force=True) == (K2, K1)  # AWSCURRENT, then AWSPREVIOUS
        sm.put_secret_value(SecretId=arn, SecretString=json.dumps({"current": K3}), VersionStages=["AWSPENDING"])
        assert source.read(force=True) == (K2, K1, K3)  # and the staged AWSPENDING
