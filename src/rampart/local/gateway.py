"""A loopback API Gateway (REST, regional) in front of the real API handler.

What it does, in API Gateway's order:

1. matches the request against the API's resources, taken from the OpenAPI document the handler generates
   (as API Gateway imports one); an unknown resource or method gets API Gateway's answer for it,
   403 ``{"message": "Missing Authentication Token"}``, whether or not a key was sent;
2. requires ``x-api-key`` to be an enabled API key attached to one of this stack's usage plans, as held in the
   emulator's API Gateway (created by ``rampart keys`` / ``rampart up``): 403 ``{"message": "Forbidden"}``
   otherwise. The keys are re-read at least every :data:`KEY_REFRESH_S` and on any unknown key, so a revoked
   key stops working within about a second and a new one works at once;
3. applies the key's usage plan: a token bucket (``rateLimit`` per second, ``burstLimit``) -> 429
   ``{"message": "Too Many Requests"}``, then a daily quota (resets at 00:00 UTC) -> 429
   ``{"message": "Limit Exceeded"}``;
4. builds the REST proxy integration event (v1) and hands it to a free worker PROCESS (each one warm Lambda
   execution environment, see :mod:`rampart.local.workers`); a handler error, a malformed proxy response or a
   response payload over Lambda's 6 MB limit is 502 ``{"message": "Internal server error"}``, a handler slower
   than the integration timeout 504 ``{"message": "Endpoint request timed out"}`` (that worker is replaced).

``GET <API_URL>/openapi.json`` (``/v1/openapi.json``) serves the OpenAPI document without a key: it is
public documentation, committed at docs/openapi.json. API Gateway itself would not serve it.

HTTP is werkzeug's threaded WSGI server (http.server's request-line and header parser), with framing checked
strictly before anything else: one Content-Length of ASCII digits, no Transfer-Encoding, no malformed or
folded header lines, HTTP/1.0 or 1.1 only; anything else is a 4xx with a JSON body, never a 5xx. At most
``max_connections`` connections are served at once (one thread each); further connections wait in the listen
backlog rather than being refused, and a connection that has not delivered its whole request within
``read_timeout_s`` is closed, so slow clients cannot hold the slots. Every answer the gateway gives itself
carries :data:`GATEWAY_RESPONSE_HEADERS`, the headers the Terraform API's gateway responses carry.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import datetime as dt
import email.errors
import hashlib
import http
import json
import os
import re
import signal
import socket
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol
from urllib.parse import parse_qsl, unquote, urlsplit

from werkzeug.serving import ThreadedWSGIServer, WSGIRequestHandler

from rampart.keys import ActiveKey, UsagePlan, new_key_value
from rampart.local.context import ACCOUNT_ID
from rampart.local.workers import Invocation

DEFAULT_HANDLER = "rampart.api.handler.lambda_handler"
API_PREFIX = "/v1"
MAX_BODY_BYTES = 1024 * 1024
INTEGRATION_TIMEOUT_S = 29.0
MAX_CONNECTIONS = 64
READ_TIMEOUT_S = 10.0  # to deliver the whole request (head and body) after connecting
IDLE_TIMEOUT_S = 30.0  # any single read or write on a connection
KEY_REFRESH_S = 0.5  # the keys are re-read at least this often (and on an unknown key)
KEY_MAX_STALE_S = 30.0  # if the emulator cannot be read for longer, no key is accepted (fail closed)
SERVER_NAME = "rampart-local-gateway"

Answer = tuple[int, str, str]  # status, x-amzn-ErrorType, message
FORBIDDEN: Answer = (403, "ForbiddenException", "Forbidden")
MISSING_TOKEN: Answer = (403, "MissingAuthenticationTokenException", "Missing Authentication Token")
THROTTLED: Answer = (429, "TooManyRequestsException", "Too Many Requests")
QUOTA_EXCEEDED: Answer = (429, "LimitExceededException", "Limit Exceeded")
BAD_GATEWAY: Answer = (502, "InternalServerErrorException", "Internal server error")
TIMED_OUT: Answer = (504, "IntegrationTimeoutException", "Endpoint request timed out")
TOO_LARGE: Answer = (413, "RequestTooLargeException", "Request Too Long")
BAD_REQUEST: Answer = (400, "BadRequestException", "Bad Request")
LENGTH_REQUIRED: Answer = (411, "LengthRequiredException", "Length Required")

# The headers on every answer the gateway gives itself (403, 429, 413, 502, 504, framing errors): the same set
# the API's gateway responses carry in Terraform (iac/modules/api). The handler sets its own on its responses.
GATEWAY_RESPONSE_HEADERS: dict[str, str] = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


# -- usage plans and keys ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ApiKey:
    """A client key the local stack creates at start (``rampart up``'s "local" key, test keys).

    ``name`` is the client; ``tier`` names the usage plan (``<stack>-<tier>``), by default the client's name,
    with ``plan`` as its limits. ``key_id`` is API Gateway's id once the stack has created the key.
    """

    key_id: str
    value: str = field(repr=False)
    name: str = "local"
    plan: UsagePlan = field(default_factory=UsagePlan)
    tier: str | None = None

    @staticmethod
    def generate(
        name: str = "local", plan: UsagePlan | None = None, value: str | None = None, tier: str | None = None
    ) -> ApiKey:
        return ApiKey("", value or new_key_value(), name, plan or UsagePlan(), tier)


@dataclass(frozen=True)
class AuthorizedKey:
    key_id: str
    plan: UsagePlan


class KeyAuthority(Protocol):
    def authorize(self, value: str) -> AuthorizedKey | None: ...


def _digest(value: str) -> bytes:
    # Keys are looked up by a digest of the value: the lookup's timing tells nothing about any key's prefix.
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).digest()


class StaticKeys:
    """A fixed set of keys (unit tests)."""

    def __init__(self, keys: Iterable[ApiKey]) -> None:
        self._keys = {_digest(k.value): AuthorizedKey(k.key_id, k.plan) for k in keys}

    def authorize(self, value: str) -> AuthorizedKey | None:
        return self._keys.get(_digest(value))


class RefreshingKeys:
    """The keys held in (emulated) API Gateway, re-read in the background every ``refresh_s`` and on demand.

    An unknown value triggers a read that starts after the request arrived, so a key created a moment ago is
    accepted at once; a revoked key is gone from the next read (at most ``refresh_s`` plus one read later).
    When reads fail, the last good set is used for up to ``max_stale_s``, then nothing is accepted.
    """

    def __init__(
        self,
        load: Callable[[], list[ActiveKey]],
        refresh_s: float = KEY_REFRESH_S,
        max_stale_s: float = KEY_MAX_STALE_S,
        clock: Callable[[], float] = time.monotonic,
        on_error: Callable[[Exception], None] | None = None,
        miss_wait_s: float = 5.0,
        min_gap_s: float = 0.05,
    ) -> None:
        self._load, self._refresh_s, self._max_stale_s, self._clock = load, refresh_s, max_stale_s, clock
        self._on_error = on_error or (lambda _exc: None)
        self._miss_wait_s, self._min_gap_s = miss_wait_s, min_gap_s
        self._keys: dict[bytes, AuthorizedKey] = {}
        self._loaded_at: float | None = None
        self._cond = threading.Condition()
        self._asked = 1  # read requests so far (the first read is asked for at once)
        self._served = 0  # the highest request number a finished read started after
        self._stop = False
        self._thread: threading.Thread | None = None
        self.reads = 0

    def start(self, first_read_timeout_s: float = 30.0) -> RefreshingKeys:
        self._thread = threading.Thread(target=self._run, name="api-keys-refresh", daemon=True)
        self._thread.start()
        deadline = self._clock() + first_read_timeout_s
        with self._cond:
            while self._loaded_at is None:
                remaining = deadline - self._clock()
                if remaining <= 0:
                    raise RuntimeError("could not read the API keys from the AWS emulator")
                self._cond.wait(min(remaining, 0.5))
        return self

    def close(self) -> None:
        with self._cond:
            self._stop = True
            self._cond.notify_all()
        if self._thread is not None:
            self._thread.join(5)

    def _run(self) -> None:
        while True:
            with self._cond:
                self._cond.wait_for(lambda: self._stop or self._asked > self._served, timeout=self._refresh_s)
                if self._stop:
                    return
                started_for = self._asked
            try:
                active = self._load()
            except Exception as exc:  # noqa: BLE001 - keep the last good set; fail closed once it is too old
                self._on_error(exc)
                with self._cond:
                    self._served = started_for
                    self._cond.notify_all()
                self._pause()
                continue
            keys = {_digest(k.value): AuthorizedKey(k.key_id, k.plan) for k in active}
            with self._cond:
                self._keys, self._loaded_at, self._served = keys, self._clock(), started_for
                self.reads += 1
                self._cond.notify_all()
            self._pause(self._min_gap_s)  # a flood of unknown keys costs the emulator at most 1/min_gap reads/s

    def _pause(self, seconds: float | None = None) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._stop, timeout=min(self._refresh_s, 1.0) if seconds is None else seconds)

    def _lookup(self, digest: bytes) -> AuthorizedKey | None:
        if self._loaded_at is None or self._clock() - self._loaded_at > self._max_stale_s:
            return None
        return self._keys.get(digest)

    def authorize(self, value: str) -> AuthorizedKey | None:
        digest = _digest(value)
        with self._cond:
            found = self._lookup(digest)
            if found is not None:
                return found
            # Unknown: ask for a read that starts after now and wait for it (bounded).
            self._asked += 1
            mine = self._asked
            self._cond.notify_all()
            self._cond.wait_for(lambda: self._served >= mine or self._stop, timeout=self._miss_wait_s)
            return self._lookup(digest)


class TokenBucket:
    """``burst`` tokens, refilled at ``rate`` per second; each request takes one."""

    def __init__(self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate, self.burst, self._clock = rate, burst, clock
        self._tokens = float(burst)
        self._last = clock()
        self._lock = threading.Lock()

    def try_take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(float(self.burst), self._tokens + (now - self._last) * self.rate)
            self._last = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


Admission = Literal["ok", "throttled", "quota"]


class UsagePlanLimiter:
    """Per-key throttling and daily quota, checked in API Gateway's order (throttle, then quota).

    A key's bucket starts full when the key is first seen, and again when its plan's limits change.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic, wall_clock: Callable[[], float] = time.time):
        self._clock, self._wall = clock, wall_clock
        self._buckets: dict[str, tuple[UsagePlan, TokenBucket]] = {}
        self._used: dict[str, tuple[dt.date, int]] = {}
        self._lock = threading.Lock()

    def admit(self, key_id: str, plan: UsagePlan) -> Admission:
        with self._lock:
            known = self._buckets.get(key_id)
            if known is None or known[0] != plan:
                known = (plan, TokenBucket(plan.rate, plan.burst, self._clock))
                self._buckets[key_id] = known
        if not known[1].try_take():
            return "throttled"
        if plan.quota_per_day is None:
            return "ok"
        today = dt.datetime.fromtimestamp(self._wall(), dt.UTC).date()
        with self._lock:
            day, used = self._used.get(key_id, (today, 0))
            if day != today:
                used = 0
            if used >= plan.quota_per_day:
                return "quota"
            self._used[key_id] = (today, used + 1)
        return "ok"


