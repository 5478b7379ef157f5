from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg2
import pytest

from rampart.local.gateway import ApiKey, UsagePlan
from rampart.local.stack import Stack, StackConfig
from tests.e2e.conftest import wait_until

ROOT = Path(__file__).resolve().parents[2]
__all__ = ["ROOT", "db_query", "drain_dlq", "queue_depth", "stored_ids", "wait_until"]
pytestmark = pytest.mark.e2e


@pytest.fixture(scope="module")
def stack() -> Iterator[Stack]:
    key = ApiKey.generate("resilience", UsagePlan(rate=5000, burst=5000))
    local = Stack(
        StackConfig(
            name="rampart-resilience",
            api_keys=[key],
            visibility_timeout_s=5,
            max_receive_count=20,
            batch_size=10,
            ingest_concurrency=2,
        )
    ).start()
    try:
        yield local
    finally:
        local.stop()
    assert local.leftovers() == []


def db_query(stack: Stack, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    assert stack.postgres is not None
    conn = psycopg2.connect(stack.postgres.dsn("rampart_admin"))
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return list(cur.fetchall())
    finally:
        conn.close()


def stored_ids(stack: Stack, source: str) -> list[str]:
    return [r[0] for r in db_query(stack, "SELECT event_id::text FROM rampart.events WHERE source = %s", (source,))]


def drain_dlq(stack: Stack) -> list[dict[str, Any]]:
    """Receive (and delete) everything in the DLQ."""
    assert stack.resources is not None
    sqs = stack.client("sqs")
    out: list[dict[str, Any]] = []
    empty = 0
    while empty < 3:
        got = sqs.receive_message(
            QueueUrl=stack.resources.dlq_url, MaxNumberOfMessages=10, MessageAttributeNames=["All"], WaitTimeSeconds=0
        ).get("Messages", [])
        if not got:
            empty += 1
            time.sleep(0.2)
            continue
        empty = 0
        out += got
        sqs.delete_message_batch(
            QueueUrl=stack.resources.dlq_url,
            Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(got)],
        )
    return out


def queue_depth(stack: Stack, url: str) -> int:
    attrs = stack.client("sqs").get_queue_attributes(
        QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])
