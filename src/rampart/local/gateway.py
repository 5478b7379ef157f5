"""A loopback API Gateway (REST, regional) in front of the real API handler.

What it does, in API Gateway's order:

1. matches the request against the API's resources, taken from the OpenAPI document the handler generates
   (as API Gateway imports one); an unknown resource or method gets API Gateway's answer for it,
   403 ``{"message": "Missing Authentication Token"}``, whether or not a key was sent;
2. requires ``x-api-key`` to be one of the configured keys: 403 ``{"message": "Forbidden"}`` otherwise;
3. applies the key's usage plan: a token bucket (``rate`` per second, ``burst``) -> 429
   ``{"message": "Too Many Requests"}``, then a daily quota (resets at 00:00 UTC) -> 429
   ``{"message": "Limit Exceeded"}``;
4. builds the REST proxy integration event (v1) and invokes the handler on a pool of worker threads
   (each like one warm Lambda execution environment, keeping its database connection); a handler error or
   a malformed response is 502 ``{"message": "Internal server error"}``, a handler slower than the
   integration timeout 504 ``{"message": "Endpoint request timed out"}``.

``GET <API_URL>/openapi.json`` (``/v1/openapi.json``) serves the OpenAPI document without a key: it is
public documentation, committed at docs/openapi.json. API Gateway itself would not serve it.

The HTTP server is a threading server (one thread per connection, HTTP/1.1 keep-alive, a deep listen backlog)
in front of a fixed pool of handler workers, so slow clients never starve the handler and the handler's
concurrency stays bounded, as Lambda's reserved concurrency would.
"""

from __future__ import annotations

import argparse
import base64
import concurrent.futures
import datetime as dt
import hmac
import json
import os
import re
import secrets
import signal
import string
import sys
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Literal
from urllib.parse import parse_qsl, unquote

from rampart.local.context import ACCOUNT_ID, Handler, LambdaContext, load_handler

DEFAULT_HANDLER = "rampart.api.handler.lambda_handler"
KEYS_ENV = "RAMPART_GATEWAY_KEYS"
API_PREFIX = "/v1"
MAX_BODY_BYTES = 1024 * 1024
INTEGRATION_TIMEOUT_S = 29.0

FORBIDDEN = (403, "ForbiddenException", "Forbidden")
MISSING_TOKEN = (403, "MissingAuthenticationTokenException", "Missing Authentication Token")
THROTTLED = (429, "TooManyRequestsException", "Too Many Requests")
QUOTA_EXCEEDED = (429, "LimitExceededException", "Limit Exceeded")
BAD_GATEWAY = (502, "InternalServerErrorException", "Internal server error")
TIMED_OUT = (504, "IntegrationTimeoutException", "Endpoint request timed out")
TOO_LARGE = (413, "RequestTooLargeException", "Request Too Long")

# Added to every answer the gateway gives itself (the handler adds its own to its responses).
GATEWAY_HEADERS = {
    "Content-Type": "application/json",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
}


# -- usage plans -------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class UsagePlan:
    """API Gateway usage-plan throttling (steady rate and burst) and quota (requests per UTC day)."""

    rate: float = 100.0
    burst: int = 200
    quota_per_day: int | None = None

    def __post_init__(self) -> None:
        if self.rate <= 0 or self.burst < 1:
            raise ValueError("a usage plan needs rate > 0 and burst >= 1")
        if self.quota_per_day is not None and self.quota_per_day < 1:
            raise ValueError("quota_per_day must be positive")


