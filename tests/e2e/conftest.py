"""One whole local stack per test session: embedded PostgreSQL, the AWS emulator, the event source mapping with
the real ingest handler, the gateway with the real API handler. Tests reach it only as clients do: by
publishing to SNS and by calling the gateway with an API key."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import psycopg2
import pytest

from rampart.client import RampartClient
from rampart.local.gateway import ApiKey, UsagePlan
from rampart.local.stack import Stack, StackConfig

# A generous key for most tests, one with a tiny burst and a slow refill to reach 429 quickly, one with a daily
# quota of 3.
MAIN_PLAN = UsagePlan(rate=1000, burst=2000)
LIMITED_PLAN = UsagePlan(rate=0.1, burst=5)  # one token back every 10 s: no race with the refill
QUOTA_PLAN = UsagePlan(rate=100, burst=100, quota_per_day=3)


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    keys = [
        ApiKey.generate("main", MAIN_PLAN),
        ApiKey.generate("limited", LIMITED_PLAN),
        ApiKey.generate("quota", QUOTA_PLAN),
    ]
    local = Stack(StackConfig(name="rampart-e2e", api_keys=keys, visibility_timeout_s=5)).start()
    try:
        yield local
    finally:
        local.stop()
    assert local.leftovers() == []


@pytest.fixture(scope="session")
def keys(stack: Stack) -> dict[str, ApiKey]:
    return {k.name: k for k in stack.config.api_keys}


@pytest.fixture(scope="session")
def client(stack: Stack, keys: dict[str, ApiKey]) -> RampartClient:
    return RampartClient(stack.api_url, keys["main"].value, timeout=10, max_retries=2)


@pytest.fixture
def admin_count(stack: Stack) -> Callable[[str], int]:
    """Events stored for one ``source``, read directly from PostgreSQL (read-only role)."""

    def count(source: str) -> int:
        assert stack.postgres is not None
        conn = psycopg2.connect(stack.postgres.dsn("rampart_api"))
        try:
            with conn.cursor() as cur:
                cur.execute("SELECT count(*) FROM rampart.events WHERE source = %s", (source,))
                row = cur.fetchone()
                assert row is not None
                return int(row[0])
        finally:
            conn.close()

    return count


def wait_until(condition: Callable[[], Any], timeout: float, interval: float = 0.05) -> Any:
    """Poll ``condition`` until it returns something truthy; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s (last value {value!r})")
        time.sleep(interval)
