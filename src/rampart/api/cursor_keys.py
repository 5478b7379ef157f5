"""Cursor HMAC keys that rotate without breaking a page walk.

Format (docs/contracts.md): each version of the Secrets Manager secret ``RAMPART_CURSOR_KEY_SECRET_ARN`` holds a
JSON object ``{"current": "<key>"}``, optionally with ``"previous"`` and ``"next"`` keys; every key is text of at
least 32 characters. Plain text (the format before this one) is read as ``{"current": <text>}``.

The keys in force are read from the secret's staging labels, so a rotation needs no one to copy a key by hand:

- ``AWSCURRENT``: its ``current`` signs new cursors; its ``current``, ``previous`` and ``next`` verify;
- ``AWSPREVIOUS`` (where Secrets Manager moves the replaced version on every rotation): its ``current`` verifies,
  so cursors issued before a rotation keep working;
- ``AWSPENDING`` (a staged version, not yet current): its ``current`` verifies, so a staged key is known to every
  instance before it signs anything.

Locally the keys come from ``RAMPART_CURSOR_KEY`` (current), ``RAMPART_CURSOR_KEY_PREVIOUS`` and
``RAMPART_CURSOR_KEY_NEXT``.

Warm instances read the secret through a Powertools parameters provider with a TTL (``max_age``, default 300 s,
``RAMPART_CURSOR_KEY_MAX_AGE_S``), so a rotation reaches every instance within that time. Until it does, an
instance can be handed a cursor a fresher instance signed with a key it has not read yet: that miss makes it read
the secret again at once (at most once per ``MIN_FORCED_REFRESH_S``, so forged cursors cannot become a flood of
Secrets Manager calls). The rotation procedure is in SECURITY.md, "Rotation".
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

from rampart.api.cursor import CursorCodec, CursorSignatureError
from rampart.secrets import parse_secret_text

DEFAULT_MAX_AGE_S = 300
MIN_FORCED_REFRESH_S = 30.0
MIN_KEY_LENGTH = 32
ROLES = ("current", "previous", "next")

Keys = tuple[str, ...]  # current first, then every other key that verifies


class CursorKeysUnavailableError(RuntimeError):
    """The keys cannot be read right now (Secrets Manager unreachable): the API answers 503, the client retries."""


class CursorKeysInvalidError(ValueError):
    """The secret does not hold keys in the documented format (a deployment mistake, never a client's)."""


def parse_version(value: object) -> dict[str, str]:
    """The keys of one secret version by role; :class:`CursorKeysInvalidError` says what is wrong (never a key)."""
    if isinstance(value, str):
        value = parse_secret_text(value)
    found: object = {"current": value} if isinstance(value, str) else value
    if not isinstance(found, Mapping):
        raise CursorKeysInvalidError("the cursor key secret is neither text nor a JSON object")
    unknown = sorted(set(found) - set(ROLES))
    if unknown:
        raise CursorKeysInvalidError(f"the cursor key secret has unknown fields: {', '.join(map(str, unknown))}")
    keys: dict[str, str] = {}
    for role in ROLES:
        key = found.get(role)
        if key is None or key == "":
            if role == "current":
                raise CursorKeysInvalidError("the cursor key secret has no current key")
            continue
        if not isinstance(key, str) or len(key) < MIN_KEY_LENGTH:
            raise CursorKeysInvalidError(f"the {role} cursor key must be text of at least {MIN_KEY_LENGTH} characters")
        keys[role] = key
    return keys


def keys_in_force(current: object, previous: object = None, pending: object = None) -> Keys:
    """The signing key and every verifying key, from the secret's AWSCURRENT, AWSPREVIOUS and AWSPENDING values
    (the last two may be absent). Only the ``current`` of the other two versions counts: a key two rotations old
    never comes back."""
    now = parse_version(current)
    keys = [now["current"], *(now[role] for role in ("previous", "next") if role in now)]
    for other in (previous, pending):
        if other is not None:
            keys.append(parse_version(other)["current"])
    return tuple(dict.fromkeys(keys))  # without repeats, current first


class KeySource(Protocol):
    def read(self, force: bool) -> Keys:
        """The keys in force; ``force`` bypasses any cache."""
        ...


class CursorKeyring:
    """The codec for the keys the source holds now, rebuilt when they change."""

    def __init__(
        self,
        source: KeySource,
        clock: Callable[[], float] = time.monotonic,
        min_forced_refresh_s: float = MIN_FORCED_REFRESH_S,
    ) -> None:
        self.source = source
        self._clock = clock
        self._min_forced_refresh_s = min_forced_refresh_s
        self._lock = threading.Lock()
        self._keys: Keys = ()
        self._codec: CursorCodec | None = None
        self._forced_at: float | None = None
        self.forced_reads = 0  # reads a cursor signed with an unknown key caused (a staged rotation causes none)

    def codec(self, force: bool = False) -> CursorCodec:
        try:
            keys = self.source.read(force)
        except CursorKeysInvalidError:
            raise
        except Exception as exc:
            raise CursorKeysUnavailableError("the cursor keys cannot be read") from exc
        with self._lock:
            if self._codec is None or keys != self._keys:
                self._codec = CursorCodec([key.encode("utf-8") for key in keys])
                self._keys = keys
            return self._codec

    def encode(self, *args: Any) -> str:
        return self.codec().encode(*args)

    def decode(self, cursor: str, digest: str) -> Any:
        try:
            return self.codec().decode(cursor, digest)
        except CursorSignatureError:
            # Perhaps signed with a key this instance has not read yet: read the keys again, once in a while.
            now = self._clock()
            with self._lock:
                if self._forced_at is not None and now - self._forced_at < self._min_forced_refresh_s:
                    raise
                self._forced_at = now
                self.forced_reads += 1
            return self.codec(force=True).decode(cursor, digest)


def _cursor_keys_provider_class() -> type:
    # Powertools and boto3 are imported only when the keys live in Secrets Manager (never in the local twin).
    from aws_lambda_powertools.utilities.parameters.base import BaseProvider  # noqa: PLC0415

    class CursorKeysProvider(BaseProvider):
        """A Powertools parameters provider whose one parameter is the cursor keys in force, assembled from the
        secret's three staging labels; Powertools caches the result for ``max_age`` seconds."""

        def __init__(self, client: Any = None) -> None:
            if client is None:
                import boto3  # noqa: PLC0415

                client = boto3.client("secretsmanager")
            self.client = client
            super().__init__(client=client)  # type: ignore[no-untyped-call]

        def _stage(self, secret_id: str, stage: str) -> str | None:
            try:
                return str(self.client.get_secret_value(SecretId=secret_id, VersionStage=stage)["SecretString"])
            except self.client.exceptions.ResourceNotFoundException:
                if stage == "AWSCURRENT":
                    raise
                return None  # no such version (yet): nothing more verifies

        def _get(self, name: str, **_sdk_options: Any) -> Any:
            return keys_in_force(
                self._stage(name, "AWSCURRENT"), self._stage(name, "AWSPREVIOUS"), self._stage(name, "AWSPENDING")
            )

        def _get_multiple(self, path: str, **_sdk_options: Any) -> dict[str, Any]:
            raise NotImplementedError("one secret holds the cursor keys")

    return CursorKeysProvider


class SecretKeySource:
    """The keys in force in a Secrets Manager secret, cached for ``max_age_s`` per instance."""

    def __init__(self, secret_id: str, max_age_s: int, client: Any = None) -> None:
        self.secret_id, self.max_age_s = secret_id, max_age_s
        self.provider = _cursor_keys_provider_class()(client)

    def read(self, force: bool) -> Keys:
        keys = self.provider.get(self.secret_id, max_age=self.max_age_s, force_fetch=force)
        return tuple(keys)


class FixedKeySource:
    """Keys given once (the environment): nothing to refresh."""

    def __init__(self, keys: Mapping[str, str]) -> None:
        self.keys = keys_in_force({role: key for role, key in keys.items() if key})

    def read(self, force: bool) -> Keys:
        return self.keys


def keyring_from_env(environ: Mapping[str, str] | None = None) -> CursorKeyring:
    """The keyring the API handler uses: the secret when ``RAMPART_CURSOR_KEY_SECRET_ARN`` is set (read with a
    TTL), otherwise the ``RAMPART_CURSOR_KEY*`` variables."""
    env = os.environ if environ is None else environ
    if arn := env.get("RAMPART_CURSOR_KEY_SECRET_ARN"):
        max_age = int(env.get("RAMPART_CURSOR_KEY_MAX_AGE_S") or DEFAULT_MAX_AGE_S)
        return CursorKeyring(SecretKeySource(arn, max_age))
    return CursorKeyring(
        FixedKeySource(
            {
                "current": env.get("RAMPART_CURSOR_KEY", ""),
                "previous": env.get("RAMPART_CURSOR_KEY_PREVIOUS", ""),
                "next": env.get("RAMPART_CURSOR_KEY_NEXT", ""),
            }
        )
    )