# -- routes ------------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Route:
    resource: str
    methods: frozenset[str]
    pattern: re.Pattern[str]

    @staticmethod
    def from_template(resource: str, methods: set[str]) -> Route:
        parts = []
        for segment in resource.strip("/").split("/"):
            m = re.fullmatch(r"\{([A-Za-z_][A-Za-z0-9_]*)\}", segment)
            parts.append(f"(?P<{m.group(1)}>[^/]+)" if m else re.escape(segment))
        return Route(resource, frozenset(m.upper() for m in methods), re.compile("^/" + "/".join(parts) + "$"))


def routes_from_openapi(document: Mapping[str, Any]) -> list[Route]:
    verbs = {"get", "put", "post", "delete", "patch", "head", "options"}
    routes = [
        Route.from_template(path, {m for m in ops if m in verbs}) for path, ops in document.get("paths", {}).items()
    ]
    # API Gateway prefers a literal segment over a {parameter}: try the routes with fewer parameters first.
    return sorted(routes, key=lambda r: (r.resource.count("{"), r.resource))


def match_route(routes: list[Route], raw_path: str) -> tuple[Route, dict[str, str]] | None:
    for route in routes:
        m = route.pattern.match(raw_path)
        if m:
            return route, {k: _decode(v) for k, v in m.groupdict().items()}
    return None


