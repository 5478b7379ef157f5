"""The three SLOs measured on the local twin, from the same signals CloudWatch gets in AWS (``rampart status``).

- API latency and 5xx ratio: the gateway's access log (``logs/gateway.log``, one JSON line per request, format
  fixed by docs/local.md: ``status`` and ``latency_ms``), as API Gateway's ``Latency`` and ``5XXError`` count
  every request it answers, its own 403/429 included.
- Freshness, publish -> stored: the ingest function's EMF lines (``logs/ingest-N.log``, written by
  :mod:`rampart.ingest.metrics`): each stored event's age since the SQS ``SentTimestamp``, the value CloudWatch
  extracts in AWS. The database cannot tell it: ``received_at - occurred_at`` starts at the producer's clock,
  before publication (``rampart status`` shows it separately as the producer lag).

The access log has no time of its own, so ``rampart up`` keeps a clock beside it (:class:`LogClock`): every few
seconds, the log's size and the wall time. "The last 5 minutes" starts at the last size noted at least 5 minutes
ago (so it may hold up to one tick more); the error budget counts everything since the stack started.
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

WINDOW_S = 300.0
CLOCK_INTERVAL_S = 5.0
ACCESS_LOG = "gateway.log"
CLOCK_SUFFIX = ".clock"
INGEST_LOGS = "ingest-*.log"
FRESHNESS_METRIC = "PublishToStoredSeconds"  # rampart.ingest.metrics.PUBLISH_TO_STORED


@dataclass(frozen=True)
class Objective:
    """One SLO: at least ``objective`` of the events are good; ``bad_above`` decides for a measured value."""

    key: str
    title: str
    objective: float
    unit: str
    percentile: float  # the percentile shown beside the ratio
    bad_above: float  # a value above this is bad (a latency, an age; 499 for an HTTP status)


API_LATENCY = Objective("api_latency", "API latency", 0.99, "ms", 99, 300.0)
API_AVAILABILITY = Objective("api_availability", "API 5xx", 0.995, "status", 0, 499.0)
FRESHNESS = Objective("freshness", "freshness", 0.95, "s", 95, 300.0)
OBJECTIVES = (API_LATENCY, API_AVAILABILITY, FRESHNESS)


@dataclass(frozen=True)
class Measurement:
    """One SLO over one span: how many events, how many bad, and the percentile of the values."""

    total: int
    bad: int
    percentile: float | None

    @property
    def good_ratio(self) -> float | None:
        return None if self.total == 0 else (self.total - self.bad) / self.total


def measure(objective: Objective, values: list[float]) -> Measurement:
    bad = sum(1 for value in values if value > objective.bad_above)
    return Measurement(len(values), bad, percentile(values, objective.percentile) if objective.percentile else None)


def budget_remaining(objective: Objective, measured: Measurement) -> float | None:
    """The share of the error budget left: 1 = untouched, 0 = spent, below 0 = overspent; None without events."""
    if measured.total == 0:
        return None
    allowed = (1 - objective.objective) * measured.total
    return 1 - measured.bad / allowed


def percentile(values: list[float], q: float) -> float | None:
    """The nearest-rank percentile (the smallest value with at least q % of the values at or below it)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


# -- the signals -------------------------------------------------------------------------------------------------------
def _json_lines(lines: Iterable[str]) -> Iterator[dict[str, Any]]:
    for line in lines:
        if not line.startswith("{"):
            continue
        try:
            value = json.loads(line)
        except ValueError:
            continue
        if isinstance(value, dict):
            yield value


def access_log_requests(lines: Iterable[str]) -> list[tuple[float, int]]:
    """(latency_ms, status) of each request line of the gateway's access log."""
    requests: list[tuple[float, int]] = []
    for line in _json_lines(lines):
        if line.get("component") != "api-gateway" or line.get("message") != "request":
            continue
        latency, status = line.get("latency_ms"), line.get("status")
        if isinstance(latency, int | float) and isinstance(status, int) and not isinstance(status, bool):
            requests.append((float(latency), status))
    return requests


