"""Shared benchmark helpers: a production-like embedded PostgreSQL, timers, percentiles, result records."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from rampart.local.postgres import EmbeddedPostgres

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results"


@dataclass
class Result:
    bench: str
    rows: list[dict[str, Any]] = field(default_factory=list)
    goals: list[dict[str, Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    started: str = field(default_factory=lambda: time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()))

    def goal(self, name: str, value: float, op: str, target: float) -> None:
        ok = value >= target if op == ">=" else value <= target
        self.goals.append({"goal": name, "measured": round(value, 3), "target": f"{op} {target}", "met": ok})
        print(f"    goal {'MET ' if ok else 'MISS'} {name}: {value:.3f} (target {op} {target})", flush=True)

    def save(self) -> Path:
        RESULTS.mkdir(parents=True, exist_ok=True)
        path = RESULTS / f"{self.bench}.json"
        path.write_text(json.dumps(asdict(self), indent=2, default=str) + "\n", encoding="utf-8")
        return path


def machine() -> dict[str, str]:
    cpu = "unknown"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    pg = subprocess.run(["postgres", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return {
        "cpu": cpu,
        "cores": str(os.cpu_count()),
        "python": platform.python_version(),
        "os": platform.platform(),
        "postgres": pg or "see bindir",
    }


@contextlib.contextmanager
def production_like_postgres() -> Iterator[EmbeddedPostgres]:
    """fsync and synchronous_commit on, as on RDS: commit costs are real."""
    server = EmbeddedPostgres(fsync=True).start()
    try:
        yield server
    finally:
        server.stop()


def percentile(samples: list[float], p: float) -> float:
    ordered = sorted(samples)
    k = max(0, min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1))))
    return ordered[k]


def timed(fn: Callable[[], Any], repeat: int, warmup: int = 5) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        out.append((time.perf_counter() - start) * 1000)
    return out


def summary_ms(samples: list[float]) -> dict[str, float]:
    return {
        "p50_ms": round(statistics.median(samples), 3),
        "p99_ms": round(percentile(samples, 99), 3),
        "n": len(samples),
    }


_DEVNULL = open(os.devnull, "w")  # noqa: SIM115 - process-lifetime sink


@contextlib.contextmanager
def quiet_stdout() -> Iterator[None]:
    """Handlers log JSON lines to stdout (as on Lambda); keep them out of the benchmark's own output.

    Import the handlers inside this block too: Powertools' Logger binds its stream when it is created.
    """
    saved = sys.stdout
    sys.stdout = _DEVNULL
    try:
        yield
    finally:
        sys.stdout = saved


def progress(msg: str) -> None:
    print(f"  .. {msg}", flush=True)
