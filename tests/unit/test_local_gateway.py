"""The local API gateway: token bucket, daily quota, key checks, routing and the REST proxy event it builds."""

from __future__ import annotations

import datetime as dt
import http.client
import json
import socket
from typing import Any

import pytest

from rampart.api.openapi import openapi_json
from rampart.local.gateway import (
    ApiGateway,
    ApiKey,
    GatewayRequest,
    TokenBucket,
    UsagePlan,
    UsagePlanLimiter,
    routes_from_openapi,
    start_in_thread,
)


class Clock:
    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


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
    a, b = ApiKey("a", "a" * 20, plan=UsagePlan(rate=1, burst=2)), ApiKey("b", "b" * 20, plan=UsagePlan(1, 2))
    limiter = UsagePlanLimiter([a, b], clock=clock)
    assert [limiter.admit("a") for _ in range(3)] == ["ok", "ok", "throttled"]
    assert limiter.admit("b") == "ok"


def test_daily_quota_counts_admitted_requests_and_resets_at_utc_midnight() -> None:
    clock = Clock()
    wall = Clock(dt.datetime(2026, 3, 1, 23, 59, 58, tzinfo=dt.UTC).timestamp())
    key = ApiKey("q", "q" * 20, plan=UsagePlan(rate=1000, burst=1000, quota_per_day=3))
    limiter = UsagePlanLimiter([key], clock=clock, wall_clock=wall)
    assert [limiter.admit("q") for _ in range(5)] == ["ok", "ok", "ok", "quota", "quota"]
    wall.now += 3  # 00:00:01 the next day
    assert [limiter.admit("q") for _ in range(4)] == ["ok", "ok", "ok", "quota"]


def test_throttled_requests_do_not_use_the_quota() -> None:
    clock = Clock()
    key = ApiKey("q", "q" * 20, plan=UsagePlan(rate=1, burst=1, quota_per_day=2))
    limiter = UsagePlanLimiter([key], clock=clock)
    assert [limiter.admit("q") for _ in range(3)] == ["ok", "throttled", "throttled"]
    clock.now += 1
    assert limiter.admit("q") == "ok"
    clock.now += 1
    assert limiter.admit("q") == "quota"


def test_routes_come_from_the_openapi_document() -> None:
    routes = routes_from_openapi(json.loads(openapi_json()))
    assert {r.resource for r in routes} == {"/v1/events", "/v1/events/{event_id}", "/v1/stats", "/v1/health"}
    assert all(r.methods == frozenset({"GET"}) for r in routes)


class Recorder:
    """Stands in for the Lambda function in these unit tests: records the event, answers as told."""

    def __init__(self, answer: Any = None, error: Exception | None = None) -> None:
        self.events: list[dict[str, Any]] = []
        self.contexts: list[Any] = []
        self.answer = answer if answer is not None else {"statusCode": 200, "headers": {}, "body": "{}"}
        self.error = error

    def __call__(self, event: dict[str, Any], context: Any) -> Any:
        self.events.append(event)
        self.contexts.append(context)
        if self.error:
            raise self.error
        return self.answer


KEY = ApiKey("abc123defg", "the-right-key-0123456789", "main", UsagePlan(rate=100, burst=100))


def gateway(handler: Recorder, keys: list[ApiKey] | None = None) -> ApiGateway:
    return ApiGateway(handler, keys or [KEY], openapi_json(), stage="local", integration_timeout_s=2)


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


def test_function_errors_and_malformed_responses_are_502_and_headers_cannot_be_split() -> None:
    for handler in (
        Recorder(error=RuntimeError("boom")),
        Recorder(answer={"statusCode": "200"}),
        Recorder(answer={"statusCode": 200, "body": 42}),
        Recorder(answer={"statusCode": 200, "headers": {"X-Evil": "a\r\nSet-Cookie: x=1"}, "body": ""}),
        Recorder(answer=["not", "a", "dict"]),
    ):
        gw = gateway(handler)
        try:
            status, _, body = get(gw, "/v1/health", **{"x-api-key": KEY.value})
            assert (status, body) == (502, {"message": "Internal server error"})
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


def test_key_values_and_plans_survive_the_trip_through_the_environment() -> None:
    key = ApiKey.generate("x", UsagePlan(rate=3, burst=4, quota_per_day=5))
    assert ApiKey.from_json(json.loads(json.dumps(key.to_json()))) == key
    assert len(key.key_id) == 10 and len(key.value) >= 20
    assert key.value not in repr(key)
    with pytest.raises(ValueError, match="rate"):
        UsagePlan(rate=0)


def _raw(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(data)
        out = b""
        while chunk := sock.recv(65536):
            out += chunk
    return out


@pytest.mark.parametrize(
    ("request_bytes", "status", "message"),
    [
        (b"GARBAGE\r\n\r\n", 400, "Bad Request"),
        (b"GET /v1/health HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413, "Request Too Long"),
        (b"GET /v1/health HTTP/1.1\r\nX: " + b"a" * 70_000 + b"\r\n\r\n", 431, "Request Header Fields Too Large"),
        (b"GET /v1/health HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 411, "Length Required"),
        (b"BREW /v1/<script> HTTP/1.1\r\n\r\n", 403, "Missing Authentication Token"),
    ],
)
def test_malformed_http_gets_a_json_answer_that_echoes_nothing(request_bytes: bytes, status: int, message: str) -> None:
    handler = Recorder()
    gw = gateway(handler)
    server, thread = start_in_thread(gw)
    try:
        raw = _raw(server.port, request_bytes)
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        gw.close()
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head.startswith(f"HTTP/1.1 {status} ".encode())
    assert json.loads(body) == {"message": message}
    assert b"GARBAGE" not in raw and b"script" not in raw and b"BREW" not in raw
    assert handler.events == []


def test_keep_alive_connections_serve_many_requests() -> None:
    gw = gateway(Recorder())
    server, thread = start_in_thread(gw)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        for _ in range(3):
            conn.request("GET", "/v1/health", headers={"x-api-key": KEY.value})
            response = conn.getresponse()
            assert response.status == 200
            response.read()
        conn.close()
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
        gw.close()
