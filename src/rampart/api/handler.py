"""API Lambda: API Gateway REST proxy -> Powertools resolver (with validation) -> PostgreSQL (read-only role).

Every error is one envelope, ``{"error": {"code", "message", "request_id"}}``: 400 for anything the client got
wrong (wrong type, out of range, unknown or repeated parameter, bad cursor, inverted window), 404, and 503
with ``Retry-After`` while the database is unreachable. Nothing internal (SQL, driver text, stack traces)
reaches a response. Every response carries the security headers below; there is no CORS.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import uuid
from collections.abc import Callable
from typing import Annotated, Any

import psycopg2
from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayRestResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.utilities.typing import LambdaContext
from pydantic import PlainValidator, WithJsonSchema

from rampart.api.cursor import InvalidCursorError, filters_digest
from rampart.api.cursor_keys import CursorKeyring, CursorKeysUnavailableError, keyring_from_env
from rampart.api.models import ErrorEnvelope, EventOut, EventPage, GatewayMessage, Health, Stats, StatsPoint
from rampart.api.paging import MAX_PAGE_BYTES, rows_that_fit
from rampart.api.window import Bucket, WindowError, check_order, stats_window
from rampart.db.connection import Database, DatabaseUnavailableError
from rampart.db.settings import DatabaseSettings
from rampart.db.store import MAX_STATS_POINTS, EventFilter, EventStore
from rampart.events import IDENTIFIER_PATTERN, parse_rfc3339

logger = Logger(service=os.environ.get("POWERTOOLS_SERVICE_NAME", "rampart-api"))
app = APIGatewayRestResolver(enable_validation=True)

RETRY_AFTER_S = "5"
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=63072000; includeSubDomains; preload",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Resource-Policy": "same-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}
_ERRORS = {400: "Invalid request", 404: "Not found", 503: "Database unavailable (retry after Retry-After)"}
# Answered by API Gateway itself, before the Lambda: a missing or unknown key, and usage-plan throttling.
_GATEWAY = {403: "Missing or invalid x-api-key", 429: "Throttled or over quota"}


def _responses(model: type, *errors: int) -> dict[int, Any]:
    """OpenAPI responses of a route: its model, the envelope for its errors, the gateway's own answers."""
    out: dict[int, Any] = {200: {"description": "OK", "content": {"application/json": {"model": model}}}}
    for code in errors:
        out[code] = {"description": _ERRORS[code], "content": {"application/json": {"model": ErrorEnvelope}}}
    for code, text in _GATEWAY.items():
        out[code] = {"description": text, "content": {"application/json": {"model": GatewayMessage}}}
    return out


_store: EventStore | None = None
_keyring: CursorKeyring | None = None


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


# -- dependencies, created on first use and reused while the execution environment is warm ----------------------
def _events() -> EventStore:
    global _store  # noqa: PLW0603
    if _store is None:
        settings = DatabaseSettings.from_env(application_name="rampart-api")
        _store = EventStore(Database(settings, read_only=True))
    return _store


def _cursors() -> CursorKeyring:
    global _keyring  # noqa: PLW0603
    if _keyring is None:
        _keyring = keyring_from_env()
    return _keyring


# -- errors ------------------------------------------------------------------------------------------------------
def _request_id() -> str | None:
    try:
        rid = app.current_event.request_context.request_id
    except (AttributeError, KeyError, TypeError):
        rid = None
    if not rid and app.lambda_context is not None:
        rid = getattr(app.lambda_context, "aws_request_id", None)
    return str(rid) if rid else None


def _envelope(code: str, message: str, request_id: str | None) -> str:
    return json.dumps({"error": {"code": code, "message": message, "request_id": request_id}})


def _error(status: int, code: str, message: str, headers: dict[str, str] | None = None) -> Response[str]:
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=_envelope(code, message, _request_id()),
        headers=headers,
    )


@app.exception_handler(RequestValidationError)  # type: ignore[untyped-decorator]
def _invalid_request(exc: RequestValidationError) -> Response[str]:
    # Powertools validates before any middleware runs: name an unknown or repeated parameter first.
    if problem := _parameter_problem():
        return problem
    problems = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if p not in ("query", "path", "body")]
        problems.append(f"{'.'.join(loc) or 'request'}: {err.get('msg', 'invalid')}")
    return _error(400, "invalid_parameter", "; ".join(problems)[:500])


@app.exception_handler(ApiError)  # type: ignore[untyped-decorator]
def _api_error(exc: ApiError) -> Response[str]:
    return _error(exc.status, exc.code, exc.message)


