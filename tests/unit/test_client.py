"""RampartClient against a tiny local HTTP server that answers what we script: retries, Retry-After, errors."""

from __future__ import annotations

import datetime as dt
import decimal
import email.utils
import json
import sys
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from rampart.client import Event, RampartApiError, RampartClient, RampartConnectionError


@dataclass
class Answer:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


@dataclass
class Script:
    answers: list[Answer] = field(default_factory=list)
    requests: list[tuple[str, dict[str, str]]] = field(default_factory=list)


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        script = self.server.script
        script.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}))
        answer = script.answers.pop(0) if script.answers else Answer(500, {"message": "script exhausted"})
        time.sleep(answer.delay)
        raw = answer.body if isinstance(answer.body, bytes) else json.dumps(answer.body).encode()
        self.send_response(answer.status)
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *_args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    script: Script

    def handle_error(self, request: Any, client_address: Any) -> None:
        """The timeout test hangs up before the answer is written: expected, not worth a trace."""
        if not isinstance(sys.exc_info()[1], ConnectionError):
            super().handle_error(request, client_address)


@pytest.fixture
def server() -> Iterator[tuple[str, Script]]:
    srv = _Server(("127.0.0.1", 0), _Handler)
    srv.script = Script()
    thread = threading.Thread(target=srv.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{srv.server_address[1]}/v1", srv.script
    finally:
        srv.shutdown()
        srv.server_close()


class Sleeps:
    def __init__(self) -> None:
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def event_json(i: int = 0) -> dict[str, Any]:
    return {
        "event_id": str(uuid.UUID(int=i + 1)),
        "source": "billing",
        "type": "invoice.paid",
        "occurred_at": f"2026-01-01T00:00:{i % 60:02d}Z",
        "received_at": "2026-01-01T00:01:00.123456+00:00",
        "payload": {"i": i},
    }


def envelope(code: str, message: str, request_id: str = "req-1") -> dict[str, Any]:
    return {"error": {"code": code, "message": message, "request_id": request_id}}


def test_429_with_retry_after_is_retried_after_waiting_at_least_that_long(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [
        Answer(429, {"message": "Too Many Requests"}, {"Retry-After": "2"}),
        Answer(200, {"status": "ok", "database": "ok"}),
    ]
    sleeps = Sleeps()
    client = RampartClient(url, "k" * 20, sleep=sleeps, jitter=lambda: 0.5)
    assert client.health().status == "ok"
    assert len(script.requests) == 2
    assert len(sleeps.calls) == 1 and sleeps.calls[0] >= 2.0


def test_503_with_an_http_date_retry_after_is_honoured(server: tuple[str, Script]) -> None:
    url, script = server
    now = dt.datetime(2026, 11, 30, 12, 0, 0, tzinfo=dt.UTC)  # the client's clock, pinned: no wall-clock race
    when = email.utils.format_datetime(now + dt.timedelta(seconds=30), usegmt=True)
    script.answers = [
        Answer(503, envelope("unavailable", "the service is temporarily unavailable"), {"Retry-After": when}),
        Answer(503, envelope("unavailable", "the service is temporarily unavailable"), {"Retry-After": "1"}),
        Answer(200, {"status": "ok", "database": "ok"}),
    ]
    sleeps = Sleeps()
    client = RampartClient(url, "k" * 20, sleep=sleeps, jitter=lambda: 0.0, clock=now.timestamp)
    assert client.health().database == "ok"
    assert sleeps.calls[0] == 30.0
    assert sleeps.calls[1] == 1.0


def test_5xx_without_retry_after_backs_off_exponentially_with_jitter_then_raises_the_envelope(
    server: tuple[str, Script],
) -> None:
    url, script = server
    script.answers = [Answer(502, {"message": "Internal server error"})] * 3 + [
        Answer(503, envelope("unavailable", "down", "req-9"), {"Retry-After": "x"})
    ]
    sleeps = Sleeps()
    client = RampartClient(url, "k" * 20, max_retries=3, backoff_base=0.5, sleep=sleeps, jitter=lambda: 1.0)
    with pytest.raises(RampartApiError) as info:
        client.health()
    assert sleeps.calls == [0.5, 1.0, 2.0]  # full jitter over base * 2**attempt (jitter pinned to its maximum)
    err = info.value
    assert (err.status, err.code, err.message, err.request_id) == (503, "unavailable", "down", "req-9")
    assert err.envelope == envelope("unavailable", "down", "req-9")
    assert len(script.requests) == 4


def test_jitter_spreads_the_waits(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [Answer(500, {"message": "x"})] * 2 + [Answer(200, {"status": "ok", "database": "ok"})]
    sleeps = Sleeps()
    values = iter([0.25, 0.75])
    client = RampartClient(url, "k" * 20, backoff_base=1.0, sleep=sleeps, jitter=lambda: next(values))
    client.health()
    assert sleeps.calls == [0.25, 1.5]


def test_client_errors_are_not_retried_and_carry_the_envelope(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [Answer(400, envelope("invalid_cursor", "cursor was tampered with", "req-42"))]
    client = RampartClient(url, "k" * 20, sleep=Sleeps())
    with pytest.raises(RampartApiError) as info:
        client.get_page(cursor="abc")
    assert (info.value.status, info.value.code, info.value.request_id) == (400, "invalid_cursor", "req-42")
    assert len(script.requests) == 1


def test_gateway_answers_become_errors_with_a_code(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [Answer(403, {"message": "Forbidden"}, {"x-amzn-RequestId": "gw-1"})]
    with pytest.raises(RampartApiError) as info:
        RampartClient(url, "k" * 20).health()
    assert (info.value.status, info.value.code, info.value.message) == (403, "forbidden", "Forbidden")
    assert info.value.request_id == "gw-1"


def test_a_spent_quota_is_not_retried(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [Answer(429, {"message": "Limit Exceeded"})]
    sleeps = Sleeps()
    with pytest.raises(RampartApiError) as info:
        RampartClient(url, "k" * 20, sleep=sleeps).health()
    assert info.value.code == "quota_exceeded"
    assert sleeps.calls == []


def test_a_retry_after_beyond_the_limit_is_not_waited_for(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [Answer(503, envelope("unavailable", "later"), {"Retry-After": "3600"})]
    sleeps = Sleeps()
    with pytest.raises(RampartApiError) as info:
        RampartClient(url, "k" * 20, sleep=sleeps, max_retry_after=60).health()
    assert info.value.retry_after == 3600
    assert sleeps.calls == []


def test_timeouts_are_retried_then_raised(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [Answer(200, {"status": "ok", "database": "ok"}, delay=0.6)] * 2
    sleeps = Sleeps()
    client = RampartClient(url, "k" * 20, timeout=0.2, max_retries=1, sleep=sleeps, jitter=lambda: 0.0)
    with pytest.raises(RampartConnectionError):
        client.health()
    assert len(sleeps.calls) == 1
    assert len(script.requests) == 2


def test_list_events_follows_cursors_and_sends_the_key_and_filters(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [
        Answer(200, {"items": [event_json(0), event_json(1)], "next_cursor": "c1"}),
        Answer(200, {"items": [event_json(2), event_json(3)], "next_cursor": "c2"}),
        Answer(200, {"items": [event_json(4)], "next_cursor": None}),
    ]
    client = RampartClient(url, "secret-key-0123456789")
    since = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    events = list(client.list_events(source="billing", since=since, page_size=2))
    assert [e.payload["i"] for e in events] == [0, 1, 2, 3, 4]
    assert all(isinstance(e, Event) and isinstance(e.event_id, uuid.UUID) for e in events)
    assert events[0].occurred_at == dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    queries = [parse_qs(urlsplit(path).query) for path, _ in script.requests]
    assert [q.get("cursor") for q in queries] == [None, ["c1"], ["c2"]]
    assert all(q["source"] == ["billing"] and q["limit"] == ["2"] for q in queries)
    assert queries[0]["since"] == [since.isoformat()]
    assert all(urlsplit(path).path == "/v1/events" for path, _ in script.requests)
    assert all(h["x-api-key"] == "secret-key-0123456789" for _, h in script.requests)


def test_get_event_and_stats_are_typed(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [
        Answer(200, event_json(7)),
        Answer(
            200,
            {
                "bucket": "hour",
                "since": "2026-01-01T00:00:00Z",
                "until": "2026-01-02T00:00:00Z",
                "series": [{"bucket_start": "2026-01-01T05:00:00Z", "type": "invoice.paid", "events": 12}],
            },
        ),
    ]
    client = RampartClient(url, "k" * 20)
    got = client.get_event(uuid.UUID(int=8))
    assert got.event_id == uuid.UUID(int=8) and got.received_at.tzinfo is not None
    assert script.requests[0][0] == f"/v1/events/{uuid.UUID(int=8)}"
    stats = client.stats("hour", since="2026-01-01T00:00:00Z")
    assert stats.series[0].events == 12 and stats.series[0].bucket_start.hour == 5


def test_redirects_are_not_followed(server: tuple[str, Script]) -> None:
    url, script = server
    script.answers = [Answer(302, {"message": "moved"}, {"Location": "http://127.0.0.1:9/steal"})]
    with pytest.raises(RampartApiError) as info:
        RampartClient(url, "k" * 20, sleep=Sleeps()).health()
    assert info.value.status == 302
    assert len(script.requests) == 1


def test_the_key_is_never_sent_over_plain_http_to_a_remote_host() -> None:
    with pytest.raises(ValueError, match="HTTPS"):
        RampartClient("http://api.example.com/v1", "k" * 20)
    with pytest.raises(ValueError, match="http"):
        RampartClient("ftp://127.0.0.1/v1", "k" * 20)
    assert "k" * 20 not in repr(RampartClient("https://api.example.com/v1", "k" * 20))


def test_naive_datetimes_are_refused(server: tuple[str, Script]) -> None:
    url, _ = server
    with pytest.raises(ValueError, match="timezone"):
        RampartClient(url, "k" * 20).get_page(since=dt.datetime(2026, 1, 1))


def test_numbers_arrive_exactly_as_the_api_sent_them(server: tuple[str, Script]) -> None:
    url, script = server
    numbers = '"amount": 0.1000000000000000055511151231257827, "huge": 1E+400'
    raw = json.dumps(event_json(7)).replace('"i": 7', f'"i": 7, {numbers}')
    assert "1E+400" in raw
    script.answers = [Answer(200, raw.encode())]
    got = RampartClient(url, "k" * 20).get_event(uuid.UUID(int=8))
    assert got.payload["amount"] == decimal.Decimal("0.1000000000000000055511151231257827")  # a float would be 0.1
    assert got.payload["huge"] == decimal.Decimal("1E+400")  # a float would be inf
    assert got.payload["i"] == 7 and isinstance(got.payload["i"], int)