@dataclass(frozen=True)
class ApiKey:
    key_id: str
    value: str = field(repr=False)
    name: str = "local"
    plan: UsagePlan = field(default_factory=UsagePlan)

    @staticmethod
    def generate(name: str = "local", plan: UsagePlan | None = None, value: str | None = None) -> ApiKey:
        alphabet = string.ascii_lowercase + string.digits
        key_id = "".join(secrets.choice(alphabet) for _ in range(10))  # the shape of API Gateway key ids
        return ApiKey(key_id, value or secrets.token_urlsafe(30), name, plan or UsagePlan())

    def to_json(self) -> dict[str, Any]:
        plan = {"rate": self.plan.rate, "burst": self.plan.burst, "quota_per_day": self.plan.quota_per_day}
        return {"id": self.key_id, "value": self.value, "name": self.name, "plan": plan}

    @staticmethod
    def from_json(raw: Mapping[str, Any]) -> ApiKey:
        plan = raw.get("plan") or {}
        return ApiKey(
            key_id=str(raw["id"]),
            value=str(raw["value"]),
            name=str(raw.get("name", "local")),
            plan=UsagePlan(
                rate=float(plan.get("rate", UsagePlan.rate)),
                burst=int(plan.get("burst", UsagePlan.burst)),
                quota_per_day=int(plan["quota_per_day"]) if plan.get("quota_per_day") else None,
            ),
        )


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
    """Per-key throttling and daily quota, checked in API Gateway's order (throttle, then quota)."""

    def __init__(
        self,
        keys: list[ApiKey],
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._plans = {k.key_id: k.plan for k in keys}
        self._buckets = {k.key_id: TokenBucket(k.plan.rate, k.plan.burst, clock) for k in keys}
        self._wall = wall_clock
        self._used: dict[str, tuple[dt.date, int]] = {}
        self._lock = threading.Lock()

    def admit(self, key_id: str) -> Admission:
        if not self._buckets[key_id].try_take():
            return "throttled"
        quota = self._plans[key_id].quota_per_day
        if quota is None:
            return "ok"
        today = dt.datetime.fromtimestamp(self._wall(), dt.UTC).date()
        with self._lock:
            day, used = self._used.get(key_id, (today, 0))
            if day != today:
                used = 0
            if used >= quota:
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


class ApiGateway:
    def __init__(
        self,
        handler: Handler,
        keys: list[ApiKey],
        openapi_text: str,
        *,
        stage: str = "local",
        region: str = "eu-west-1",
        function_name: str = "rampart-local-api",
        concurrency: int = 16,
        integration_timeout_s: float = INTEGRATION_TIMEOUT_S,
        limiter: UsagePlanLimiter | None = None,
    ) -> None:
        if not keys:
            raise ValueError("the gateway needs at least one API key")
        self.handler = handler
        self.keys = list(keys)
        self.openapi_text = openapi_text
        self.routes = routes_from_openapi(json.loads(openapi_text))
        self.stage = stage
        self.region = region
        self.function_name = function_name
        self.api_id = "local" + uuid.uuid4().hex[:5]
        self.integration_timeout_s = integration_timeout_s
        self.limiter = limiter or UsagePlanLimiter(self.keys)
        self._workers = concurrent.futures.ThreadPoolExecutor(concurrency, thread_name_prefix="api-lambda")

    def close(self) -> None:
        self._workers.shutdown(wait=True, cancel_futures=True)

    # -- answers of the gateway itself ---------------------------------------------------------------------------
    @staticmethod
    def _own(answer: tuple[int, str, str], request_id: str, key_id: str | None = None) -> GatewayResponse:
        status, error_type, message = answer
        headers = [*GATEWAY_HEADERS.items(), ("x-amzn-RequestId", request_id), ("x-amzn-ErrorType", error_type)]
        body = json.dumps({"message": message}).encode()
        return GatewayResponse(status, headers, body, request_id, key_id)

    def _key(self, headers: list[tuple[str, str]]) -> ApiKey | None:
        sent = [v for k, v in headers if k.lower() == "x-api-key"]
        if len(sent) != 1:
            return None
        found = None
        for key in self.keys:  # compare with every key in constant time; no early exit on a match
            if hmac.compare_digest(key.value.encode(), sent[0].encode("utf-8", "surrogateescape")):
                found = key
        return found

    def handle(self, request: GatewayRequest) -> GatewayResponse:
        request_id = str(uuid.uuid4())
        raw_path, _, raw_query = request.target.partition("?")
        if request.method == "GET" and raw_path == API_PREFIX + "/openapi.json":
            headers = [*GATEWAY_HEADERS.items(), ("x-amzn-RequestId", request_id)]
            return GatewayResponse(200, headers, self.openapi_text.encode(), request_id)
        matched = match_route(self.routes, raw_path)
        if matched is None or request.method not in matched[0].methods:
            return self._own(MISSING_TOKEN, request_id)
        route, path_params = matched
        key = self._key(request.headers)
        if key is None:
            return self._own(FORBIDDEN, request_id)
        admission = self.limiter.admit(key.key_id)
        if admission == "throttled":
            return self._own(THROTTLED, request_id, key.key_id)
        if admission == "quota":
            return self._own(QUOTA_EXCEEDED, request_id, key.key_id)
        event = self.build_event(request, route, path_params, raw_path, raw_query, key, request_id)
        context = LambdaContext(
            function_name=self.function_name, region=self.region, timeout_s=self.integration_timeout_s
        )
        future = self._workers.submit(self.handler, event, context)
        try:
            result = future.result(timeout=self.integration_timeout_s)
        except concurrent.futures.TimeoutError:
            return self._own(TIMED_OUT, request_id, key.key_id)
        except Exception as exc:  # noqa: BLE001 - a Lambda error is a 502 from API Gateway, never a crash here
            _log("ERROR", "handler raised", request_id=request_id, error=type(exc).__name__)
            return self._own(BAD_GATEWAY, request_id, key.key_id)
        response = self._proxy_response(result, request_id, key.key_id)
        if response is None:
            _log("ERROR", "malformed Lambda proxy response", request_id=request_id)
            return self._own(BAD_GATEWAY, request_id, key.key_id)
        return response

    def build_event(
        self,
        request: GatewayRequest,
        route: Route,
        path_params: dict[str, str],
        raw_path: str,
        raw_query: str,
        key: ApiKey,
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
                    "apiKey": key.value,
                    "apiKeyId": key.key_id,
                },
                "domainName": host.partition(":")[0],
                "apiId": self.api_id,
            },
            "body": body,
            "isBase64Encoded": is_base64,
        }

    @staticmethod
    def _proxy_response(result: Any, request_id: str, key_id: str) -> GatewayResponse | None:
        """The HTTP response for a Lambda proxy result, or None when API Gateway would call it malformed."""
        if not isinstance(result, dict):
            return None
        status = result.get("statusCode")
        if not isinstance(status, int) or not 100 <= status <= 599:
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
        if any(("\r" in n or "\n" in n or "\r" in v or "\n" in v) for n, v in headers):
            return None  # never let a header value split the response
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


