"""A client for the Rampart API, for key holders. Standard library only.

    from rampart.client import RampartClient

    client = RampartClient("https://api.example.com/v1", api_key="...")
    for event in client.list_events(source="billing", since=dt.datetime(2026, 1, 1, tzinfo=dt.UTC)):
        print(event.event_id, event.type)

- ``list_events`` is an iterator that follows ``next_cursor`` page after page; ``get_event``, ``stats`` and
  ``health`` return typed results (frozen dataclasses).
- Every request has a timeout. 429 and 5xx answers, timeouts and connection errors are retried with
  exponential backoff and full jitter; a ``Retry-After`` header is honoured (waited at least, up to
  ``max_retry_after``). A daily quota that is used up (429 "Limit Exceeded") is not retried: it will not
  recover before tomorrow.
- Errors raise :class:`RampartApiError`, which carries the status, the API's error envelope
  (``code``, ``message``, ``request_id``) or API Gateway's ``{"message": ...}``.
- The API key travels only over HTTPS, except to a loopback address (the local stack); redirects are never
  followed, so the key is never sent to another host.
- Numbers arrive exactly as the API sent them: a number with a fraction or an exponent becomes a
  :class:`decimal.Decimal`, never a binary float (``0.1`` stays ``Decimal('0.1')``, ``1e400`` stays finite),
  so a payload reads back equal to what its producer published.
"""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from rampart import __version__

RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
QUOTA_MESSAGE = "Limit Exceeded"
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


# -- results -----------------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Event:
    event_id: uuid.UUID
    source: str
    type: str
    occurred_at: dt.datetime
    received_at: dt.datetime
    payload: dict[str, Any]

    @staticmethod
    def from_json(raw: Mapping[str, Any]) -> Event:
        return Event(
            event_id=uuid.UUID(str(raw["event_id"])),
            source=str(raw["source"]),
            type=str(raw["type"]),
            occurred_at=_parse_time(raw["occurred_at"]),
            received_at=_parse_time(raw["received_at"]),
            payload=dict(raw["payload"]),
        )


@dataclass(frozen=True)
class EventPage:
    items: list[Event]
    next_cursor: str | None


@dataclass(frozen=True)
class StatsPoint:
    bucket_start: dt.datetime
    type: str
    events: int


@dataclass(frozen=True)
class Stats:
    bucket: str
    since: dt.datetime
    until: dt.datetime
    series: list[StatsPoint]


@dataclass(frozen=True)
class Health:
    status: str
    database: str


# -- errors ------------------------------------------------------------------------------------------------------------
class RampartError(Exception):
    """Base class of the client's errors."""


