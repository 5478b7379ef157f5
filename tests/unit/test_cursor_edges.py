"""Edges of the cursor format that mutation testing (make mutation, docs/mutation.md) showed were unpinned: the
length limit, the MAC length, the key-length floor, the version check, which key signs, and the digest format
(cursors issued before a deploy must still verify after it)."""

from __future__ import annotations

import base64
import datetime as dt
import json
import uuid

import pytest

from rampart.api.cursor import MAX_CURSOR_LENGTH, CursorCodec, InvalidCursorError, filters_digest

KEY, OTHER = b"k" * 32, b"o" * 32
T = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def _signed(codec: CursorCodec, body: dict[str, object]) -> str:
    raw = json.dumps(body, separators=(",", ":")).encode()
    return f"{_b64(raw)}.{_b64(codec._mac(KEY, raw))}"


def test_the_length_limit_is_exactly_512_characters() -> None:
    codec = CursorCodec([KEY])
    at_limit = "A" * (MAX_CURSOR_LENGTH - 24) + "." + "B" * 23  # both parts decode as base64
    assert len(at_limit) == MAX_CURSOR_LENGTH == 512
    with pytest.raises(InvalidCursorError, match="signature does not verify"):  # long enough to be checked
        codec.decode(at_limit, "d")
    with pytest.raises(InvalidCursorError, match="malformed cursor"):  # one more: refused before any work
        codec.decode("A" * 492 + "." + "B" * 20, "d")  # 513 characters, both parts valid base64


def test_the_mac_is_16_bytes_of_hmac_sha256() -> None:
    cursor = CursorCodec([KEY]).encode(T, uuid.UUID(int=1), "d")
    _body, mac = cursor.split(".")
    assert len(base64.urlsafe_b64decode(mac + "==")) == 16


def test_keys_of_32_bytes_are_accepted_and_31_refused() -> None:
    CursorCodec([b"x" * 32])
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CursorCodec([b"x" * 31])
    with pytest.raises(ValueError, match="at least 32 bytes"):
        CursorCodec([])


def test_the_current_key_signs_and_the_previous_only_verifies() -> None:
    rotating = CursorCodec([KEY, OTHER])
    cursor = rotating.encode(T, uuid.UUID(int=2), "d")
    assert CursorCodec([KEY]).decode(cursor, "d") == (T, uuid.UUID(int=2))
    with pytest.raises(InvalidCursorError):
        CursorCodec([OTHER]).decode(cursor, "d")


@pytest.mark.parametrize("version", [0, 2, "1", None])
def test_only_version_1_is_understood(version: object) -> None:
    codec = CursorCodec([KEY])
    cursor = _signed(codec, {"v": version, "t": T.isoformat(), "i": str(uuid.UUID(int=3)), "f": "d"})
    with pytest.raises(InvalidCursorError):
        codec.decode(cursor, "d")
    assert codec.decode(_signed(codec, {"v": 1, "t": T.isoformat(), "i": str(uuid.UUID(int=3)), "f": "d"}), "d")


def test_the_filters_digest_format_is_stable() -> None:
    # Part of the cursor format: a different length or hash would refuse every cursor in flight after a deploy.
    expected = "b0fcc6ad3557f97c"  # pragma: allowlist secret - the digest of public test values
    assert filters_digest("billing", None) == expected
    assert filters_digest("a", None) != filters_digest(None, "a")