def _decode(text: str) -> str:
    # Invalid UTF-8 travels on as lone surrogates; the handler answers those with a 400 of its own.
    return unquote(text, encoding="utf-8", errors="surrogateescape")


# -- the gateway -------------------------------------------------------------------------------------------------------
@dataclass
class GatewayRequest:
    method: str
    target: str  # the request target as sent: path and query
    headers: list[tuple[str, str]]
    body: bytes = b""
    source_ip: str = "127.0.0.1"
    protocol: str = "HTTP/1.1"


@dataclass
class GatewayResponse:
    status: int
    headers: list[tuple[str, str]]
    body: bytes
    request_id: str
    api_key_id: str | None = None


class Invoker(Protocol):
    """Runs the function for one event (:class:`rampart.local.workers.LambdaWorkerPool` in the twin)."""

    def invoke(self, event: dict[str, Any], timeout_s: float) -> Invocation: ...

    def close(self) -> None: ...


def own_answer(answer: Answer, request_id: str, key_id: str | None = None) -> GatewayResponse:
    """An answer of the gateway itself: API Gateway's JSON message and its headers."""
    status, error_type, message = answer
    headers = [
        ("Content-Type", "application/json"),
        *GATEWAY_RESPONSE_HEADERS.items(),
        ("x-amzn-RequestId", request_id),
        ("x-amzn-ErrorType", error_type),
    ]
    return GatewayResponse(status, headers, json.dumps({"message": message}).encode(), request_id, key_id)


