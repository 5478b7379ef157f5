"""The pipeline end to end on the local stack: SNS -> SQS -> ingest Lambda -> PostgreSQL -> gateway -> API Lambda."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable

import pytest

from rampart.api.openapi import openapi_json
from rampart.client import RampartApiError, RampartClient
from rampart.local.gateway import ApiKey
from rampart.local.stack import Stack
from tests.e2e.conftest import wait_until
from tests.e2e.helpers import body, event, unique_source

pytestmark = pytest.mark.e2e

_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def http_get(url: str, headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=10) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, dict(exc.headers), exc.read()


def test_published_event_is_readable_through_the_gateway(stack: Stack, client: RampartClient) -> None:
    # How fast is measured by bench/ (docs/benchmarks.md), never asserted here: a loaded machine is slow, not wrong.
    sent = event(unique_source("e2e-fresh"), order="A-1", amount_cents=1999)
    result = stack.publish([body(sent)])
    assert result.sent == 1

    def fetch() -> object:
        try:
            return client.get_event(sent["event_id"])
        except RampartApiError as exc:
            if exc.status != 404:
                raise
            return None

    got = wait_until(fetch, timeout=120)
    assert str(got.event_id) == sent["event_id"]
    assert (got.source, got.type, got.payload) == (sent["source"], sent["type"], sent["payload"])
    assert got.occurred_at == dt.datetime.fromisoformat(sent["occurred_at"])
    assert got.received_at >= got.occurred_at
    # The same event through the list route, filtered by its source.
    listed = list(client.list_events(source=sent["source"]))
    assert [str(e.event_id) for e in listed] == [sent["event_id"]]


def test_poison_messages_go_to_the_dlq_with_their_reason_and_the_rest_of_the_batch_is_stored(
    stack: Stack, client: RampartClient, admin_count: Callable[[str], int]
) -> None:
    source = unique_source("e2e-poison")
    marker = uuid.uuid4().hex
    good = [event(source, i=i) for i in range(8)]
    not_json = f"not json {marker}"
    nul_payload = body(event(source, note=f"{marker}\u0000"))  # valid JSON; PostgreSQL's jsonb rejects NUL
    bodies = [body(e) for e in good[:4]] + [not_json] + [body(e) for e in good[4:]] + [nul_payload]
    assert len(bodies) == 10  # one SNS PublishBatch, so the ten arrive together and share a batch
    assert stack.publish(bodies).sent == 10

    wait_until(lambda: admin_count(source) == len(good), timeout=120)
    assert stack.resources is not None
    sqs = stack.client("sqs")
    reasons: dict[str, str] = {}
    deadline = time.monotonic() + 120
    while len(reasons) < 2 and time.monotonic() < deadline:
        answer = sqs.receive_message(
            QueueUrl=stack.resources.dlq_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            MessageAttributeNames=["All"],
        )
        for m in answer.get("Messages", []):
            if marker in m["Body"]:
                reasons[m["Body"]] = m["MessageAttributes"]["rampart_failure_reason"]["StringValue"]
                sqs.delete_message(QueueUrl=stack.resources.dlq_url, ReceiptHandle=m["ReceiptHandle"])
    assert set(reasons) == {not_json, nul_payload}
    assert "not valid JSON" in reasons[not_json]
    assert "NUL" in reasons[nul_payload] or "PostgreSQL" in reasons[nul_payload]
    # Every good record of the batch is stored exactly once and served by the API.
    stored = {str(e.event_id) for e in client.list_events(source=source)}
    assert stored == {e["event_id"] for e in good}
    # Nothing of this batch is left on the main queue (deleted, not waiting for a redelivery).
    attrs = sqs.get_queue_attributes(
        QueueUrl=stack.resources.queue_url,
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    assert attrs == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}


def test_requests_without_a_valid_key_are_refused_like_api_gateway(stack: Stack, keys: dict[str, ApiKey]) -> None:
    url = stack.api_url + "/events"
    for headers in ({}, {"x-api-key": "wrong-" + keys["main"].value}, {"x-api-key": ""}, {"X-Api-Key": "x" * 40}):
        status, resp_headers, raw = http_get(url, headers)
        assert status == 403, headers
        assert json.loads(raw) == {"message": "Forbidden"}
        assert resp_headers["x-amzn-ErrorType"] == "ForbiddenException"
    # The right key in any header casing is accepted (HTTP header names are case-insensitive).
    status, _, _ = http_get(stack.api_url + "/health", {"X-API-KEY": keys["main"].value})
    assert status == 200
    # Resources the API does not have: API Gateway's "Missing Authentication Token", with or without a key.
    for path, headers in (("/nope", {}), ("/nope", {"x-api-key": keys["main"].value}), ("/events/a/b", {})):
        status, _, raw = http_get(stack.api_url + path, headers)
        assert (status, json.loads(raw)) == (403, {"message": "Missing Authentication Token"})
    # The OpenAPI document is served without a key, and is the one the code generates.
    status, resp_headers, raw = http_get(stack.api_url + "/openapi.json")
    assert status == 200
    assert raw.decode() == openapi_json()


def test_past_the_burst_requests_get_429_then_service_resumes(stack: Stack, keys: dict[str, ApiKey]) -> None:
    # The limited plan refills one token every 10 s (tests/e2e/conftest.py): the request right after the burst is
    # throttled however slow the machine is, and the refill itself is tested with a fake clock in
    # tests/unit/test_local_gateway.py. Here: the burst passes, the next request gets API Gateway's 429, another
    # key is unaffected, and the throttled key is served again once a token is back (polled, not slept).
    limited = keys["limited"]
    headers = {"x-api-key": limited.value}
    statuses = [http_get(stack.api_url + "/health", headers)[0] for _ in range(limited.plan.burst)]
    assert statuses == [200] * limited.plan.burst
    status, resp_headers, raw = http_get(stack.api_url + "/health", headers)
    assert (status, json.loads(raw)) == (429, {"message": "Too Many Requests"})
    assert resp_headers["x-amzn-ErrorType"] == "TooManyRequestsException"
    assert http_get(stack.api_url + "/health", {"x-api-key": keys["main"].value})[0] == 200
    wait_until(lambda: http_get(stack.api_url + "/health", headers)[0] == 200, timeout=120, interval=0.5)


def test_the_daily_quota_ends_in_limit_exceeded(stack: Stack, keys: dict[str, ApiKey]) -> None:
    quota = keys["quota"]
    assert quota.plan.quota_per_day == 3
    answers = [http_get(stack.api_url + "/health", {"x-api-key": quota.value}) for _ in range(5)]
    assert [a[0] for a in answers] == [200, 200, 200, 429, 429]
    assert json.loads(answers[-1][2]) == {"message": "Limit Exceeded"}
    # The client does not retry a spent quota: it cannot recover before tomorrow.
    client = RampartClient(stack.api_url, quota.value, max_retries=3, sleep=lambda _s: pytest.fail("retried"))
    with pytest.raises(RampartApiError) as info:
        client.health()
    assert (info.value.status, info.value.code) == (429, "quota_exceeded")


def test_the_client_iterates_every_page_without_duplicate_or_gap_while_events_are_ingested(
    stack: Stack, client: RampartClient, admin_count: Callable[[str], int]
) -> None:
    source = unique_source("e2e-pages")
    base = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(hours=2)

    def spread(n: int, offset: int) -> list[dict[str, object]]:
        # Interleaved timestamps, some equal (the event_id breaks the tie), all inside one hour.
        return [event(source, base + dt.timedelta(seconds=(offset + 7 * i) % 3600), i=i) for i in range(n)]

    first = spread(400, 0)
    assert stack.publish([body(e) for e in first]).sent == len(first)
    wait_until(lambda: admin_count(source) == len(first), timeout=120)

    second = spread(400, 3)
    publisher = threading.Thread(target=lambda: stack.publish([body(e) for e in second], rate=400))
    seen: list[tuple[dt.datetime, uuid.UUID]] = []
    stored_before = admin_count(source)
    pages = 0
    try:
        for page in client.pages(source=source, page_size=20):
            pages += 1
            seen.extend((e.occurred_at, e.event_id) for e in page.items)
            if pages == 1:
                # Ingestion happens between pages by construction (not by timing): after the first page, wait
                # until some of the second set is stored, then read on while the rest arrives.
                publisher.start()
                wait_until(lambda: admin_count(source) > stored_before, timeout=120)
    finally:
        if publisher.is_alive() or pages >= 1:
            publisher.join(300)
    stored_during = admin_count(source) - stored_before
    assert stored_during > 0, "nothing was ingested while the client paged: the test proved nothing"

    ids = [i for _, i in seen]
    assert len(ids) == len(set(ids)), "a duplicate across pages"
    assert seen == sorted(seen), "pages out of keyset order"
    first_ids = {uuid.UUID(e["event_id"]) for e in first}
    assert first_ids <= set(ids), f"{len(first_ids - set(ids))} event(s) stored before paging began were skipped"
    assert set(ids) <= first_ids | {uuid.UUID(e["event_id"]) for e in second}
    assert pages >= len(first) // 20

    # Once ingestion is over, a fresh walk sees every event exactly once.
    wait_until(lambda: admin_count(source) == len(first) + len(second), timeout=120)
    final = [e.event_id for e in client.list_events(source=source, page_size=77)]
    assert len(final) == len(set(final)) == len(first) + len(second)
