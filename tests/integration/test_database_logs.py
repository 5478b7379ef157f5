"""No event payload reaches the database log: psycopg2 writes every value into the statement text, so the server
must never log statement text (slow statements, failing statements) nor error details that quote row values.

The batches go through the real ingest handler into the real PostgreSQL; the proof reads the server's log file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import threading
import uuid
from pathlib import Path
from typing import Any

import psycopg2
import pytest

import rampart.events
from rampart.local.postgres import NO_VALUES_IN_LOGS, EmbeddedPostgres
from tests.conftest import make_event
from tests.e2e.conftest import wait_until
from tests.integration.conftest import Pipeline

ROOT = Path(__file__).resolve().parents[2]
SLOW_S = 1.5  # longer than any threshold someone might set log_min_duration_statement to (RDS had 500 ms)


def _log_tail(pg: EmbeddedPostgres, start: int) -> str:
    return pg.log_path.read_bytes()[start:].decode("utf-8", errors="replace")


def _ingest_waiting_for(admin: Any, seconds: float) -> bool:
    with admin.cursor() as cur:
        cur.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE usename = 'rampart_ingest' AND wait_event_type = 'Lock'"
            " AND now() - query_start > make_interval(secs => %s)",
            (seconds,),
        )
        return bool(cur.fetchone()[0])


def test_slow_and_failing_batches_leave_no_payload_in_the_log(
    pipeline: Pipeline, pg: EmbeddedPostgres, admin: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    marker = f"payload-marker-{uuid.uuid4().hex}"
    start = pg.log_path.stat().st_size

    # A failing batch: a clock skew makes the validator accept an occurred_at that PostgreSQL's CHECK refuses
    # (the validator allows 1 day ahead for this test; the database 6 minutes). The batch statement fails, then
    # the handler's one-by-one retry fails again on that record: two failing statements, each holding the marker.
    monkeypatch.setattr(rampart.events, "MAX_FUTURE_SKEW", dt.timedelta(days=1))
    ahead = (dt.datetime.now(dt.UTC) + dt.timedelta(hours=1)).isoformat()
    failing = [json.dumps(make_event(payload={"secret": marker})) for _ in range(3)]
    failing.append(json.dumps(make_event(occurred_at=ahead, payload={"secret": marker})))
    result = pipeline.publish(*failing)
    assert result["response"] == {"batchItemFailures": []}
    assert list(pipeline.dlq.reasons().values()) == ["rejected by PostgreSQL: CheckViolation"]

    # A slow batch: another transaction holds one of its events, so the insert waits longer than SLOW_S.
    slow = [make_event(payload={"secret": marker}) for _ in range(20)]
    blocker = psycopg2.connect(pg.dsn("rampart_admin"))
    thread = threading.Thread(target=pipeline.publish, args=tuple(json.dumps(e) for e in slow))
    try:
        with blocker.cursor() as cur:
            cur.execute(
                "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload)"
                " VALUES (%s, 'blocker', 'blocker', now(), '{}')",
                (slow[0]["event_id"],),
            )
        thread.start()
        wait_until(lambda: _ingest_waiting_for(admin, SLOW_S), timeout=60)
    finally:
        blocker.rollback()
        blocker.close()
        thread.join(60)
    with admin.cursor() as cur:
        cur.execute("SELECT count(*) FROM rampart.events WHERE payload->>'secret' = %s", (marker,))
        assert cur.fetchone() == (3 + len(slow),)

    logged = _log_tail(pg, start)
    # The log is the right file and errors do reach it: the failures are there, without their values.
    assert len(re.findall(r"ERROR:.*violates check constraint", logged)) == 2, logged[-3000:]
    assert marker not in logged, "an event payload reached the PostgreSQL log"
    assert "STATEMENT:" not in logged and "DETAIL:" not in logged


def _parameter_group(tf: str) -> dict[str, str]:
    block = tf[tf.index('resource "aws_db_parameter_group" "this"') :]
    block = block[: block.index("\n}\n")]
    return dict(re.findall(r'parameter \{\s*name\s*=\s*"([^"]+)"\s*value\s*=\s*"([^"]*)"\s*\}', block))


def test_the_rds_parameter_group_sets_what_the_twin_proves() -> None:
    params = _parameter_group((ROOT / "iac/modules/database/main.tf").read_text(encoding="utf-8"))
    assert {name: params.get(name) for name in NO_VALUES_IN_LOGS} == NO_VALUES_IN_LOGS
    # DDL is the only statement text RDS logs (migrations hold no event data).
    assert params["log_statement"] == "ddl"


def test_the_twin_runs_with_those_settings(admin: Any) -> None:
    with admin.cursor() as cur:
        for name, value in NO_VALUES_IN_LOGS.items():
            cur.execute("SELECT setting FROM pg_settings WHERE name = %s", (name,))
            assert cur.fetchone() == (value,), name