@app.exception_handler(psycopg2.DataError)  # type: ignore[untyped-decorator]
def _rejected_value(exc: psycopg2.DataError) -> Response[str]:
    # This API only reads, with values taken from the request: a value PostgreSQL cannot represent (a date
    # outside its range, say) is the client's mistake. The driver's text never reaches the client.
    logger.info("database rejected a request value", extra={"sqlstate": exc.pgcode})
    return _error(400, "invalid_parameter", "a parameter value is out of the supported range")


@app.exception_handler(WindowError)  # type: ignore[untyped-decorator]
def _window_error(exc: WindowError) -> Response[str]:
    return _error(400, exc.code, exc.message)


@app.exception_handler(DatabaseUnavailableError)  # type: ignore[untyped-decorator]
@app.exception_handler(CursorKeysUnavailableError)  # type: ignore[untyped-decorator]
def _unavailable(exc: DatabaseUnavailableError | CursorKeysUnavailableError) -> Response[str]:
    logger.warning("dependency unavailable", extra={"what": type(exc).__name__, "cause": type(exc.__cause__).__name__})
    return _error(503, "unavailable", "the service is temporarily unavailable", {"Retry-After": RETRY_AFTER_S})


@app.not_found
def _not_found(_exc: NotFoundError) -> Response[str]:
    return _error(404, "not_found", "no such resource")


@app.exception_handler(Exception)  # type: ignore[untyped-decorator]
def _internal(_exc: Exception) -> Response[str]:
    logger.exception("unhandled error")
    return _error(500, "internal_error", "internal error")


def _parameter_problem() -> Response[str] | None:
    """Unknown or repeated query parameters are client mistakes: 400, never silently ignored."""
    route = app.context.get("_route")
    allowed = {f.alias for f in route.dependant.query_params} if route is not None else set()
    event = app.current_event
    multi = event.multi_value_query_string_parameters or {}
    names = set(event.query_string_parameters or {}) | set(multi)
    unknown = sorted(names - allowed)
    if unknown:
        shown = ", ".join(n[:40] for n in unknown[:5])
        return _error(400, "unknown_parameter", f"unknown query parameter(s): {shown}")
    repeated = sorted(n for n, values in multi.items() if len(values) > 1)
    if repeated:
        return _error(400, "repeated_parameter", f"query parameter given more than once: {', '.join(repeated)}")
    return None


def _reject_unknown_parameters(resolver: APIGatewayRestResolver, next_middleware: Callable[..., Any]) -> Any:
    return _parameter_problem() or next_middleware(resolver)


app.use(middlewares=[_reject_unknown_parameters])


# -- routes ------------------------------------------------------------------------------------------------------
def _json(body: str) -> Response[str]:
    return Response(status_code=200, content_type=content_types.APPLICATION_JSON, body=body)


def _require_plain_digits(name: str) -> None:
    """Integers are written in ASCII digits: ' 5', '+5' or full-width digits are client mistakes, not numbers
    to guess at (pydantic's lax parsing would accept them)."""
    raw = (app.current_event.query_string_parameters or {}).get(name)
    if raw is not None and not (raw.isascii() and raw.isdigit()):
        raise ApiError(400, "invalid_parameter", f"{name}: must be written in ASCII digits")


IdentifierQuery = Annotated[str | None, Query(pattern=IDENTIFIER_PATTERN, max_length=63)]
# Dates are RFC 3339, parsed by the one parser events are (rampart.events.parse_rfc3339) into a UTC instant:
# no Unix times, no offset beyond ±14:00, nothing outside years 0001-9999 once in UTC.
Instant = Annotated[
    dt.datetime,
    PlainValidator(parse_rfc3339),
    WithJsonSchema({"type": "string", "format": "date-time"}),
]
TimeQuery = Annotated[
    Instant | None,
    Query(
        description="RFC 3339 date-time with an explicit offset (at most ±14:00), e.g. 2026-01-01T00:00:00Z; "
        "the same rule as an event's occurred_at (docs/event.schema.json)"
    ),
]
LIST_DESCRIPTION = (
    "Events in (occurred_at, event_id) order, filtered, in pages. A page holds at most `limit` items and at most "
    f"{MAX_PAGE_BYTES // (1024 * 1024)} MiB (measured as the body travels in the Lambda response, JSON-escaped): "
    "a page of large events ends early, with a `next_cursor`. Follow `next_cursor` until it is null; every event "
    "is on exactly one page."
)