def emf_freshness(lines: Iterable[str]) -> list[tuple[float, float]]:
    """(time the batch was stored, age in seconds since publication) of each event in the ingest's EMF lines."""
    ages: list[tuple[float, float]] = []
    for document in _json_lines(lines):
        meta = document.get("_aws")
        values = document.get(FRESHNESS_METRIC)
        if not isinstance(meta, dict) or not isinstance(values, list):
            continue
        stamp = meta.get("Timestamp")
        if not isinstance(stamp, int | float):
            continue
        ages.extend((stamp / 1000.0, float(v)) for v in values if isinstance(v, int | float))
    return ages


# -- the access log's clock --------------------------------------------------------------------------------------------
class LogClock:
    """Notes the size of a log file with the wall time, so a reader can find where "5 minutes ago" starts.

    ``tick()`` is cheap and may be called often (the ``rampart up`` loop calls it twice a second); it writes a
    line ``<unix time> <size>`` at most every ``interval`` seconds, and only when the log grew.
    """

    def __init__(self, log: Path, interval: float = CLOCK_INTERVAL_S) -> None:
        self.log = log
        self.path = log.with_name(log.name + CLOCK_SUFFIX)
        self.interval = interval
        self._last_time = -math.inf
        self._last_size = -1

    def tick(self, now: float | None = None) -> None:
        now = time.time() if now is None else now
        if now - self._last_time < self.interval:
            return
        try:
            size = self.log.stat().st_size
        except OSError:
            return
        self._last_time = now
        if size == self._last_size:
            return
        self._last_size = size
        with self.path.open("a", encoding="utf-8") as fh:
            fh.write(f"{now:.3f} {size}\n")


def offset_at(clock: Path, since: float) -> int:
    """Where the log stood at ``since``: the last size noted at or before it (0 when the clock starts later)."""
    offset = 0
    try:
        lines = clock.read_text(encoding="utf-8").splitlines()
    except OSError:
        return 0
    for line in lines:
        stamp, _, size = line.partition(" ")
        try:
            if float(stamp) > since:
                break
            offset = int(size)
        except ValueError:
            continue
    return offset


def read_from(path: Path, offset: int = 0) -> list[str]:
    try:
        with path.open("rb") as fh:
            fh.seek(offset)
            return fh.read().decode("utf-8", errors="replace").splitlines()
    except OSError:
        return []


# -- the report --------------------------------------------------------------------------------------------------------
def slo_report(logs_dir: Path, now: float | None = None, window_s: float = WINDOW_S) -> dict[str, Any]:
    """Each SLO over the last ``window_s`` seconds and its error budget left since the stack started."""
    now = time.time() if now is None else now
    since = now - window_s
    access_log = logs_dir / ACCESS_LOG
    lifetime_requests = access_log_requests(read_from(access_log))
    recent_offset = offset_at(access_log.with_name(ACCESS_LOG + CLOCK_SUFFIX), since)
    recent_requests = access_log_requests(read_from(access_log, recent_offset))
    ages = [age for path in sorted(logs_dir.glob(INGEST_LOGS)) for age in emf_freshness(read_from(path))]
    series: dict[str, tuple[list[float], list[float]]] = {
        API_LATENCY.key: ([lat for lat, _ in recent_requests], [lat for lat, _ in lifetime_requests]),
        API_AVAILABILITY.key: (
            [float(status) for _, status in recent_requests],
            [float(status) for _, status in lifetime_requests],
        ),
        FRESHNESS.key: ([age for at, age in ages if at >= since], [age for _, age in ages]),
    }
    report: dict[str, Any] = {"window_s": window_s}
    for objective in OBJECTIVES:
        recent_values, lifetime_values = series[objective.key]
        recent, lifetime = measure(objective, recent_values), measure(objective, lifetime_values)
        report[objective.key] = {
            "objective": objective.objective,
            "bad_above": objective.bad_above,
            "unit": objective.unit,
            "recent": {
                "total": recent.total,
                "bad": recent.bad,
                "good_ratio": recent.good_ratio,
                **({f"p{objective.percentile:g}": recent.percentile} if objective.percentile else {}),
            },
            "lifetime": {
                "total": lifetime.total,
                "bad": lifetime.bad,
                "budget_remaining": budget_remaining(objective, lifetime),
            },
        }
    return report
