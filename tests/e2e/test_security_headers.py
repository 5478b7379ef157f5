"""Security headers, read from real HTTP responses of the local gateway (the real API handler behind it).

The expected values are written out here, not taken from the handler's constant: emptying or weakening
SECURITY_HEADERS in src/rampart/api/handler.py must make this test fail.
"""

from __future__ import annotations

import http.client
import uuid

import pytest

from rampart.local.stack import Stack

pytestmark = pytest.mark.e2e

EXPECTED = {
    "strict-transport-security": "max-age=63072000; includeSubDomains; preload",
    "x-content-type-options": "nosniff",
    "cache-control": "no-store",
    "content-security-policy": "default-src 'none'; frame-ancestors 'none'",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "cross-origin-resource-policy": "same-origin",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}


def _get(stack: Stack, target: str) -> tuple[int, dict[str, list[str]]]:
    conn = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=30)
    try:
        conn.request("GET", target, headers={"x-api-key": stack.api_key.value})
        resp = conn.getresponse()
        resp.read()
        headers: dict[str, list[str]] = {}
        for name, value in resp.getheaders():
            headers.setdefault(name.lower(), []).append(value)
        return resp.status, headers
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("target", "status"),
    [
        ("/v1/health", 200),  # success
        ("/v1/events?limit=2", 200),
        ("/v1/events?limit=0", 400),  # the handler's validation error
        ("/v1/events?nope=1", 400),  # an unknown parameter, refused before routing
        ("/v1/events?source=a%00b", 400),  # refused by the pre-check, before the resolver
        (f"/v1/events/{uuid.UUID(int=0)}", 404),
    ],
)
def test_every_answer_of_the_api_carries_the_security_headers(stack: Stack, target: str, status: int) -> None:
    got, headers = _get(stack, target)
    assert got == status
    for name, value in EXPECTED.items():
        assert headers.get(name) == [value], (name, headers.get(name))
    assert headers["content-type"][0].startswith("application/json")
    assert not [h for h in headers if h.startswith("access-control-")], "no CORS: the API serves no browser"


def test_permissions_policy_is_valid_structured_header_syntax(stack: Stack) -> None:
    # A dictionary of feature = empty allowlist "()" (W3C Permissions Policy); a bare "()" is not valid.
    _, headers = _get(stack, "/v1/health")
    (policy,) = headers["permissions-policy"]
    members = [m.strip() for m in policy.split(",")]
    assert members and all(m.partition("=")[0].isidentifier() and m.partition("=")[2] == "()" for m in members)