@app.get(
    "/v1/events",
    responses=_responses(EventPage, 400, 503),
    summary="List events (keyset pagination)",
    description=LIST_DESCRIPTION,
)
def list_events(
    source: IdentifierQuery = None,
    type: IdentifierQuery = None,
    since: TimeQuery = None,
    until: TimeQuery = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    cursor: Annotated[str | None, Query(min_length=1, max_length=512)] = None,
) -> Response[str]:
    # The body is assembled from the JSON text PostgreSQL built for each row (EventOut's shape, documented in
    # the OpenAPI document through `responses`): no per-item Python objects on the hot path.
    _require_plain_digits("limit")
    check_order(since, until)
    digest = filters_digest(source, type, since.isoformat() if since else None, until.isoformat() if until else None)
    after = None
    if cursor is not None:
        try:
            after = _cursors().decode(cursor, digest)
        except InvalidCursorError as exc:
            raise ApiError(400, "invalid_cursor", str(exc)) from None
    rows = _events().list_events(EventFilter(source, type, since, until), after, limit + 1)
    more = len(rows) > limit
    rows = rows[:limit]
    fit = rows_that_fit([row.json for row in rows])  # the page ends early rather than outgrow the response
    if fit < len(rows):
        rows, more = rows[:fit], True
    next_cursor = None
    if more:
        last = rows[-1]
        next_cursor = _cursors().encode(last.occurred_at, last.event_id, digest)
    items = ",".join(row.json for row in rows)
    return _json(f'{{"items":[{items}],"next_cursor":{json.dumps(next_cursor)}}}')


@app.get("/v1/events/<event_id>", responses=_responses(EventOut, 400, 404, 503), summary="Get one event")
def get_event(event_id: Annotated[uuid.UUID, Path()]) -> Response[str]:
    found = _events().get_event_json(event_id)
    if found is None:
        raise ApiError(404, "not_found", "no event with this id")
    return _json(found)


@app.get("/v1/stats", responses=_responses(Stats, 400, 503), summary="Event counts per type per hour or day")
def stats(
    bucket: Annotated[Bucket, Query()] = "hour",
    since: TimeQuery = None,
    until: TimeQuery = None,
) -> Stats:
    start, end = stats_window(bucket, since, until, dt.datetime.now(dt.UTC))
    rows = _events().stats(bucket, start, end)
    if len(rows) > MAX_STATS_POINTS:
        raise ApiError(
            400,
            "window_too_large",
            f"the window holds more than {MAX_STATS_POINTS} (bucket, type) points; narrow it or use bucket=day",
        )
    return Stats(
        bucket=bucket,
        since=start,
        until=end,
        series=[StatsPoint(bucket_start=r.bucket_start, type=r.type, events=r.events) for r in rows],
    )


@app.get("/v1/health", responses=_responses(Health, 503), summary="Health, including the database")
def health() -> Health:
    _events().ping()
    return Health(status="ok", database="ok")


# -- entry point -------------------------------------------------------------------------------------------------
def _with_security_headers(response: dict[str, Any]) -> dict[str, Any]:
    if "multiValueHeaders" in response:
        for name, value in SECURITY_HEADERS.items():
            response["multiValueHeaders"][name] = [value]
    else:
        response.setdefault("headers", {}).update(SECURITY_HEADERS)
    return response


def _is_bad_text(value: object) -> bool:
    return isinstance(value, str) and ("\x00" in value or any(0xD800 <= ord(c) <= 0xDFFF for c in value))


def _precheck(event: dict[str, Any]) -> tuple[str, str] | None:
    """What must be refused before routing: text that is not valid UTF-8 (it cannot be validated, and must not
    crash anything further in), and a request body (every route is a GET that takes none)."""
    texts: list[object] = [event.get("path")]
    for field in ("queryStringParameters", "pathParameters"):
        for key, value in (event.get(field) or {}).items():
            texts += [key, value]
    for key, values in (event.get("multiValueQueryStringParameters") or {}).items():
        texts += [key, *(values or [])]
    if any(_is_bad_text(t) for t in texts):
        return "invalid_parameter", "parameters must be valid UTF-8 text"
    if event.get("body"):
        return "unexpected_body", "this API takes no request body"
    return None


@logger.inject_lambda_context(clear_state=True)
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if problem := _precheck(event):
        request_id = (event.get("requestContext") or {}).get("requestId")
        response = {
            "statusCode": 400,
            "headers": {"Content-Type": "application/json"},
            "body": _envelope(*problem, request_id),
            "isBase64Encoded": False,
        }
        return _with_security_headers(response)
    return _with_security_headers(app.resolve(event, context))