_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


class ApiGateway:
    def __init__(
        self,
        invoker: Invoker,
        keys: KeyAuthority,
        openapi_text: str,
        *,
        stage: str = "local",
        region: str = "eu-west-1",
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        limiter: UsagePlanLimiter | None = None,
    ) -> None:
        self.invoker = invoker
        self.keys = keys
        self.openapi_text = openapi_text
        self.routes = routes_from_openapi(json.loads(openapi_text))
        self.stage = stage
        self.region = region
        self.api_id = "local" + uuid.uuid4().hex[:5]
        self.integration_timeout_s = integration_timeout_s
        self.limiter = limiter or UsagePlanLimiter()

    def close(self) -> None:
        self.invoker.close()

    def _key(self, headers: list[tuple[str, str]]) -> tuple[AuthorizedKey, str] | None:
        sent = [v for k, v in headers if k.lower() == "x-api-key"]
        if len(sent) != 1 or not sent[0]:
            return None
        found = self.keys.authorize(sent[0])
        return (found, sent[0]) if found is not None else None

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = request.target.partition("?")
        if request.method == "GET" and raw_path == API_PREFIX + "/openapi.json":
            headers = [("Content-Type", "application/json"), *GATEWAY_RESPONSE_HEADERS.items()]
            headers.append(("x-amzn-RequestId", request_id))
            return GatewayResponse(200, headers, self.openapi_text.encode(), request_id)
        matched = match_route(self.routes, raw_path)
        if matched is None or request.method not in matched[0].methods:
            return own_answer(MISSING_TOKEN, request_id)
        route, path_params = matched
        authorized = self._key(request.headers)
        if authorized is None:
            return own_answer(FORBIDDEN, request_id)
        key, key_value = authorized
        admission = self.limiter.admit(key.key_id, key.plan)
        if admission == "throttled":
            return own_answer(THROTTLED, request_id, key.key_id)
        if admission == "quota":
            return own_answer(QUOTA_EXCEEDED, request_id, key.key_id)
        event = self.build_event(request, route, path_params, raw_path, raw_query, key.key_id, key_value, request_id)
        invocation = self.invoker.invoke(event, self.integration_timeout_s)
        if invocation.outcome == "timeout":
            _log("ERROR", "integration timed out", request_id=request_id, detail=invocation.detail)
            return own_answer(TIMED_OUT, request_id, key.key_id)
        if invocation.outcome == "too_large":
            _log("ERROR", "Lambda response payload too large", request_id=request_id, bytes=invocation.detail)
            return own_answer(BAD_GATEWAY, request_id, key.key_id)
        if invocation.outcome == "error":
            _log("ERROR", "handler failed", request_id=request_id, error=invocation.detail)
            return own_answer(BAD_GATEWAY, request_id, key.key_id)
        response = self._proxy_response(invocation.payload, request_id, key.key_id)
        if response is None:
            _log("ERROR", "malformed Lambda proxy response", request_id=request_id)
            return own_answer(BAD_GATEWAY, request_id, key.key_id)
        return response

    def build_event(
        self,
        request: GatewayRequest,
        route: Route,
        path_params: dict[str, str],
        raw_path: str,
        raw_query: str,
        key_id: str,
        key_value: str,
        request_id: str,
    ) -> dict[str, Any]:
        """The API Gateway REST proxy integration event (payload format 1.0)."""
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        host = "127.0.0.1"
        for name, value in request.headers:
            headers[name] = value  # the last value wins, as in API Gateway
            multi_headers.setdefault(name, []).append(value)
            if name.lower() == "host":
                host = value
        forwarded = {
            "X-Forwarded-For": request.source_ip,
            "X-Forwarded-Port": host.rpartition(":")[2] if ":" in host else "80",
            "X-Forwarded-Proto": "http",
            "X-Amzn-Trace-Id": f"Root=1-{int(time.time()):08x}-{uuid.uuid4().hex[:24]}",
        }
        for name, value in forwarded.items():
            headers[name] = value
            multi_headers[name] = [value]
        query: dict[str, str] = {}
        multi_query: dict[str, list[str]] = {}
        for name, value in parse_qsl(raw_query, keep_blank_values=True, errors="surrogateescape"):
            query[name] = value
            multi_query.setdefault(name, []).append(value)
        body: str | None = None
        is_base64 = False
        if request.body:
            try:
                body = request.body.decode("utf-8")
            except UnicodeDecodeError:
                body, is_base64 = base64.b64encode(request.body).decode(), True
        now = dt.datetime.now(dt.UTC)
        path = _decode(raw_path)
        user_agent = headers.get("User-Agent") or next(
            (v for k, v in request.headers if k.lower() == "user-agent"), None
        )
        return {
            "resource": route.resource,
            "path": path,
            "httpMethod": request.method,
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": query or None,
            "multiValueQueryStringParameters": multi_query or None,
            "pathParameters": path_params or None,
            "stageVariables": None,
            "requestContext": {
                "resourceId": route.resource.strip("/").replace("/", "-")[:10] or "root",
                "resourcePath": route.resource,
                "httpMethod": request.method,
                "extendedRequestId": base64.b32encode(uuid.uuid4().bytes[:10]).decode().rstrip("="),
                "requestTime": now.strftime("%d/%b/%Y:%H:%M:%S +0000"),
                "path": path,
                "accountId": ACCOUNT_ID,
                "protocol": request.protocol,
                "stage": self.stage,
                "domainPrefix": host.partition(":")[0],
                "requestTimeEpoch": int(now.timestamp() * 1000),
                "requestId": request_id,
                "identity": {
                    "cognitoIdentityPoolId": None,
                    "accountId": None,
                    "cognitoIdentityId": None,
                    "caller": None,
                    "sourceIp": request.source_ip,
                    "principalOrgId": None,
                    "accessKey": None,
                    "cognitoAuthenticationType": None,
                    "cognitoAuthenticationProvider": None,
                    "userArn": None,
                    "userAgent": user_agent,
                    "user": None,
                    "apiKey": key_value,
                    "apiKeyId": key_id,
                },
                "domainName": host.partition(":")[0],
                "apiId": self.api_id,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    @staticmethod
    def _proxy_response(payload: bytes, request_id: str, key_id: str) -> GatewayResponse | None:
        """The HTTP response for a Lambda proxy result, or None when API Gateway would call it malformed."""
        try:
            result = json.loads(payload)
        except ValueError:
            return None
        if not isinstance(result, dict):
            return None
        status = result.get("statusCode")
        if not isinstance(status, int) or isinstance(status, bool) or not 100 <= status <= 599:
            return None
        headers: list[tuple[str, str]] = []
        single = result.get("headers") or {}
        multi = result.get("multiValueHeaders") or {}
        if not isinstance(single, dict) or not isinstance(multi, dict):
            return None
        for name, values in multi.items():
            if not isinstance(values, list):
                return None
            headers.extend((str(name), str(v)) for v in values)
        multi_names = {n.lower() for n in multi}
        headers.extend((str(n), str(v)) for n, v in single.items() if n.lower() not in multi_names)
        for name, value in headers:
            # Never let a header split the response or break its encoding.
            if not _TOKEN.fullmatch(name) or "\r" in value or "\n" in value or not _latin1(value):
                return None
        raw = result.get("body")
        if raw is None:
            body = b""
        elif not isinstance(raw, str):
            return None
        elif result.get("isBase64Encoded"):
            try:
                body = base64.b64decode(raw, validate=True)
            except ValueError:
                return None
        else:
            body = raw.encode("utf-8", "surrogateescape")
        headers.append(("x-amzn-RequestId", request_id))
        return GatewayResponse(status, headers, body, request_id, key_id)


def _latin1(text: str) -> bool:
    try:
        text.encode("latin-1")
    except UnicodeEncodeError:
        return False
    return True


# -- HTTP --------------------------------------------------------------------------------------------------------------
def _log(level: str, message: str, **fields: Any) -> None:
    line = {"level": level, "component": "api-gateway", "message": message, **fields}
    sys.stderr.write(json.dumps(line, default=str) + "\n")


def _access_log(
    request_id: str, method: str | None, path: str | None, status: int, key_id: str | None, started: float
) -> None:
    """The access log line (format fixed by docs/local.md: issue 14's tooling reads it). Never a key value."""
    _log(
        "INFO",
        "request",
        request_id=request_id,
        method=method,
        path=path[:200] if path is not None else None,
        status=status,
        api_key_id=key_id,
        latency_ms=round((time.monotonic() - started) * 1000, 2),
    )


_REQUEST_LINE = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]{1,32} [\x21-\x7e]+ HTTP/1\.[01]")
_DIGITS = re.compile(r"[0-9]{1,20}")
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}


