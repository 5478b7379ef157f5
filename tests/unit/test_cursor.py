import base64
import datetime as dt
import json
import uuid

import pytest

from rampart.api.cursor import CursorCodec, InvalidCursorError, filters_digest

KEY = b"k" * 32
OTHER = b"o" * 32
POS = (dt.datetime(2026, 1, 1, tzinfo=dt.UTC), uuid.UUID("00000000-0000-4000-8000-000000000001"))


def test_round_trip() -> None:
    codec = CursorCodec([KEY])
    digest = filters_digest("billing", None, None, None)
    assert codec.decode(codec.encode(*POS, digest), digest) == POS


def test_short_keys_refused() -> None:
    with pytest.raises(ValueError):
        CursorCodec([b"short"])
    with pytest.raises(ValueError):
        CursorCodec([])


def test_tampered_body_is_refused() -> None:
    codec = CursorCodec([KEY])
    digest = filters_digest(None)
    body_b64, mac = codec.encode(*POS, digest).split(".")
    body = json.loads(base64.urlsafe_b64decode(body_b64 + "=" * (-len(body_b64) % 4)))
    body["t"] = "2020-01-01T00:00:00+00:00"
    forged = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    with pytest.raises(InvalidCursorError, match="signature"):
        codec.decode(f"{forged}.{mac}", digest)


def test_cursor_signed_with_another_key_is_refused() -> None:
    digest = filters_digest(None)
    cursor = CursorCodec([OTHER]).encode(*POS, digest)
    with pytest.raises(InvalidCursorError, match="signature"):
        CursorCodec([KEY]).decode(cursor, digest)


def test_previous_key_still_verifies_during_rotation() -> None:
    digest = filters_digest(None)
    old_cursor = CursorCodec([KEY]).encode(*POS, digest)
    assert CursorCodec([OTHER, KEY]).decode(old_cursor, digest) == POS


def test_replay_under_other_filters_is_refused() -> None:
    codec = CursorCodec([KEY])
    cursor = codec.encode(*POS, filters_digest("billing", None, None, None))
    with pytest.raises(InvalidCursorError, match="different filters"):
        codec.decode(cursor, filters_digest("shipping", None, None, None))


@pytest.mark.parametrize("garbage", ["", ".", "abc", "a.b.c", "!!!.???", "x" * 600, "e30.AAAA", "bm90anNvbg.AA"])
def test_garbage_is_refused(garbage: str) -> None:
    with pytest.raises(InvalidCursorError):
        CursorCodec([KEY]).decode(garbage, filters_digest(None))


def test_validly_signed_but_malformed_body_is_refused() -> None:
    codec = CursorCodec([KEY])
    for body in (b"[]", b'{"v":2}', b'{"v":1,"t":"x","i":"y","f":"z"}', b"\xff"):
        mac = codec._mac(KEY, body)
        token = (
            base64.urlsafe_b64encode(body).rstrip(b"=").decode()
            + "."
            + base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
        )
        with pytest.raises(InvalidCursorError):
            codec.decode(token, filters_digest(None))
