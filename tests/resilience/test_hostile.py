"""Hostile input through the local gateway (the real API handler behind it): every request is answered with a
4xx and an error body, nothing reaches the database as code, and no secret ever appears in a log line."""

from __future__ import annotations

import base64
import http.client
import json
import socket
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from rampart.local.stack import Stack
from tests.e2e.conftest import wait_until

pytestmark = pytest.mark.e2e


def raw_get(
    stack: Stack, target: str, key: str | None = None, body: bytes | None = None
) -> tuple[int, dict[str, str], Any]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=10)
    try:
        headers = {"x-api-key": key if key is not None else stack.api_key.value}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request("GET", target, body=body, headers=headers)
        resp = conn.getresponse()
        raw = resp.read()
        return resp.status, {k.lower(): v for k, v in resp.getheaders()}, json.loads(raw) if raw else None
    finally:
        conn.close()


def assert_refused(status: int, body: Any) -> None:
    assert 400 <= status < 500, (status, body)
    assert isinstance(body, dict)
    if "error" in body:  # the API handler's envelope
        assert set(body["error"]) == {"code", "message", "request_id"}
    else:  # API Gateway's own answer (unknown route, missing key)
        assert set(body) == {"message"}


SQLI = ["' OR '1'='1", "x'; DROP TABLE rampart.events;--", "1 UNION SELECT usename, passwd FROM pg_shadow", "$$; --"]


@pytest.mark.parametrize("value", SQLI)
@pytest.mark.parametrize("param", ["source", "type", "since", "until", "limit", "cursor"])
def test_sql_injection(stack: Stack, param: str, value: str) -> None:
    status, _, body = raw_get(stack, f"/v1/events?{param}={quote(value)}")
    if status == 200:  # a harmless string that simply matches nothing
        assert body["items"] == []
    else:
        assert_refused(status, body)


@pytest.mark.parametrize(
    "target",
    [
        "/v1/events/../../etc/passwd",
        "/v1/events/%2e%2e%2f%2e%2e%2fetc%2fpasswd",
        "/v1/events/..%5c..%5cwindows",
        "/v1/../v1/health/../../admin",
        "/v1/events/%00",
        "/v1//events",
        "/v1/events/" + "a" * 5000,
    ],
)
def test_path_traversal_and_odd_paths(stack: Stack, target: str) -> None:
    status, _, body = raw_get(stack, target)
    assert_refused(status, body)


@pytest.mark.parametrize("limit", ["-1", "0", "501", "9" * 400, "1e3", "ten", "1.5", "0x10", " 5", "\uff15"])
def test_limits(stack: Stack, limit: str) -> None:
    status, _, body = raw_get(stack, f"/v1/events?limit={quote(limit)}")
    assert_refused(status, body)


def test_header_injection_through_a_parameter(stack: Stack) -> None:
    status, headers, body = raw_get(stack, "/v1/events?source=a%0d%0aSet-Cookie:%20pwned=1")
    assert_refused(status, body)
    assert "set-cookie" not in headers


def test_header_injection_through_the_key(stack: Stack) -> None:
    # A raw request, since http.client refuses to send CR/LF inside a header value.
    with socket.create_connection(("127.0.0.1", stack.api_port), timeout=10) as sock:
        sock.sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\nx-api-key: abc\rSet-Cookie: pwned=1\r\n\r\n")
        answer = sock.recv(65536).decode("latin-1")
    assert answer.startswith("HTTP/1.1 4"), answer[:200]
    assert "set-cookie" not in answer.lower()