def request_framing(headers: list[tuple[str, str]], malformed_block: bool = False) -> int | Answer:
    """The body length the request announces, or the answer that refuses its framing.

    Strict, because a request that two HTTP parsers could read differently is how requests get smuggled:
    exactly one Content-Length of ASCII digits (whitespace around it is optional whitespace, nothing else),
    no Transfer-Encoding at all (the API takes no body; ``chunked`` alone is 411 Length Required, any other
    coding or a Transfer-Encoding next to a Content-Length is 400), no header line the parser could not read
    as a header, at most one Host.
    """
    if malformed_block:
        return BAD_REQUEST
    for name, value in headers:
        if not _TOKEN.fullmatch(name) or any(c in value for c in "\r\n\x00"):
            return BAD_REQUEST
    if sum(1 for name, _ in headers if name.lower() == "host") > 1:
        return BAD_REQUEST
    codings = [v for n, v in headers if n.lower() == "transfer-encoding"]
    lengths = [v for n, v in headers if n.lower() == "content-length"]
    if codings:
        if lengths:
            return BAD_REQUEST
        named = [c.strip(" \t").lower() for v in codings for c in v.split(",")]
        return LENGTH_REQUIRED if named == ["chunked"] else BAD_REQUEST
    if not lengths:
        return 0
    if len(lengths) > 1:
        return BAD_REQUEST
    value = lengths[0].strip(" \t")
    if not _DIGITS.fullmatch(value):
        return TOO_LARGE if value.isascii() and value.isdigit() else BAD_REQUEST
    length = int(value)
    return TOO_LARGE if length > MAX_BODY_BYTES else length


