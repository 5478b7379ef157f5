"""The local API gateway: usage plans, key checks, routing and the REST proxy event it builds (in-process), then
over a real socket: strict HTTP framing, bounded connections, the security headers on its own answers, worker
processes (one invocation per execution environment, timeouts, crashes) and Lambda's 6 MB response limit."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import hcl2
import pytest

from rampart.api.openapi import openapi_json
from rampart.keys import UsagePlan
from rampart.local.gateway import (
    GATEWAY_RESPONSE_HEADERS,
    ActiveKey,
    ApiGateway,
    ApiKey,
    GatewayRequest,
    GatewayServer,
    RefreshingKeys,
    StaticKeys,
    TokenBucket,
    UsagePlanLimiter,
    request_framing,
    routes_from_openapi,
    start_in_thread,
)
from rampart.local.workers import MAX_RESPONSE_PAYLOAD_BYTES, LambdaWorkerPool, ThreadInvoker, WorkerStartError

GATEWAY_RESPONSES_TF = Path(__file__).resolve().parents[2] / "iac" / "modules" / "api" / "gateway_responses.tf"


def terraform_gateway_response_headers() -> dict[str, str]:
    """The headers every API Gateway gateway response carries in the Terraform (local.gateway_security_headers)."""
    with GATEWAY_RESPONSES_TF.open(encoding="utf-8") as f:
        parsed = hcl2.load(f)
    [headers] = [block["gateway_security_headers"] for block in parsed["locals"] if "gateway_security_headers" in block]
    return {name.strip('"'): value.strip('"') for name, value in headers.items()}


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def wait_until(condition: Any, timeout: float = 20.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)


# -- usage plans -------------------------------------------------------------------------------------------------------
def test_token_bucket_allows_the_burst_then_refills_at_the_rate() -> None:
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=5, clock=clock)
    assert [bucket.try_take() for _ in range(6)] == [True] * 5 + [False]
    clock.now += 0.4  # 0.8 of a token: still nothing
    assert not bucket.try_take()
    clock.now += 0.1  # one full token
    assert bucket.try_take()
    assert not bucket.try_take()
    clock.now += 100  # refill caps at the burst
    assert [bucket.try_take() for _ in range(6)] == [True] * 5 + [False]


def test_usage_plan_throttles_each_key_separately() -> None:
    clock = Clock()
    plan = UsagePlan(rate=1, burst=2)
    limiter = UsagePlanLimiter(clock=clock)
    assert [limiter.admit("a", plan) for _ in range(3)] == ["ok", "ok", "throttled"]
    assert limiter.admit("b", plan) == "ok"


def test_a_changed_plan_takes_effect_for_the_key() -> None:
    clock = Clock()
    limiter = UsagePlanLimiter(clock=clock)
    assert [limiter.admit("a", UsagePlan(rate=1, burst=1)) for _ in range(2)] == ["ok", "throttled"]
    assert limiter.admit("a", UsagePlan(rate=1, burst=5)) == "ok"


def test_daily_quota_counts_admitted_requests_and_resets_at_utc_midnight() -> None:
    clock = Clock()
    wall = Clock(dt.datetime(2026, 3, 1, 23, 59, 58, tzinfo=dt.UTC).timestamp())
    plan = UsagePlan(rate=1000, burst=1000, quota_per_day=3)
    limiter = UsagePlanLimiter(clock=clock, wall_clock=wall)
    assert [limiter.admit("q", plan) for _ in range(5)] == ["ok", "ok", "ok", "quota", "quota"]
    wall.now += 3  # 00:00:01 the next day
    assert [limiter.admit("q", plan) for _ in range(4)] == ["ok", "ok", "ok", "quota"]


def test_throttled_requests_do_not_use_the_quota() -> None:
    clock = Clock()
    plan = UsagePlan(rate=1, burst=1, quota_per_day=2)
    limiter = UsagePlanLimiter(clock=clock)
    assert [limiter.admit("q", plan) for _ in range(3)] == ["ok", "throttled", "throttled"]
    clock.now += 1
    assert limiter.admit("q", plan) == "ok"
    clock.now += 1
    assert limiter.admit("q", plan) == "quota"


def test_routes_come_from_the_openapi_document() -> None:
    routes = routes_from_openapi(json.loads(openapi_json()))
    assert {r.resource for r in routes} == {"/v1/events", "/v1/events/{event_id}", "/v1/stats", "/v1/health"}
    assert all(r.methods == frozenset({"GET"}) for r in routes)


# -- keys held in API Gateway: re-read, never cached for long ----------------------------------------------------------
class KeyTable:
    """What API Gateway holds (the loader of RefreshingKeys reads it); counts the reads."""

    def __init__(self, *keys: ActiveKey) -> None:
        self.keys = list(keys)
        self.reads = 0
        self.fail = False

    def __call__(self) -> list[ActiveKey]:
        self.reads += 1
        if self.fail:
            raise ConnectionError("emulator down")
        return list(self.keys)


PLAN = UsagePlan(rate=100, burst=100)


def test_a_new_key_is_accepted_at_once_and_a_removed_key_stops_within_the_refresh() -> None:
    table = KeyTable(ActiveKey("k1", "v" * 20, PLAN))
    keys = RefreshingKeys(table, refresh_s=0.05).start()
    try:
        assert keys.authorize("v" * 20) is not None
        assert keys.authorize("w" * 20) is None
        table.keys.append(ActiveKey("k2", "w" * 20, PLAN))
        # An unknown value makes the gateway read the keys again before answering: no wait for the next refresh.
        found = keys.authorize("w" * 20)
        assert found is not None and found.key_id == "k2"
        table.keys = [k for k in table.keys if k.key_id != "k1"]  # revoked
        wait_until(lambda: keys.authorize("v" * 20) is None, timeout=10)
    finally:
        keys.close()


def test_without_reads_the_keys_expire_and_nothing_is_accepted() -> None:
    clock = Clock(0.0)
    table = KeyTable(ActiveKey("k1", "v" * 20, PLAN))
    keys = RefreshingKeys(table, refresh_s=0.02, max_stale_s=30, clock=clock, miss_wait_s=0.5).start()
    try:
        table.fail = True
        clock.now = 29.0
        assert keys.authorize("v" * 20) is not None  # last good read, still fresh enough
        clock.now = 31.0
        assert keys.authorize("v" * 20) is None  # fail closed
    finally:
        keys.close()


def test_a_flood_of_unknown_keys_does_not_flood_the_emulator() -> None:
    table = KeyTable(ActiveKey("k1", "v" * 20, PLAN))
    keys = RefreshingKeys(table, refresh_s=10, min_gap_s=0.1).start()
    try:
        started = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            answers = list(pool.map(lambda i: keys.authorize(f"unknown-{i:020d}"), range(200)))
        elapsed = time.monotonic() - started
        assert answers == [None] * 200
        # Each read serves every request that arrived before it started: at most one read per min_gap.
        assert table.reads <= 2 + elapsed / 0.1
    finally:
        keys.close()


# -- the gateway in-process --------------------------------------------------------------------------------------------
class Recorder:
    """Stands in for the Lambda function in these unit tests: records the event, answers as told."""

    def __init__(self, answer: Any = None, error: Exception | None = None, delay: float = 0.0) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.answer = answer if answer is not None else {"statusCode": 200, "headers": {}, "body": "{}"}
        self.error = error
        self.delay = delay

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        if self.delay:
            time.sleep(self.delay)
        if self.error:
            raise self.error
        return self.answer


KEY = ApiKey("abc123defg", "the-right-key-0123456789", "main", UsagePlan(rate=100, burst=100))


def gateway(handler: Recorder, keys: list[ApiKey] | None = None, timeout: float = 2) -> ApiGateway:
    return ApiGateway(
        ThreadInvoker(handler), StaticKeys(keys or [KEY]), openapi_json(), stage="local", integration_timeout_s=timeout
    )


def get(gw: ApiGateway, target: str, **headers: str) -> tuple[int, dict[str, str], Any]:
    request = GatewayRequest("GET", target, [("Host", "127.0.0.1:8080"), *headers.items()], source_ip="127.0.0.9")
    response = gw.handle(request)
    return response.status, dict(response.headers), json.loads(response.body) if response.body else None


def test_missing_wrong_or_repeated_key_is_forbidden_and_never_reaches_the_function() -> None:
    handler = Recorder()
    gw = gateway(handler)
    try:
        assert get(gw, "/v1/events")[0::2] == (403, {"message": "Forbidden"})
        assert get(gw, "/v1/events", **{"x-api-key": "nope"})[0] == 403
        assert get(gw, "/v1/events", **{"x-api-key": ""})[0] == 403
        repeated = GatewayRequest("GET", "/v1/events", [("x-api-key", KEY.value), ("X-Api-Key", KEY.value)])
        assert gw.handle(repeated).status == 403
        assert handler.events == []
    finally:
        gw.close()


def test_unknown_resources_and_methods_get_missing_authentication_token() -> None:
    handler = Recorder()
    gw = gateway(handler)
    try:
        for target in ("/", "/v1", "/v2/events", "/v1/events/a/b", "/v1/events/"):
            status, headers, body = get(gw, target, **{"x-api-key": KEY.value})
            assert (status, body) == (403, {"message": "Missing Authentication Token"}), target
            assert headers["x-amzn-ErrorType"] == "MissingAuthenticationTokenException"
        post = GatewayRequest("POST", "/v1/events", [("x-api-key", KEY.value)], body=b"{}")
        assert gw.handle(post).status == 403
        assert handler.events == []
    finally:
        gw.close()


def test_the_rest_proxy_event_has_the_api_gateway_v1_shape() -> None:
    handler = Recorder()
    gw = gateway(handler)
    try:
        status, headers, _ = get(
            gw, "/v1/events/1b4e28ba-2fa1-11d2-883f-0016d3cca427?a=1&b=x%20y&a=2&empty=", **{"x-api-key": KEY.value}
        )
        assert status == 200
        event = handler.events[0]
        assert event["resource"] == "/v1/events/{event_id}"
        assert event["path"] == "/v1/events/1b4e28ba-2fa1-11d2-883f-0016d3cca427"
        assert event["httpMethod"] == "GET"
        assert event["pathParameters"] == {"event_id": "1b4e28ba-2fa1-11d2-883f-0016d3cca427"}
        assert event["queryStringParameters"] == {"a": "2", "b": "x y", "empty": ""}
        assert event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x y"], "empty": [""]}
        assert event["headers"]["x-api-key"] == KEY.value
        assert event["multiValueHeaders"]["Host"] == ["127.0.0.1:8080"]
        assert event["headers"]["X-Forwarded-For"] == "127.0.0.9"
        assert event["body"] is None and event["isBase64Encoded"] is False and event["stageVariables"] is None
        ctx = event["requestContext"]
        assert ctx["stage"] == "local" and ctx["resourcePath"] == "/v1/events/{event_id}"
        assert ctx["identity"]["apiKey"] == KEY.value and ctx["identity"]["apiKeyId"] == KEY.key_id
        assert ctx["identity"]["sourceIp"] == "127.0.0.9"
        assert ctx["requestId"] == headers["x-amzn-RequestId"]
        assert isinstance(ctx["requestTimeEpoch"], int)
        assert handler.contexts[0].get_remaining_time_in_millis() > 0
        # No query string: both query fields are null, as API Gateway sends them.
        get(gw, "/v1/health", **{"x-api-key": KEY.value})
        assert handler.events[1]["queryStringParameters"] is None
        assert handler.events[1]["multiValueQueryStringParameters"] is None
        assert handler.events[1]["pathParameters"] is None
    finally:
        gw.close()


@pytest.mark.parametrize(
    "handler",
    [
        Recorder(error=RuntimeError("boom")),
        Recorder(answer={"statusCode": "200"}),
        Recorder(answer={"statusCode": True}),
        Recorder(answer={"statusCode": 200, "body": 42}),
        Recorder(answer={"statusCode": 200, "headers": {"X-Evil": "a\r\nSet-Cookie: x=1"}, "body": ""}),
        Recorder(answer={"statusCode": 200, "headers": {"Bad Name": "x"}, "body": ""}),
        Recorder(answer={"statusCode": 200, "headers": {"X-Wide": "\u2603"}, "body": ""}),
        Recorder(answer={"statusCode": 200, "body": "x", "extra": {1, 2}}),  # not JSON: the runtime's MarshalError
        Recorder(answer=["not", "a", "dict"]),
    ],
    ids=["raises", "status-text", "status-bool", "body-int", "crlf", "bad-name", "non-latin1", "set", "list"],
)
def test_function_errors_and_malformed_responses_are_502_and_headers_cannot_be_split(handler: Recorder) -> None:
    gw = gateway(handler)
    try:
        status, headers, body = get(gw, "/v1/health", **{"x-api-key": KEY.value})
        assert (status, body) == (502, {"message": "Internal server error"})
        assert headers["x-amzn-ErrorType"] == "InternalServerErrorException"
    finally:
        gw.close()


def test_the_functions_response_is_passed_through() -> None:
    answer = {
        "statusCode": 503,
        "headers": {"Retry-After": "5"},
        "multiValueHeaders": {"X-Multi": ["a", "b"]},
        "body": json.dumps({"error": {"code": "unavailable", "message": "m", "request_id": "r"}}),
        "isBase64Encoded": False,
    }
    gw = gateway(Recorder(answer=answer))
    try:
        response = gw.handle(GatewayRequest("GET", "/v1/health", [("x-api-key", KEY.value)]))
        assert response.status == 503
        assert ("Retry-After", "5") in response.headers
        assert [v for k, v in response.headers if k == "X-Multi"] == ["a", "b"]
        assert json.loads(response.body)["error"]["code"] == "unavailable"
    finally:
        gw.close()


def test_throttling_and_quota_answers() -> None:
    keys = [
        ApiKey("t", "t" * 24, plan=UsagePlan(rate=0.001, burst=2)),
        ApiKey("q", "q" * 24, plan=UsagePlan(rate=100, burst=100, quota_per_day=1)),
    ]
    handler = Recorder()
    gw = gateway(handler, keys)
    try:
        assert [get(gw, "/v1/health", **{"x-api-key": "t" * 24})[0] for _ in range(3)] == [200, 200, 429]
        assert get(gw, "/v1/health", **{"x-api-key": "t" * 24})[2] == {"message": "Too Many Requests"}
        assert get(gw, "/v1/health", **{"x-api-key": "q" * 24})[0] == 200
        assert get(gw, "/v1/health", **{"x-api-key": "q" * 24})[0::2] == (429, {"message": "Limit Exceeded"})
        assert len(handler.events) == 3
    finally:
        gw.close()


def test_the_openapi_document_is_served_without_a_key() -> None:
    gw = gateway(Recorder())
    try:
        response = gw.handle(GatewayRequest("GET", "/v1/openapi.json", []))
        assert response.status == 200 and response.body.decode() == openapi_json()
    finally:
        gw.close()


def test_the_security_headers_have_valid_values() -> None:
    # Literally what the API's gateway responses carry in Terraform (read from the HCL: the twin cannot drift).
    assert terraform_gateway_response_headers() == GATEWAY_RESPONSE_HEADERS
    assert GATEWAY_RESPONSE_HEADERS["Strict-Transport-Security"] == "max-age=63072000; includeSubDomains; preload"
    assert GATEWAY_RESPONSE_HEADERS["X-Frame-Options"] == "DENY"
    assert GATEWAY_RESPONSE_HEADERS["Content-Security-Policy"] == "default-src 'none'; frame-ancestors 'none'"
    assert GATEWAY_RESPONSE_HEADERS["X-Content-Type-Options"] == "nosniff"
    # Permissions-Policy is a structured-field dictionary: feature=(allowlist); "()" alone is not valid.
    import re  # noqa: PLC0415

    items = [i.strip() for i in GATEWAY_RESPONSE_HEADERS["Permissions-Policy"].split(",")]
    assert items and all(re.fullmatch(r"[a-z-]+=\(\)", i) for i in items)


# -- over a real socket ------------------------------------------------------------------------------------------------
@pytest.fixture
def served() -> Iterator[tuple[GatewayServer, Recorder]]:
    handler = Recorder()
    gw = gateway(handler)
    server, thread = start_in_thread(gw)
    try:
        yield server, handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        gw.close()


def _raw(port: int, data: bytes, timeout: float = 10) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


def _responses(raw: bytes) -> list[tuple[int, dict[str, str], bytes]]:
    """Every HTTP response in ``raw`` (Content-Length framed)."""
    out = []
    while raw:
        head, _, rest = raw.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ")[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length", "0"))
        out.append((status, headers, rest[:length]))
        raw = rest[length:]
    return out


GOOD = f"GET /v1/health HTTP/1.1\r\nHost: 127.0.0.1\r\nx-api-key: {KEY.value}\r\n".encode()
SMUGGLED = b"GET /v1/health HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"GARBAGE\r\n\r\n", 400, "Bad Request"),
        (b"GET /v1/health\r\n\r\n", 400, "Bad Request"),  # HTTP/0.9: no status line would come back
        (b"GET /v1/health HTTP/2.0\r\n\r\n", 400, "Bad Request"),  # http.server alone says 505
        (b"GET /v1/health HTTP/1.1 extra\r\n\r\n", 400, "Bad Request"),
        (b"GET  /v1/health HTTP/1.1\r\n\r\n", 400, "Bad Request"),
        (b"GET http://[::1/v1/health HTTP/1.1\r\n\r\n", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413, "Request Too Long"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 99999999999999999999999\r\n\r\n", 413, "Request Too Long"),
        (b"GET /v1/health HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431, "Request Header Fields Too Large"),
        (b"GET /v1/health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 411, "Length Required"),
        (b"GET /v1/health HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n0\r\n\r\n", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nTransfer-Encoding: identity\r\n\r\n", 400, "Bad Request"),
        (
            b"GET /v1/health HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n\r\n0\r\n\r\n",
            400,
            "Bad Request",
        ),
        (
            b"GET /v1/health HTTP/1.1\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
            400,
            "Bad Request",
        ),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 37\r\n\r\n" + SMUGGLED, 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 5, 5\r\n\r\nhello", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: +5\r\n\r\nhello", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: -1\r\n\r\n", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 0x5\r\n\r\nhello", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 5_0\r\n\r\nhello", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: \xd9\xa5\r\n\r\nhello", 400, "Bad Request"),  # Arabic 5
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 5\x0b\r\n\r\nhello", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: \xa05\r\n\r\nhello", 400, "Bad Request"),  # NBSP: int() takes it
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: \x0c5\r\n\r\nhello", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length:\r\n\r\n", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length : 37\r\n\r\n" + SMUGGLED, 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nX-A: 1\r\n Content-Length: 37\r\n\r\n" + SMUGGLED, 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nno colon here\r\nContent-Length: 37\r\n\r\n" + SMUGGLED, 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\n Content-Length: 37\r\n\r\n" + SMUGGLED, 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 10\r\n\r\nshort", 400, "Bad Request"),  # then closes
        (b"BREW /v1/<script> HTTP/1.1\r\n\r\n", 403, "Missing Authentication Token"),
    ],
    ids=lambda v: None if isinstance(v, bytes) else str(v),
)
def test_malformed_framing_is_refused_with_a_json_4xx_that_echoes_nothing(
    served: tuple[GatewayServer, Recorder], request_bytes: bytes, status: int, message: str
) -> None:
    server, handler = served
    if request_bytes.endswith(b"short"):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
            sock.sendall(request_bytes)
            sock.shutdown(socket.SHUT_WR)  # the client stops sending before the announced length
            raw = b""
            while chunk := sock.recv(65536):
                raw += chunk
    else:
        raw = _raw(server.port, request_bytes)
    answers = _responses(raw)
    assert len(answers) == 1, raw[:300]  # one answer: nothing smuggled behind it was served
    got, headers, body = answers[0]
    assert got == status
    assert json.loads(body) == {"message": message}
    assert headers["connection"] == "close"
    for name, value in GATEWAY_RESPONSE_HEADERS.items():
        assert headers[name.lower()] == value, name
    for echo in (b"GARBAGE", b"script", b"BREW", b"gzip", b"hello", b"0x5"):
        assert echo not in raw
    assert handler.events == []
    # The server is still fine.
    assert _responses(_raw(server.port, GOOD + b"Connection: close\r\n\r\n"))[0][0] == 200


def test_a_request_head_cut_off_by_the_end_of_the_stream_is_not_served(
    served: tuple[GatewayServer, Recorder],
) -> None:
    server, handler = served
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(GOOD)  # no empty line after the headers
        sock.shutdown(socket.SHUT_WR)
        raw = b""
        while chunk := sock.recv(65536):
            raw += chunk
    assert [a[0] for a in _responses(raw)] == [400]
    assert handler.events == []


def test_mime_oddities_are_not_framing_errors(served: tuple[GatewayServer, Recorder]) -> None:
    # The header parser is an e-mail parser: a multipart type without a boundary is a MIME defect, not HTTP's.
    server, handler = served
    raw = _raw(server.port, GOOD + b"Content-Type: multipart/form-data\r\nContent-Length: 2\r\n\r\n{}")
    assert [a[0] for a in _responses(raw)] == [200]
    assert handler.events[0]["body"] == "{}"


@pytest.mark.parametrize("length", [b"5", b" 5", b"5 ", b"\t5\t", b"005"])
def test_a_well_formed_content_length_is_read_exactly(served: tuple[GatewayServer, Recorder], length: bytes) -> None:
    server, handler = served
    raw = _raw(server.port, GOOD + b"Content-Length:" + length + b"\r\n\r\nhello")
    assert [a[0] for a in _responses(raw)] == [200]
    assert handler.events[0]["body"] == "hello"


def test_every_answer_of_the_gateway_itself_carries_the_security_headers() -> None:
    keys = [KEY, ApiKey("t", "t" * 24, plan=UsagePlan(rate=0.001, burst=1))]
    gw = gateway(Recorder(error=RuntimeError("x")), keys)
    slow = gateway(Recorder(delay=1.0), timeout=0.2)
    servers = [start_in_thread(g) for g in (gw, slow)]
    try:
        port, slow_port = servers[0][0].port, servers[1][0].port
        cases = [
            (port, "/nope", {}, 403),
            (port, "/v1/health", {}, 403),
            (port, "/v1/health", {"x-api-key": "t" * 24}, 502),  # first request: the function raises
            (port, "/v1/health", {"x-api-key": "t" * 24}, 429),
            (slow_port, "/v1/health", {"x-api-key": KEY.value}, 504),
        ]
        for p, path, headers, status in cases:
            conn = http.client.HTTPConnection("127.0.0.1", p, timeout=10)
            conn.request("GET", path, headers=headers)
            response = conn.getresponse()
            response.read()
            conn.close()
            assert response.status == status, path
            for name, value in GATEWAY_RESPONSE_HEADERS.items():
                assert response.getheader(name) == value, (status, name)
        raw = _raw(port, b"GET /v1/health HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n")
        assert _responses(raw)[0][1]["x-frame-options"] == "DENY"
    finally:
        for server, thread in servers:
            server.shutdown()
            server.server_close()
            thread.join(5)
        gw.close()
        slow.close()


def test_requests_are_served_one_per_connection(served: tuple[GatewayServer, Recorder]) -> None:
    server, _ = served
    conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    for _ in range(3):  # http.client reopens after werkzeug's "Connection: close"
        conn.request("GET", "/v1/health", headers={"x-api-key": KEY.value})
        response = conn.getresponse()
        assert response.status == 200
        assert response.getheader("Connection") == "close"
        response.read()
    conn.close()


def test_connections_are_capped_and_excess_ones_wait_instead_of_failing() -> None:
    handler = Recorder(delay=0.2)
    gw = ApiGateway(ThreadInvoker(handler, size=32), StaticKeys([KEY]), openapi_json(), integration_timeout_s=20)
    server, thread = start_in_thread(gw, max_connections=4)
    try:

        def call(i: int) -> int:
            conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
            conn.request("GET", f"/v1/events?i={i}", headers={"x-api-key": KEY.value})
            status = conn.getresponse().status
            conn.close()
            return status

        with ThreadPoolExecutor(20) as pool:
            statuses = list(pool.map(call, range(20)))
        assert statuses == [200] * 20
        assert server.peak_connections == 4  # never more threads than the cap, and the cap was reached
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        gw.close()


def test_slow_or_idle_connections_cannot_hold_the_slots() -> None:
    gw = gateway(Recorder())
    server, thread = start_in_thread(gw, max_connections=2, read_timeout_s=0.5)
    idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(2)]
    try:
        idle[1].sendall(b"GET /v1/health HTTP/1.1\r\nHost: x\r\n")  # an unfinished request head
        wait_until(lambda: server.peak_connections == 2)
        # Both slots are held by connections that send nothing more; a real client still gets its answer.
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=20)
        conn.request("GET", "/v1/health", headers={"x-api-key": KEY.value})
        assert conn.getresponse().status == 200
        conn.close()
        assert server.timed_out_reads >= 1
        for sock in idle:
            sock.settimeout(10)
            assert sock.recv(100) == b""  # closed by the gateway
        assert server.peak_connections <= 2
    finally:
        for sock in idle:
            sock.close()
        server.shutdown()
        server.server_close()
        thread.join(5)
        gw.close()


def test_framing_rules_as_a_function() -> None:
    assert request_framing([]) == 0
    assert request_framing([("Content-Length", "12")]) == 12
    assert request_framing([("content-length", "1048577")])[0] == 413  # type: ignore[index]
    assert request_framing([("Content-Length", "1")], malformed_block=True)[0] == 400  # type: ignore[index]
    assert request_framing([("X", "a\x00b")])[0] == 400  # type: ignore[index]


# -- worker processes: one warm execution environment per invocation ---------------------------------------------------
def pooled(handler: str, size: int = 4, timeout: float = 20.0) -> tuple[ApiGateway, LambdaWorkerPool]:
    pool = LambdaWorkerPool(handler, size, timeout_s=timeout)
    return ApiGateway(pool, StaticKeys([KEY]), openapi_json(), integration_timeout_s=timeout), pool


@pytest.fixture
def echo_gateway() -> Iterator[tuple[GatewayServer, LambdaWorkerPool]]:
    gw, pool = pooled("tests.unit.gateway_handlers.echo", size=4, timeout=3.0)
    server, thread = start_in_thread(gw)
    try:
        yield server, pool
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        gw.close()


def _get(port: int, target: str, key: str = KEY.value) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request("GET", target, headers={"x-api-key": key})
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_each_worker_process_runs_one_invocation_at_a_time_and_each_answer_is_its_own(
    echo_gateway: tuple[GatewayServer, LambdaWorkerPool],
) -> None:
    server, pool = echo_gateway

    def call(i: int) -> tuple[int, dict[str, Any], str]:
        status, headers, body = _get(server.port, f"/v1/events?i={i}&sleep=0.01")
        return status, json.loads(body), headers["x-amzn-requestid"]

    with ThreadPoolExecutor(16) as executor:
        results = list(executor.map(call, range(64)))
    for i, (status, body, request_id) in enumerate(results):
        assert status == 200
        assert body["query"] == {"i": str(i), "sleep": "0.01"}
        assert body["request_id"] == request_id
        assert body["in_flight"] == 1  # never two invocations in one environment
    pids = {body["pid"] for _, body, _ in results}
    assert pids <= set(pool.pids()) and len(pids) > 1


def test_an_integration_timeout_is_504_and_replaces_the_worker(
    echo_gateway: tuple[GatewayServer, LambdaWorkerPool],
) -> None:
    server, pool = echo_gateway
    before = set(pool.pids())
    status, headers, body = _get(server.port, "/v1/events?sleep=10")
    assert (status, json.loads(body)) == (504, {"message": "Endpoint request timed out"})
    assert headers["x-amzn-errortype"] == "IntegrationTimeoutException"
    assert pool.replaced == 1
    wait_until(lambda: len(pool.pids()) == 4 and set(pool.pids()) != before)
    assert len(before & set(pool.pids())) == 3
    # The pool serves again, on four environments.
    assert all(_get(server.port, f"/v1/events?n={n}")[0] == 200 for n in range(8))


def test_a_function_error_is_502_and_a_crashed_environment_is_replaced(
    echo_gateway: tuple[GatewayServer, LambdaWorkerPool],
) -> None:
    server, pool = echo_gateway
    status, _, body = _get(server.port, "/v1/events?raise=1")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    assert pool.replaced == 0  # an error is an outcome; the environment stays warm
    status, _, body = _get(server.port, "/v1/events?crash=1")
    assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
    assert pool.replaced == 1
    wait_until(lambda: len(pool.pids()) == 4)
    assert _get(server.port, "/v1/health")[0] == 200


def test_a_handler_that_cannot_load_stops_the_pool_from_starting() -> None:
    with pytest.raises(WorkerStartError, match="init phase failed"):
        LambdaWorkerPool("tests.unit.gateway_handlers.no_such_handler", 1)


def test_lambdas_6_mb_response_limit_is_enforced_at_the_byte() -> None:
    gw, _ = pooled("tests.unit.gateway_handlers.sized", size=1)
    server, thread = start_in_thread(gw)
    try:
        status, _, body = _get(server.port, f"/v1/events?bytes={MAX_RESPONSE_PAYLOAD_BYTES}")
        assert status == 200
        assert len(body) > MAX_RESPONSE_PAYLOAD_BYTES - 100  # the body itself went through
        status, headers, body = _get(server.port, f"/v1/events?bytes={MAX_RESPONSE_PAYLOAD_BYTES + 1}")
        assert (status, json.loads(body)) == (502, {"message": "Internal server error"})
        assert headers["x-frame-options"] == "DENY"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        gw.close()


def test_the_access_log_line_keeps_its_format_and_never_holds_the_key(
    echo_gateway: tuple[GatewayServer, LambdaWorkerPool], capfd: pytest.CaptureFixture[str]
) -> None:
    server, _ = echo_gateway
    # Paths of this test's own (the log carries the path, never the query): a line a previous test's connection
    # writes late (a read deadline, say) cannot be mistaken for one of these.
    ok, wrong, bad = (f"/v1/events/{uuid.uuid4()}" for _ in range(3))
    _get(server.port, ok + "?source=x")
    _get(server.port, wrong + "?source=x", key="wrong-" + KEY.value)
    _raw(server.port, f"GET {bad} HTTP/1.1\r\nContent-Length: +5\r\n\r\n".encode())
    seen: list[dict[str, Any]] = []

    def ours() -> dict[str, dict[str, Any]]:
        seen.extend(json.loads(line) for line in capfd.readouterr().err.splitlines() if line.startswith("{"))
        return {r["path"]: r for r in seen if r.get("message") == "request" and r.get("path") in (ok, wrong, bad)}

    records = wait_until(lambda: len(ours()) == 3 and ours())
    keys = {"level", "component", "message", "request_id", "method", "path", "status", "api_key_id", "latency_ms"}
    for record in records.values():
        assert set(record) == keys
        assert record["component"] == "api-gateway" and record["level"] == "INFO"
        assert isinstance(record["latency_ms"], float)
    assert (records[ok]["status"], records[ok]["api_key_id"]) == (200, KEY.key_id)
    assert (records[wrong]["status"], records[wrong]["api_key_id"]) == (403, None)
    assert records[bad]["status"] == 400
    text = json.dumps(seen)
    assert KEY.value not in text and "source=x" not in text


def test_many_threads_in_one_pool_never_deadlock() -> None:
    # Guard for the pool's free-worker queue: more callers than workers all finish.
    gw, pool = pooled("tests.unit.gateway_handlers.echo", size=2)
    try:
        barrier = threading.Barrier(8)

        def call(i: int) -> int:
            barrier.wait()
            request = GatewayRequest("GET", f"/v1/events?i={i}", [("x-api-key", KEY.value)])
            return gw.handle(request).status

        with ThreadPoolExecutor(8) as executor:
            assert list(executor.map(call, range(8))) == [200] * 8
        assert pool.replaced == 0
    finally:
        gw.close()
