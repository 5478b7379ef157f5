"""The SLOs as `rampart status` measures them on the twin (rampart.local.slo): from the gateway's access log and the
ingest's EMF lines, over the last 5 minutes and since the stack started; the same objectives as the alarms."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from rampart.cli.status import slo_lines
from rampart.ingest import metrics
from rampart.ingest.batch import BatchResult
from rampart.local import slo

MONITORING_VARIABLES = Path(__file__).resolve().parents[2] / "iac" / "modules" / "monitoring" / "variables.tf"
NOW = 1_800_000_000.0


def _access(status: int, latency_ms: float, component: str = "api-gateway", message: str = "request") -> str:
    # The convention's keys (notes: "Local gateway access log"), nothing else.
    line = {
        "level": "INFO",
        "component": component,
        "message": message,
        "request_id": "r",
        "method": "GET",
        "path": "/v1/events",
        "status": status,
        "api_key_id": "k",
        "latency_ms": latency_ms,
    }
    return json.dumps(line) + "\n"


def _emf(at: float, ages: list[float]) -> str:
    documents = metrics.emf_documents([], BatchResult(), at, "rampart-local-ingest")
    documents[0][metrics.PUBLISH_TO_STORED] = ages
    return json.dumps(documents[0]) + "\n"


def test_percentile_is_the_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert slo.percentile(values, 99) == 99.0
    assert slo.percentile(values, 95) == 95.0
    assert slo.percentile([7.0], 99) == 7.0
    assert slo.percentile([], 99) is None
    assert slo.percentile([3.0, 1.0, 2.0], 50) == 2.0


def test_the_access_log_yields_every_request_and_nothing_else() -> None:
    lines = [
        _access(200, 12.5),
        _access(503, 80),
        _access(200, 1.0, component="event-source-mapping"),
        _access(200, 1.0, message="serving"),
        "not json\n",
        '{"component": "api-gateway", "message": "request", "status": "200", "latency_ms": 1}\n',
        "[1, 2]\n",
    ]
    assert slo.access_log_requests("".join(lines).splitlines()) == [(12.5, 200), (80.0, 503)]


def test_only_5xx_spends_the_availability_budget_and_overspending_goes_negative() -> None:
    statuses = [200.0] * 990 + [403.0, 429.0, 404.0, 400.0, 413.0] + [500.0, 502.0, 503.0, 504.0, 500.0]
    measured = slo.measure(slo.API_AVAILABILITY, statuses)
    assert (measured.total, measured.bad) == (1000, 5)
    assert slo.budget_remaining(slo.API_AVAILABILITY, measured) == pytest.approx(0.0)  # 0.5 % of 1000 = 5
    worse = slo.measure(slo.API_AVAILABILITY, [*statuses[:-10], *([500.0] * 10)])
    assert slo.budget_remaining(slo.API_AVAILABILITY, worse) == pytest.approx(1 - 10 / 5)
    assert slo.budget_remaining(slo.API_AVAILABILITY, slo.measure(slo.API_AVAILABILITY, [])) is None


def test_latency_and_freshness_count_values_above_their_threshold_as_bad() -> None:
    latency = slo.measure(slo.API_LATENCY, [10.0] * 98 + [300.0, 300.1])
    assert (latency.bad, latency.percentile, latency.good_ratio) == (1, 300.0, 0.99)
    assert slo.budget_remaining(slo.API_LATENCY, latency) == pytest.approx(0.0)  # 1 % of 100 = 1
    freshness = slo.measure(slo.FRESHNESS, [1.0] * 18 + [299.0, 301.0])
    assert (freshness.bad, freshness.percentile) == (1, 299.0)
    assert slo.budget_remaining(slo.FRESHNESS, freshness) == pytest.approx(0.0)  # 5 % of 20 = 1


def test_the_log_clock_notes_growth_at_most_once_per_interval(tmp_path: Path) -> None:
    log = tmp_path / "gateway.log"
    log.write_text("a\n")
    clock = slo.LogClock(log, interval=5)
    clock.tick(100.0)
    clock.tick(103.0)  # too soon
    with log.open("a") as fh:
        fh.write("bb\n")
    clock.tick(104.9)  # too soon
    clock.tick(105.0)
    clock.tick(111.0)  # no growth
    assert clock.path.read_text().splitlines() == ["100.000 2", "105.000 5"]
    assert slo.offset_at(clock.path, 99.0) == 0  # before the clock started: from the beginning
    assert slo.offset_at(clock.path, 100.0) == 2
    assert slo.offset_at(clock.path, 104.0) == 2
    assert slo.offset_at(clock.path, 500.0) == 5
    assert slo.offset_at(tmp_path / "missing.clock", 500.0) == 0


def test_the_report_separates_the_last_5_minutes_from_the_stack_lifetime(tmp_path: Path) -> None:
    log = tmp_path / slo.ACCESS_LOG
    old = [_access(500, 900.0)] * 3 + [_access(200, 10.0)] * 7
    log.write_text("".join(old))
    (tmp_path / (slo.ACCESS_LOG + slo.CLOCK_SUFFIX)).write_text(f"{NOW - 400:.3f} {log.stat().st_size}\n")
    with log.open("a") as fh:
        fh.write("".join([_access(200, 20.0)] * 4))
    (tmp_path / "ingest-1.log").write_text(_emf(NOW - 600, [400.0, 2.0]) + "other line\n" + _emf(NOW - 10, [1.5, 2.5]))
    (tmp_path / "ingest-2.log").write_text(_emf(NOW - 5, [3.0]))

    report = slo.slo_report(tmp_path, now=NOW)

    latency, availability, freshness = (report[o.key] for o in slo.OBJECTIVES)
    assert latency["recent"] == {"total": 4, "bad": 0, "good_ratio": 1.0, "p99": 20.0}
    assert latency["lifetime"]["total"] == 14 and latency["lifetime"]["bad"] == 3
    assert latency["lifetime"]["budget_remaining"] == pytest.approx(1 - 3 / (0.01 * 14))
    assert availability["recent"]["bad"] == 0 and availability["lifetime"]["bad"] == 3
    assert freshness["recent"] == {"total": 3, "bad": 0, "good_ratio": 1.0, "p95": 3.0}
    assert freshness["lifetime"]["total"] == 5 and freshness["lifetime"]["bad"] == 1
    assert report["window_s"] == 300


def test_an_empty_stack_reports_no_traffic(tmp_path: Path) -> None:
    report = slo.slo_report(tmp_path, now=NOW)
    for objective in slo.OBJECTIVES:
        assert report[objective.key]["recent"]["total"] == 0
        assert report[objective.key]["lifetime"]["budget_remaining"] is None


def test_the_twin_measures_the_objectives_the_alarms_use() -> None:
    text = MONITORING_VARIABLES.read_text()

    def default(name: str) -> float:
        match = re.search(rf'variable "{name}" \{{.*?default\s+=\s+([0-9.]+)', text, re.DOTALL)
        assert match, name
        return float(match.group(1))

    assert slo.API_LATENCY.objective == default("latency_objective")
    assert slo.API_LATENCY.bad_above == default("latency_threshold_ms")
    assert slo.API_AVAILABILITY.objective == default("availability_objective")
    assert slo.FRESHNESS.objective == default("freshness_objective")
    assert slo.FRESHNESS.bad_above == default("freshness_threshold_seconds")
    assert slo.FRESHNESS_METRIC == metrics.PUBLISH_TO_STORED


def test_the_status_lines_of_an_idle_and_of_a_busy_stack(tmp_path: Path) -> None:
    idle = slo_lines(slo.slo_report(tmp_path, now=NOW))
    assert [line.split()[0] for line in idle] == ["API", "API", "freshness"]
    assert all("no traffic yet" in line for line in idle)
    (tmp_path / slo.ACCESS_LOG).write_text(_access(200, 12.0) + _access(502, 40.0))
    busy = slo_lines(slo.slo_report(tmp_path, now=NOW))
    assert "p99 40.0 ms, 100.00 % within 300 ms over 2 request(s)" in busy[0]
    assert busy[1].startswith("API 5xx        50.00 % 5xx of 2 request(s)") and "(1 bad of 2)" in busy[1]
    assert "-9900.0 % left" in busy[1]  # 1 bad where 0.5 % of 2 = 0.01 were allowed