def _reason(status: int) -> str:
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Unknown"


class GatewayApp:
    """The WSGI application: framing, body, the gateway, the response, the access log line."""

    def __init__(self, gateway: ApiGateway) -> None:
        self.gateway = gateway

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        started: float = environ["rampart.started"]
        method: str = environ["REQUEST_METHOD"]
        target = _origin_form(environ["rampart.target"])
        path = target.partition("?")[0]
        server: GatewayServer | None = environ.get("rampart.server")
        framing = request_framing(environ["rampart.headers"], environ["rampart.malformed_headers"])
        body: bytes | None = b""
        if isinstance(framing, int) and framing:
            body = _read_exactly(environ["wsgi.input"], framing)
            if body is None:  # the client stopped sending (or was too slow): it cannot read an answer either
                framing = BAD_REQUEST
        if server is not None and not server.request_read(environ["werkzeug.socket"]):
            framing = BAD_REQUEST  # too slow: the connection was closed under it, the request is not served
        if not isinstance(framing, int):
            response = own_answer(framing, str(uuid.uuid4()))
        else:
            request = GatewayRequest(
                method=method,
                target=target,
                headers=environ["rampart.headers"],
                body=body or b"",
                source_ip=environ.get("REMOTE_ADDR", "127.0.0.1"),
                protocol=environ.get("SERVER_PROTOCOL", "HTTP/1.1"),
            )
            try:
                response = self.gateway.handle(request)
            except Exception as exc:  # noqa: BLE001 - a gateway bug must still answer, and never with a trace
                _log("ERROR", "gateway error", error=type(exc).__name__)
                response = own_answer(BAD_GATEWAY, str(uuid.uuid4()))
        headers = [(n, v) for n, v in response.headers if n.lower() not in _HOP_BY_HOP]
        headers.append(("Content-Length", str(len(response.body))))
        start_response(f"{response.status} {_reason(response.status)}", headers)
        return self._body(response, b"" if method == "HEAD" else response.body, method, path, started)

    @staticmethod
    def _body(response: GatewayResponse, body: bytes, method: str, path: str, started: float) -> Iterator[bytes]:
        try:
            yield body
        finally:  # after the body was handed to the socket (or the client went away)
            _access_log(response.request_id, method, path, response.status, response.api_key_id, started)


def _origin_form(target: str) -> str:
    if target.startswith("/"):
        return target
    # absolute-form (http://host/path): keep only the path and query
    m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*(?P<rest>[/?].*)?$", target)
    return (m.group("rest") or "/") if m else "/"


def _read_exactly(stream: Any, length: int) -> bytes | None:
    chunks: list[bytes] = []
    left = length
    try:
        while left > 0:
            chunk = stream.read(min(left, 65536))
            if not chunk:
                return None
            chunks.append(chunk)
            left -= len(chunk)
    except OSError:
        return None
    return b"".join(chunks)


_HEAD_DEFECTS = (email.errors.MissingHeaderBodySeparatorDefect, email.errors.FirstHeaderLineIsContinuationDefect)


class _LastLine:
    """Remembers the last line read from the request head."""

    def __init__(self, stream: Any) -> None:
        self._stream = stream
        self.last = b""

    def readline(self, limit: int = -1) -> bytes:
        self.last = self._stream.readline(limit)
        return bytes(self.last)