# -- HTTP --------------------------------------------------------------------------------------------------------------
def _log(level: str, message: str, **fields: Any) -> None:
    line = {"level": level, "component": "api-gateway", "message": message, **fields}
    sys.stderr.write(json.dumps(line, default=str) + "\n")


_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "content-length", "upgrade", "te", "trailer"}


class _RequestHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "rampart-local-gateway"
    sys_version = ""
    timeout = 30  # seconds a keep-alive connection may sit idle
    server: GatewayServer

    def version_string(self) -> str:
        return self.server_version

    def _dispatch(self) -> None:
        started = time.monotonic()
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            self.send_error(411, "Length Required")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            self.send_error(400, "Bad Request")
            return
        if length < 0:
            self.send_error(400, "Bad Request")
            return
        if length > MAX_BODY_BYTES:
            self._write(ApiGateway._own(TOO_LARGE, str(uuid.uuid4())), close=True)
            return
        body = self.rfile.read(length) if length else b""
        target = self.path
        if not target.startswith("/"):
            # absolute-form (http://host/path): keep only the path and query
            m = re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://[^/?#]*(?P<rest>[/?].*)?$", target)
            target = (m.group("rest") or "/") if m else "/"
        request = GatewayRequest(
            method=self.command,
            target=target,
            headers=list(self.headers.items()),
            body=body,
            source_ip=self.client_address[0],
            protocol=self.request_version,
        )
        try:
            response = self.server.gateway.handle(request)
        except Exception as exc:  # noqa: BLE001 - a gateway bug must still answer, and never with a trace
            _log("ERROR", "gateway error", error=type(exc).__name__)
            response = ApiGateway._own(BAD_GATEWAY, str(uuid.uuid4()))
        self._write(response)
        path = target.partition("?")[0]
        _log(
            "INFO",
            "request",
            request_id=response.request_id,
            method=self.command,
            path=path[:200],
            status=response.status,
            api_key_id=response.api_key_id,
            latency_ms=round((time.monotonic() - started) * 1000, 2),
        )

    def _write(self, response: GatewayResponse, close: bool = False) -> None:
        self.send_response(response.status)
        for name, value in response.headers:
            if name.lower() not in _HOP_BY_HOP:
                self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        if close:
            self.send_header("Connection", "close")
            self.close_connection = True
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = do_TRACE = do_CONNECT = _dispatch

    def _any_other_method(self) -> None:
        self.close_connection = True
        self._dispatch()

    def __getattr__(self, name: str) -> Any:
        # Any other method token (QUERY, BREW, ...) reaches the gateway too, which answers as API Gateway does
        # for a method the resource does not define (403), instead of http.server's 501 (a 5xx).
        if name.startswith("do_"):
            return self._any_other_method
        raise AttributeError(name)

    def send_error(self, code: int, message: str | None = None, explain: str | None = None) -> None:
        """Errors found while parsing the request itself: JSON like everything else, then close.

        The text is the status's standard phrase: nothing from the request is echoed back.
        """
        text = self.responses.get(code, ("Error",))[0]
        response = GatewayResponse(
            code, [*GATEWAY_HEADERS.items()], json.dumps({"message": text}).encode(), str(uuid.uuid4())
        )
        if getattr(self, "command", None) is None:
            self.command = "GET"
        if getattr(self, "request_version", "HTTP/0.9") == "HTTP/0.9":
            self.request_version = "HTTP/1.1"  # always answer with a status line and headers
        self._write(response, close=True)

    def log_message(self, format: str, *args: Any) -> None:
        """The JSON access log in :meth:`_dispatch` replaces the default one."""


class GatewayServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address: tuple[str, int], gateway: ApiGateway) -> None:
        if address[0] not in ("127.0.0.1", "::1", "localhost"):
            raise ValueError("the local gateway binds loopback addresses only")
        self.gateway = gateway
        super().__init__(address, _RequestHandler)

    @property
    def port(self) -> int:
        return int(self.server_address[1])


def start_in_thread(gateway: ApiGateway, port: int = 0) -> tuple[GatewayServer, threading.Thread]:
    """Serve ``gateway`` on 127.0.0.1 from a background thread (tests); stop with ``server.shutdown()``."""
    server = GatewayServer(("127.0.0.1", port), gateway)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    return server, thread


# -- the process -------------------------------------------------------------------------------------------------------
def main(argv: list[str] | None = None) -> int:
    from rampart.local.aws import report_ready  # noqa: PLC0415

    parser = argparse.ArgumentParser(prog="python -m rampart.local.gateway", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--handler", default=DEFAULT_HANDLER)
    parser.add_argument("--stage", default="local")
    parser.add_argument("--function-name", default="rampart-local-api")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--ready-fd", type=int, default=None)
    args = parser.parse_args(argv)
    # The keys are the gateway's, not the function's: out of the environment before the handler loads.
    raw_keys = os.environ.pop(KEYS_ENV, "")
    try:
        keys = [ApiKey.from_json(k) for k in json.loads(raw_keys)]
    except (ValueError, KeyError, TypeError):
        _log("ERROR", f"{KEYS_ENV} must be a JSON list of API keys")
        return 2
    handler = load_handler(args.handler)  # the function's init phase
    from rampart.api.openapi import openapi_json  # noqa: PLC0415

    gateway = ApiGateway(
        handler,
        keys,
        openapi_json(),
        stage=args.stage,
        region=os.environ.get("AWS_REGION", "eu-west-1"),
        function_name=args.function_name,
        concurrency=args.concurrency,
    )
    server = GatewayServer(("127.0.0.1", args.port), gateway)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    serving = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    serving.start()
    report_ready(args.ready_fd, {"pid": os.getpid(), "port": server.port})
    _log("INFO", "serving", url=f"http://127.0.0.1:{server.port}{API_PREFIX}", stage=args.stage)
    parent = os.getppid()
    while not stop.wait(0.5):
        if os.getppid() != parent:
            _log("WARNING", "supervisor went away; stopping")
            break
    server.shutdown()
    server.server_close()
    gateway.close()
    _log("INFO", "stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
