"""Concurrent, distinct requests through the real gateway to the real API handler: every answer is its own.

Powertools' resolver keeps the current event in module state; run on shared threads, one request's parameters
leak into another's answer (wrong 400s, wrong request ids). The gateway runs each invocation alone in a worker
process, so 200 requests over 32 client threads, each with its own path, query and expected answer, must all
get exactly their own answer.
"""

from __future__ import annotations

import datetime as dt
import http.client
import json
import random
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlencode

import pytest

from rampart.local.gateway import ApiKey
from rampart.local.stack import Stack
from tests.e2e.conftest import wait_until
from tests.e2e.helpers import body, event, unique_source

pytestmark = pytest.mark.e2e

REQUESTS, THREADS = 200, 32


def _call(port: int, key: str, target: str) -> tuple[int, str, dict[str, Any]]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
    try:
        conn.request("GET", target, headers={"x-api-key": key})
        response = conn.getresponse()
        return response.status, str(response.getheader("x-amzn-RequestId")), json.loads(response.read())
    finally:
        conn.close()


def _instant(text: str) -> dt.datetime:
    return dt.datetime.fromisoformat(text.replace("Z", "+00:00"))


def test_concurrent_distinct_requests_each_get_their_own_answer(
    stack: Stack, keys: dict[str, ApiKey], admin_count: Callable[[str], int]
) -> None:
    prefix = unique_source("e2e-iso")
    sent = [event(f"{prefix}-{i}") for i in range(8)]
    assert stack.publish([body(e) for e in sent]).sent == len(sent)
    wait_until(lambda: all(admin_count(e["source"]) == 1 for e in sent), timeout=30)

    rng = random.Random(11)
    base = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    cases: list[tuple[str, Callable[[int, str, dict[str, Any]], None]]] = []
    for i in range(REQUESTS):
        kind = i % 6
        if kind == 0:  # one source per request: every item is that source's event
            e = sent[rng.randrange(len(sent))]
            target = "/v1/events?" + urlencode({"source": e["source"], "limit": str(1 + i % 50)})

            def check(status: int, rid: str, answer: dict[str, Any], e: dict[str, Any] = e) -> None:
                assert status == 200
                assert [(x["event_id"], x["source"]) for x in answer["items"]] == [(e["event_id"], e["source"])]

        elif kind == 1:  # one event by id
            e = sent[rng.randrange(len(sent))]
            target = f"/v1/events/{e['event_id']}"

            def check(status: int, rid: str, answer: dict[str, Any], e: dict[str, Any] = e) -> None:
                assert (status, answer["event_id"], answer["source"]) == (200, e["event_id"], e["source"])

        elif kind == 2:  # a window of its own: echoed back
            since = base + dt.timedelta(hours=i)
            target = "/v1/stats?" + urlencode(
                {"bucket": "hour", "since": since.isoformat(), "until": (since + dt.timedelta(hours=3)).isoformat()}
            )

            def check(status: int, rid: str, answer: dict[str, Any], since: dt.datetime = since) -> None:
                assert status == 200
                assert (_instant(answer["since"]), _instant(answer["until"])) == (since, since + dt.timedelta(hours=3))

        elif kind == 3:  # an unknown parameter of its own: named in its 400, with its own request id
            target = f"/v1/events?zz{i}=1&limit=5"

            def check(status: int, rid: str, answer: dict[str, Any], i: int = i) -> None:
                assert status == 400
                assert answer["error"]["code"] == "unknown_parameter"
                assert answer["error"]["message"] == f"unknown query parameter(s): zz{i}"
                assert answer["error"]["request_id"] == rid

        elif kind == 4:  # an id that does not exist: the 404 names the request id, read after a database trip
            target = f"/v1/events/{uuid.UUID(int=rng.getrandbits(128), version=4)}"

            def check(status: int, rid: str, answer: dict[str, Any]) -> None:
                assert (status, answer["error"]["code"], answer["error"]["request_id"]) == (404, "not_found", rid)

        else:  # a limit written with a sign: refused by a check that reads the CURRENT event's query
            target = f"/v1/events?limit=%2B{i}&source={prefix}-x{i}"

            def check(status: int, rid: str, answer: dict[str, Any]) -> None:
                assert status == 400
                assert answer["error"]["message"] == "limit: must be written in ASCII digits"
                assert answer["error"]["request_id"] == rid

        cases.append((target, check))

    key = keys["main"].value
    with ThreadPoolExecutor(THREADS) as pool:
        answers = list(pool.map(lambda case: _call(stack.api_port, key, case[0]), cases))
    failures = []
    for (target, check), (status, rid, answer) in zip(cases, answers, strict=True):
        try:
            check(status, rid, answer)
        except (AssertionError, KeyError, TypeError) as exc:
            failures.append(f"{target} -> {status} {json.dumps(answer)[:200]} ({exc!r})")
    assert failures == [], f"{len(failures)} of {REQUESTS} answers were not their own:\n" + "\n".join(failures[:10])
    assert len({rid for _, rid, _ in answers}) == REQUESTS
