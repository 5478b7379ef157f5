"""Opaque, tamper-evident keyset cursors over (occurred_at, event_id).

A cursor is ``base64url(json) + "." + base64url(HMAC-SHA256(key, json)[:16])``. The JSON holds the last row's
position and a digest of the filters it was issued under, so a cursor replayed under other filters is refused.
The first key signs; every key verifies (during a rotation: the current, previous and next keys, see
rampart.api.cursor_keys).
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import hashlib
import hmac
import json
import uuid
from collections.abc import Sequence

MAX_CURSOR_LENGTH = 512
_MAC_BYTES = 16


class InvalidCursorError(ValueError):
    """The cursor is malformed, forged, or was issued for other filters."""


class CursorSignatureError(InvalidCursorError):
    """The cursor's signature verifies with none of the keys (forged, or signed with a key not known here yet)."""


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def filters_digest(*values: object) -> str:
    canonical = json.dumps([None if v is None else str(v) for v in values], separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]


class CursorCodec:
    def __init__(self, keys: Sequence[bytes]) -> None:
        if not keys or any(len(k) < 32 for k in keys):
            raise ValueError("cursor keys must be at least 32 bytes")
        self._keys = list(keys)

    def _mac(self, key: bytes, body: bytes) -> bytes:
        return hmac.new(key, body, hashlib.sha256).digest()[:_MAC_BYTES]

    def encode(self, occurred_at: dt.datetime, event_id: uuid.UUID | str, digest: str) -> str:
        body = json.dumps(
            {"v": 1, "t": occurred_at.isoformat(), "i": str(event_id), "f": digest}, separators=(",", ":")
        ).encode("utf-8")
        return f"{_b64e(body)}.{_b64e(self._mac(self._keys[0], body))}"

    def decode(self, cursor: str, digest: str) -> tuple[dt.datetime, uuid.UUID]:
        if len(cursor) > MAX_CURSOR_LENGTH or cursor.count(".") != 1:
            raise InvalidCursorError("malformed cursor")
        body_b64, mac_b64 = cursor.split(".")
        try:
            body, mac = _b64d(body_b64), _b64d(mac_b64)
        except (binascii.Error, ValueError):
            raise InvalidCursorError("malformed cursor") from None
        if not any(hmac.compare_digest(mac, self._mac(key, body)) for key in self._keys):
            raise CursorSignatureError("cursor signature does not verify")
        try:
            data = json.loads(body)
            if data.get("v") != 1:
                raise InvalidCursorError("unsupported cursor version")
            position = dt.datetime.fromisoformat(data["t"]), uuid.UUID(data["i"])
            issued_for = data["f"]
        except (ValueError, KeyError, TypeError, AttributeError):
            raise InvalidCursorError("malformed cursor") from None
        if not hmac.compare_digest(str(issued_for), digest):
            raise InvalidCursorError("cursor was issued for different filters")
        return position