class _RequestHandler(WSGIRequestHandler):
    """werkzeug's request handler, stricter: HTTP/1.0 and 1.1 only, JSON errors, no default access log."""

    protocol_version = "HTTP/1.1"
    timeout = IDLE_TIMEOUT_S
    disable_nagle_algorithm = True  # the head and the body go out in two writes: never hold the second back
    server: GatewayServer

    def version_string(self) -> str:
        return SERVER_NAME

    def setup(self) -> None:
        super().setup()
        self.server.request_started(self.connection)

    def finish(self) -> None:
        self.server.request_read(self.connection)
        with contextlib.suppress(OSError):
            super().finish()

    def parse_request(self) -> bool:
        self._started = time.monotonic()
        stream = self.rfile
        lines = _LastLine(stream)
        self.rfile = lines  # type: ignore[assignment]  # only readline() is used while the head is parsed
        try:
            if not super().parse_request():
                return False
        finally:
            self.rfile = stream
        try:
            urlsplit(self.path)
            well_formed = _REQUEST_LINE.fullmatch(self.requestline) is not None
        except ValueError:
            well_formed = False
        # One space between the parts, a method token, a visible target, HTTP/1.0 or HTTP/1.1 (no 0.9, no 2), and
        # a head that ends with its empty line (http.server would take the end of the stream for one).
        if not well_formed or lines.last not in (b"\r\n", b"\n"):
            self.send_error(400)
            return False
        return True

    def make_environ(self) -> dict[str, Any]:
        environ = super().make_environ()
        # werkzeug folds repeated headers (and keeps only the last Content-Length): the gateway needs them as sent.
        message = self.headers
        # A line the parser could not read as a header ends the header block early (the rest, Content-Length
        # perhaps, becomes "payload"); a first line that continues nothing is another. MIME defects of the
        # email parser (a multipart type without boundary, say) say nothing about HTTP framing.
        malformed = any(isinstance(d, _HEAD_DEFECTS) for d in message.defects) or bool(message.get_payload())
        environ["rampart.headers"] = list(message.items())
        environ["rampart.malformed_headers"] = malformed
        environ["rampart.target"] = self.path
        environ["rampart.started"] = getattr(self, "_started", time.monotonic())
        environ["rampart.server"] = self.server
        return environ

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found while parsing the request itself: JSON like every answer, then close.

        The text is the status's standard phrase: nothing from the request is echoed back. A client can cause
        no 5xx here (http.server would send 505 for HTTP/2.0).
        """
        if code >= 500:
            code = 400
        self.server.request_read(self.connection)
        error_type = "RequestTooLargeException" if code == 413 else "BadRequestException"
        response = own_answer((code, error_type, _reason(code)), str(uuid.uuid4()))
        self.request_version = "HTTP/1.1"  # always answer with a status line and headers
        self.close_connection = True
        try:
            self.send_response(code)
            for name, value in response.headers:
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(response.body)))
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(response.body)
        except OSError:
            pass
        command = getattr(self, "command", None)
        command = command if isinstance(command, str) and _TOKEN.fullmatch(command) else None
        _access_log(response.request_id, command and command[:32], None, code, None, self._started_or_now())

    def _started_or_now(self) -> float:
        return getattr(self, "_started", time.monotonic())

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        """The gateway writes its own JSON access log line."""

    def log_error(self, format: str, *args: Any) -> None:
        """http.server's messages quote the raw request line: not logged."""

    def log_message(self, format: str, *args: Any) -> None:
        """See :meth:`log_error`."""