class RampartApiError(RampartError):
    """The API answered with an error (after any retries)."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        request_id: str | None = None,
        envelope: Mapping[str, Any] | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(f"HTTP {status} {code}: {message}" + (f" (request {request_id})" if request_id else ""))
        self.status = status
        self.code = code
        self.message = message
        self.request_id = request_id
        self.envelope = dict(envelope) if envelope is not None else None
        self.retry_after = retry_after


class RampartConnectionError(RampartError):
    """The API could not be reached (after any retries)."""


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: Any, **_kwargs: Any) -> None:
        return None  # a 3xx surfaces as an error: the key is never replayed to another location


def _parse_time(value: Any) -> dt.datetime:
    parsed = dt.datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    if parsed.tzinfo is None:
        raise ValueError(f"timestamp without a timezone: {value!r}")
    return parsed


def _iso(value: dt.datetime | str | None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if value.tzinfo is None:
        raise ValueError("datetimes must be timezone-aware")
    return value.isoformat()


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class RampartClient:
    def __init__(
        self,
        base_url: str,
        api_key: str,
        *,
        timeout: float = 10.0,
        max_retries: int = 4,
        backoff_base: float = 0.25,
        backoff_max: float = 20.0,
        max_retry_after: float = 60.0,
        sleep: Callable[[float], None] = time.sleep,
        jitter: Callable[[], float] = random.random,
        clock: Callable[[], float] = time.time,
    ) -> None:
        parts = urllib.parse.urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL, e.g. https://api.example.com/v1")
        if parts.scheme == "http" and parts.hostname not in _LOOPBACK:
            raise ValueError("the API key travels only over HTTPS (plain http is allowed to loopback only)")
        if not api_key:
            raise ValueError("an API key is required")
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self.timeout = timeout
        self.max_retries = max_retries
        self.backoff_base = backoff_base
        self.backoff_max = backoff_max
        self.max_retry_after = max_retry_after
        self._sleep = sleep
        self._jitter = jitter
        self._clock = clock  # wall clock, for a Retry-After given as an HTTP date
        handlers: list[urllib.request.BaseHandler] = [_NoRedirect()]
        if parts.hostname in _LOOPBACK:
            handlers.append(urllib.request.ProxyHandler({}))  # never send loopback traffic to a proxy
        self._opener = urllib.request.build_opener(*handlers)

    def __repr__(self) -> str:
        return f"RampartClient({self.base_url!r}, api_key=***)"

    # -- the API -------------------------------------------------------------------------------------------------------
    def get_page(
        self,
        *,
        source: str | None = None,
        type: str | None = None,
        since: dt.datetime | str | None = None,
        until: dt.datetime | str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> EventPage:
        """One page of ``GET /events``."""
        params = {
            "source": source,
            "type": type,
            "since": _iso(since),
            "until": _iso(until),
            "limit": str(limit) if limit is not None else None,
            "cursor": cursor,
        }
        raw = self._get("/events", params)
        return EventPage([Event.from_json(item) for item in raw["items"]], raw.get("next_cursor"))

    def pages(
        self,
        *,
        source: str | None = None,
        type: str | None = None,
        since: dt.datetime | str | None = None,
        until: dt.datetime | str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> Iterator[EventPage]:
        """Every page, following ``next_cursor`` until the last one."""
        while True:
            page = self.get_page(source=source, type=type, since=since, until=until, limit=page_size, cursor=cursor)
            yield page
            if not page.next_cursor:
                return
            cursor = page.next_cursor

    def list_events(
        self,
        *,
        source: str | None = None,
        type: str | None = None,
        since: dt.datetime | str | None = None,
        until: dt.datetime | str | None = None,
        page_size: int | None = None,
        cursor: str | None = None,
    ) -> Iterator[Event]:
        """Every matching event, in (occurred_at, event_id) order, fetched page by page as you iterate."""
        for page in self.pages(source=source, type=type, since=since, until=until, page_size=page_size, cursor=cursor):
            yield from page.items

    def get_event(self, event_id: uuid.UUID | str) -> Event:
        return Event.from_json(self._get("/events/" + urllib.parse.quote(str(event_id), safe=""), {}))

    def stats(
        self,
        bucket: Literal["hour", "day"] = "hour",
        since: dt.datetime | str | None = None,
        until: dt.datetime | str | None = None,
    ) -> Stats:
        raw = self._get("/stats", {"bucket": bucket, "since": _iso(since), "until": _iso(until)})
        series = [StatsPoint(_parse_time(p["bucket_start"]), str(p["type"]), int(p["events"])) for p in raw["series"]]
        return Stats(str(raw["bucket"]), _parse_time(raw["since"]), _parse_time(raw["until"]), series)

    def health(self) -> Health:
        raw = self._get("/health", {})
        return Health(str(raw["status"]), str(raw["database"]))

    # -- transport -----------------------------------------------------------------------------------------------------
    def _get(self, path: str, params: Mapping[str, str | None]) -> dict[str, Any]:
        query = urllib.parse.urlencode({k: v for k, v in params.items() if v is not None})
        url = self.base_url + path + ("?" + query if query else "")
        attempt = 0
        while True:
            try:
                return self._once(url)
            except RampartApiError as exc:
                retryable = exc.status in RETRY_STATUSES and not (exc.status == 429 and exc.message == QUOTA_MESSAGE)
                if not retryable or attempt >= self.max_retries:
                    raise
                if exc.retry_after is not None and exc.retry_after > self.max_retry_after:
                    raise
                delay = self._backoff(attempt, exc.retry_after)
            except RampartConnectionError:
                if attempt >= self.max_retries:
                    raise
                delay = self._backoff(attempt, None)
            self._sleep(delay)
            attempt += 1

    def _backoff(self, attempt: int, retry_after: float | None) -> float:
        """Full jitter over an exponential ceiling; never sooner than the server's Retry-After."""
        if retry_after is not None:
            return retry_after + self._jitter() * self.backoff_base
        ceiling: float = min(self.backoff_max, self.backoff_base * 2.0**attempt)
        return self._jitter() * ceiling

    def _once(self, url: str) -> dict[str, Any]:
        request = urllib.request.Request(  # noqa: S310 - the scheme is checked to be http(s) in __init__
            url,
            headers={
                "x-api-key": self._api_key,
                "Accept": "application/json",
                "User-Agent": f"rampart-client/{__version__}",
            },
            method="GET",
        )
        try:
            with self._opener.open(request, timeout=self.timeout) as response:
                status, body = response.status, response.read()
        except urllib.error.HTTPError as exc:
            with exc:
                body = exc.read()
            raise self._error(exc.code, body, exc.headers) from None
        except (urllib.error.URLError, TimeoutError, ConnectionError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise RampartConnectionError(f"cannot reach {self.base_url}: {reason}") from None
        try:
            parsed = json.loads(body, parse_float=decimal.Decimal)  # exact decimals, as the API sent them
        except ValueError:
            raise RampartApiError(status, "invalid_response", "the response is not JSON") from None
        if not isinstance(parsed, dict):
            raise RampartApiError(status, "invalid_response", "the response is not a JSON object")
        return parsed

    def _error(self, status: int, body: bytes, headers: Any) -> RampartApiError:
        retry_after = _retry_after(headers.get("Retry-After") if headers else None, self._clock())
        try:
            parsed = json.loads(body)
        except ValueError:
            parsed = None
        if isinstance(parsed, dict) and isinstance(parsed.get("error"), dict):
            err = parsed["error"]
            return RampartApiError(
                status,
                str(err.get("code", "error")),
                str(err.get("message", "")),
                err.get("request_id"),
                parsed,
                retry_after,
            )
        request_id = headers.get("x-amzn-RequestId") if headers else None
        if isinstance(parsed, dict) and isinstance(parsed.get("message"), str):
            # API Gateway's own answer (no key, throttled, over quota, Lambda error).
            code = {403: "forbidden", 429: "throttled", 502: "bad_gateway", 504: "gateway_timeout"}.get(
                status, "gateway_error"
            )
            if status == 429 and parsed["message"] == QUOTA_MESSAGE:
                code = "quota_exceeded"
            return RampartApiError(status, code, parsed["message"], request_id, parsed, retry_after)
        return RampartApiError(status, "http_error", f"HTTP {status}", request_id, None, retry_after)