def test_tampered_and_replayed_cursors(stack: Stack) -> None:
    import uuid  # noqa: PLC0415

    source = f"hostile-{uuid.uuid4().hex[:8]}"
    stack.publish(
        json.dumps(
            {
                "event_id": str(uuid.uuid4()),
                "source": source,
                "type": "hostile.check",
                "occurred_at": f"2026-01-01T00:00:0{i}Z",
                "payload": {},
            }
        )
        for i in range(5)
    )

    def first_page() -> Any:
        status, _, page = raw_get(stack, f"/v1/events?source={source}&limit=2")
        return page if status == 200 and page["next_cursor"] else None

    cursor = wait_until(first_page, timeout=120, interval=0.2)["next_cursor"]
    assert cursor
    body_b64, mac = cursor.split(".")
    decoded = json.loads(base64.urlsafe_b64decode(body_b64 + "=" * (-len(body_b64) % 4)))
    decoded["t"] = "1970-01-01T00:00:00+00:00"
    forged = base64.urlsafe_b64encode(json.dumps(decoded).encode()).rstrip(b"=").decode() + "." + mac
    for target in (
        f"/v1/events?source={source}&cursor={quote(forged)}",
        f"/v1/events?source=other&cursor={quote(cursor)}",  # replayed under other filters
        f"/v1/events?cursor={quote(cursor)}",  # replayed without the filter
        f"/v1/events?source={source}&cursor={quote(cursor[:-3])}",
        f"/v1/events?source={source}&cursor={quote('{' * 300)}",
    ):
        status, _, body = raw_get(stack, target)
        assert_refused(status, body)
        assert body["error"]["code"] in ("invalid_cursor", "invalid_parameter")


def test_deeply_nested_and_oversized_bodies(stack: Stack) -> None:
    for body in (b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000, b"x" * 900_000):
        status, _, answer = raw_get(stack, "/v1/events", body=body)
        assert_refused(status, answer)
    status, _, answer = raw_get(stack, "/v1/events", body=b"x" * (2 * 1024 * 1024))
    assert status == 413


@pytest.mark.parametrize("target", ["/v1/events?source=%FF%FE", "/v1/events?%C3%28=1", "/v1/events/%ED%A0%80"])
def test_invalid_utf8(stack: Stack, target: str) -> None:
    status, _, body = raw_get(stack, target)
    assert_refused(status, body)


def test_keys_are_required_and_never_leak(stack: Stack) -> None:
    for key in ("", "wrong", stack.api_key.value + "x", stack.api_key.value.upper()):
        status, _, body = raw_get(stack, "/v1/health", key=key)
        assert (status, body) == (403, {"message": "Forbidden"})


def test_no_secret_in_any_log_line(stack: Stack) -> None:
    """Every log the stack writes, PostgreSQL's server log included, after traffic that touches every secret.

    The test makes its own traffic (it does not rely on running after the other tests of this module): requests
    with the right key, a wrong key and a key-like value in a parameter; cursors; an event with a poison record.
    """
    assert stack.postgres is not None
    key = stack.api_key.value
    for target, with_key in (
        ("/v1/health", key),
        ("/v1/events?limit=1", key),
        (f"/v1/events?source={quote(key)}", key),  # a key where a parameter goes: refused, never echoed
        ("/v1/health", key + "x"),
        ("/v1/nothing", key),
    ):
        raw_get(stack, target, key=with_key)
    stack.publish([json.dumps({"event_id": "x", "password": stack.postgres.passwords["rampart_ingest"]})])
    import uuid  # noqa: PLC0415

    source = f"logscan-{uuid.uuid4().hex[:8]}"
    stack.publish(
        json.dumps({"event_id": str(uuid.uuid4()), "source": source, "type": "log.scan",
                    "occurred_at": f"2026-01-01T00:00:0{i}Z", "payload": {}})
        for i in range(3)
    )  # fmt: skip
    wait_until(lambda: raw_get(stack, f"/v1/events?source={source}&limit=2")[2].get("next_cursor"), timeout=60)
    secrets = {
        *stack.postgres.passwords.values(),
        *(k.value for k in stack.config.api_keys),
        stack.cursor_key,
    }
    postgres_log = stack.postgres.pgdata.parent / "postgres.log"
    assert postgres_log.is_file(), "PostgreSQL's server log is not where the stack puts it"
    logs = [p for p in Path(stack.logs_dir).rglob("*") if p.is_file()] + [postgres_log]
    scanned = 0
    for path in logs:
        for line in path.read_text(encoding="utf-8", errors="replace").splitlines():
            scanned += 1
            for secret in secrets:
                assert secret not in line, f"a secret appears in {path.name}"
    assert scanned > 0