class GatewayServer(ThreadedWSGIServer):
    """werkzeug's threaded WSGI server with a cap on connections and a deadline to deliver each request."""

    daemon_threads = True
    request_queue_size = 1024  # connections beyond max_connections wait here (the kernel's accept queue)

    def __init__(
        self,
        address: tuple[str, int],
        gateway: ApiGateway,
        *,
        max_connections: int = MAX_CONNECTIONS,
        read_timeout_s: float = READ_TIMEOUT_S,
    ) -> None:
        if address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the local gateway binds loopback addresses only")
        if max_connections < 1:
            raise ValueError("max_connections must be at least 1")
        self.gateway = gateway
        self.max_connections = max_connections
        self.read_timeout_s = read_timeout_s
        self._slots = threading.BoundedSemaphore(max_connections)
        self._closing = threading.Event()
        self._count_lock = threading.Lock()
        self.active_connections = 0
        self.peak_connections = 0
        self.timed_out_reads = 0
        self._reading: dict[socket.socket, float] = {}
        super().__init__(address[0], address[1], GatewayApp(gateway), handler=_RequestHandler)
        self._watchdog = threading.Thread(target=self._close_slow_requests, name="gateway-watchdog", daemon=True)
        self._watchdog.start()

    # -- bounded connections -----------------------------------------------------------------------------------------
    def get_request(self) -> tuple[socket.socket, Any]:
        # Take a slot before accepting: at the cap, new connections wait in the listen backlog.
        while not self._slots.acquire(timeout=0.2):
            if self._closing.is_set():
                raise OSError("the gateway is stopping")
        try:
            return super().get_request()
        except BaseException:
            self._slots.release()
            raise

    def process_request(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._slots.release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        with self._count_lock:
            self.active_connections += 1
            self.peak_connections = max(self.peak_connections, self.active_connections)
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._count_lock:
                self.active_connections -= 1
            self._slots.release()

    def handle_error(self, request: Any, client_address: Any) -> None:
        _log("WARNING", "connection error", error=type(sys.exc_info()[1]).__name__)

    # -- the deadline to deliver a request ---------------------------------------------------------------------------
    def request_started(self, sock: socket.socket) -> None:
        with self._count_lock:
            self._reading[sock] = time.monotonic() + self.read_timeout_s

    def request_read(self, sock: socket.socket) -> bool:
        """The request on ``sock`` has been read; False if the deadline had closed it already."""
        with self._count_lock:
            return self._reading.pop(sock, None) is not None

    def _close_slow_requests(self) -> None:
        while not self._closing.wait(min(0.2, self.read_timeout_s / 4)):
            now = time.monotonic()
            with self._count_lock:
                late = [s for s, deadline in self._reading.items() if deadline <= now]
                for sock in late:
                    del self._reading[sock]
            for sock in late:
                self.timed_out_reads += 1
                with contextlib.suppress(OSError):
                    sock.shutdown(socket.SHUT_RDWR)

    def shutdown(self) -> None:
        self._closing.set()
        super().shutdown()

    def server_close(self) -> None:
        self._closing.set()
        super().server_close()


def start_in_thread(gateway: ApiGateway, port: int = 0, **options: Any) -> tuple[GatewayServer, threading.Thread]:
    """Serve ``gateway`` on 127.0.0.1 from a background thread (tests); stop with ``server.shutdown()``."""
    server = GatewayServer(("127.0.0.1", port), gateway, **options)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    return server, thread


# -- the process -------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    from rampart.local.aws import report_ready  # noqa: PLC0415
    from rampart.local.workers import LambdaWorkerPool, WorkerStartError  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m rampart.local.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--handler", default=DEFAULT_HANDLER)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--function-name", default="rampart-local-api")
    parser.add_argument("--concurrency", type=int, default=8, help="worker processes (execution environments)")
    parser.add_argument("--max-connections", type=int, default=MAX_CONNECTIONS)
    parser.add_argument("--stack-name", required=True, help="whose usage plans and keys to accept")
    parser.add_argument("--keys-endpoint", required=True, help="the AWS emulator holding the keys")
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    region = os.environ.get("AWS_REGION", "eu-west-1")

    from rampart.keys import active_keys  # noqa: PLC0415
    from rampart.local.aws import client  # noqa: PLC0415

    apigateway = client("apigateway", args.keys_endpoint, region)
    keys = RefreshingKeys(
        lambda: active_keys(apigateway, args.stack_name),
        on_error=lambda exc: _log("WARNING", "cannot read the API keys", error=type(exc).__name__),
    )
    try:
        keys.start()
        pool = LambdaWorkerPool(
            args.handler,
            args.concurrency,
            function_name=args.function_name,
            region=region,
            timeout_s=INTEGRATION_TIMEOUT_S,
            on_event=lambda message, fields: _log("WARNING", message, **fields),
        )
    except (RuntimeError, WorkerStartError, ValueError) as exc:
        _log("ERROR", "the gateway cannot start", error=str(exc))
        keys.close()
        return 1
    from rampart.api.openapi import openapi_json  # noqa: PLC0415

    gateway = ApiGateway(pool, keys, openapi_json(), stage=args.stage, region=region)
    server = GatewayServer(("127.0.0.1", args.port), gateway, max_connections=args.max_connections)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serving.start()
    report_ready(args.ready_fd, {"pid": os.getpid(), "port": server.port, "workers": pool.pids()})
    _log("INFO", "serving", url=f"http://127.0.0.1:{server.port}{API_PREFIX}", stage=args.stage, workers=pool.size)
    parent = os.getppid()
    while not stop.wait(0.5):
        if os.getppid() != parent:
            _log("WARNING", "supervisor went away; stopping")
            break
    server.shutdown()
    server.server_close()
    gateway.close()
    keys.close()
    _log("INFO", "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
