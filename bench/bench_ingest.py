"""Ingest throughput: the real ingest handler vs one INSERT+COMMIT per record vs COPY, on the same database.

Run: .venv/bin/python -m bench.bench_ingest [--events N] [--rounds R] [--batches 1000] [--smoke]
(results are saved only for a run of every batch size)
"""

from __future__ import annotations

import argparse
import importlib
import io
import json
import os
import statistics
import time
from collections.abc import Callable, Sequence
from typing import Any

import psycopg2

from bench.common import Result, production_like_postgres, progress, quiet_stdout
from rampart.db.store import INSERT_EVENTS, EventStore
from rampart.events import parse_event, storage_row
from rampart.ingest.batch import process_batch
from tests.conftest import make_event
from tests.helpers import FakeContext, sqs_record

PER_RECORD_SQL = (
    "INSERT INTO rampart.events (event_id, source, type, occurred_at, payload) VALUES (%s, %s, %s, %s, %s)"
    " ON CONFLICT (event_id) DO NOTHING"
)


def _bodies(n: int) -> list[str]:
    return [json.dumps(make_event(payload={"amount": i, "currency": "EUR", "lines": [1, 2, 3]})) for i in range(n)]


def _compact(payload: dict[str, Any]) -> str:
    return json.dumps(payload, separators=(",", ":"), ensure_ascii=False)  # the benchmark's payloads hold no floats


def _truncate(pg: Any) -> None:
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("TRUNCATE rampart.events")
        cur.execute("CHECKPOINT")
    conn.close()


def _count(pg: Any) -> int:
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    with conn.cursor() as cur:
        cur.execute("SELECT count(*) FROM rampart.events")
        n = int(cur.fetchone()[0])
    conn.close()
    return n


def run_handler(pg: Any, bodies: list[str], batch: int) -> float:
    os.environ.update(pg.env("rampart_ingest"))
    with quiet_stdout():
        handler = importlib.import_module("rampart.ingest.handler")
        handler._store = None
        events = [{"Records": [sqs_record(b) for b in bodies[i : i + batch]]} for i in range(0, len(bodies), batch)]
        handler.lambda_handler(events[0], FakeContext())  # warm: connect outside the timing, as a warm Lambda
        _truncate(pg)
        start = time.perf_counter()
        for event in events:
            out = handler.lambda_handler(event, FakeContext())
            assert out == {"batchItemFailures": []}, out
        elapsed = time.perf_counter() - start
    assert _count(pg) == len(bodies)
    return len(bodies) / elapsed


def run_per_record(pg: Any, bodies: list[str]) -> float:
    """The pattern most samples use: validate, then one INSERT and one COMMIT per record."""
    conn = psycopg2.connect(pg.dsn("rampart_ingest"))
    start = time.perf_counter()
    with conn.cursor() as cur:
        for body in bodies:
            e = parse_event(body)
            cur.execute(
                PER_RECORD_SQL, (e["event_id"], e["source"], e["type"], e["occurred_at"], _compact(e["payload"]))
            )
            conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    assert _count(pg) == len(bodies)
    return len(bodies) / elapsed


def run_copy(pg: Any, bodies: list[str], batch: int) -> float:
    """The limit: COPY of the same (already validated) rows, one COPY and COMMIT per batch."""
    rows = []
    for body in bodies:
        e = parse_event(body)
        payload = _compact(e["payload"]).replace("\\", "\\\\")
        rows.append(f"{e['event_id']}\t{e['source']}\t{e['type']}\t{e['occurred_at'].isoformat()}\t{payload}\n")
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    start = time.perf_counter()
    with conn.cursor() as cur:
        for i in range(0, len(rows), batch):
            cur.copy_expert(
                "COPY rampart.events (event_id, source, type, occurred_at, payload) FROM STDIN",
                io.StringIO("".join(rows[i : i + batch])),
            )
            conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    assert _count(pg) == len(bodies)
    return len(bodies) / elapsed


def run_statement_only(pg: Any, bodies: list[str], batch: int) -> float:
    """The ceiling of the idempotent approach: the handler's own INSERT ... ON CONFLICT statement on the same,
    already validated rows, with no Python work per record at all."""
    rows = [storage_row(parse_event(body)) for body in bodies]
    arrays = ["[" + ",".join(row for _, row in sorted(rows[i : i + batch])) + "]" for i in range(0, len(rows), batch)]
    conn = psycopg2.connect(pg.dsn("rampart_ingest"))
    start = time.perf_counter()
    with conn.cursor() as cur:
        for array in arrays:
            cur.execute(INSERT_EVENTS, (array,))
            conn.commit()
    elapsed = time.perf_counter() - start
    conn.close()
    assert _count(pg) == len(bodies)
    return len(bodies) / elapsed


class _ParameterOnlyDatabase:
    """Stands in for the database: the store builds its statement's parameter, nothing is sent."""

    def run(self, work: Callable[[Any], int]) -> int:
        class Cursor:
            rowcount = 0  # every row counts as a duplicate: the handler's work is the same

            def execute(self, _sql: str, _params: Sequence[str]) -> None:
                return None

        return work(Cursor())


def _cpu_us_per_record(work: Callable[[], object], records: int, repeats: int) -> float:
    """CPU time of ``work`` per record, the minimum of ``repeats`` runs (the least disturbed by other processes)."""
    best = float("inf")
    for _ in range(repeats):
        start = time.process_time()
        work()
        best = min(best, time.process_time() - start)
    return best / records * 1e6


def python_per_record(bodies: list[str], batch: int, repeats: int = 30) -> dict[str, float]:
    """The Python work per record of one batch, with no database: ``process_batch`` (parse, validate, build the
    statement's parameter) and the whole handler (Powertools logging and metrics, the EMF lines)."""
    records = [sqs_record(b) for b in bodies[:batch]]
    store = EventStore(_ParameterOnlyDatabase())  # type: ignore[arg-type]
    with quiet_stdout():
        handler = importlib.import_module("rampart.ingest.handler")
        saved = handler._dependencies
        handler._dependencies = lambda: (store, None)
        try:
            event = {"Records": records}
            whole = _cpu_us_per_record(lambda: handler.lambda_handler(event, FakeContext()), len(records), repeats)
        finally:
            handler._dependencies = saved
    batch_only = _cpu_us_per_record(lambda: process_batch(records, store, None), len(records), repeats)
    return {"process_batch": batch_only, "handler": whole}


def main(argv: list[str] | None = None) -> Result:
    ap = argparse.ArgumentParser()
    ap.add_argument("--events", type=int, default=20_000)
    ap.add_argument("--per-record-events", type=int, default=3_000)
    ap.add_argument("--rounds", type=int, default=5, help="alternating COPY/handler rounds per batch size (median)")
    ap.add_argument("--batches", default="10,100,1000", help="batch sizes, comma-separated (saved only if all three)")
    ap.add_argument("--smoke", action="store_true", help="tiny sizes: proves the benchmark runs, measures nothing")
    args = ap.parse_args(argv)
    rounds = 1 if args.smoke else args.rounds
    batches = [int(b) for b in args.batches.split(",")]
    n, n_single = (1_000, 200) if args.smoke else (args.events, args.per_record_events)
    result = Result("ingest")
    load_before = os.getloadavg()[0]
    print(f"== ingest throughput ({n} events per run; per-record baseline on {n_single})", flush=True)
    with production_like_postgres() as pg:
        bodies = _bodies(n)
        _truncate(pg)
        progress("baseline: one INSERT + COMMIT per record")
        per_record = run_per_record(pg, bodies[:n_single])
        result.rows.append({"method": "per-record INSERT+COMMIT", "batch": 1, "events_per_s": round(per_record)})
        for batch in batches:
            # COPY and the handler alternate, `rounds` times: a burst of load from elsewhere then hits both, and the
            # median ratio of the rounds is what a noisy machine can still measure (docs/benchmarks.md).
            copies, handlers = [], []
            for round_ in range(1, rounds + 1):
                _truncate(pg)
                progress(f"COPY, batch {batch} (round {round_} of {rounds})")
                copies.append(run_copy(pg, bodies, batch))
                _truncate(pg)
                progress(f"Rampart ingest handler, batch {batch} (round {round_} of {rounds})")
                handlers.append(run_handler(pg, bodies, batch))
            per_round = list(zip(handlers, copies, strict=True))
            ratio = statistics.median(h / c for h, c in per_round)
            copy_rate, handler_rate = statistics.median(copies), statistics.median(handlers)
            result.rows.append({"method": "COPY (limit)", "batch": batch, "events_per_s": round(copy_rate)})
            result.rows.append(
                {
                    "method": "Rampart ingest handler",
                    "batch": batch,
                    "events_per_s": round(handler_rate),
                    "x_per_record": round(handler_rate / per_record, 2),
                    "x_copy": round(ratio, 2),
                    "x_copy_rounds": " ".join(f"{h / c:.2f}" for h, c in per_round),
                }
            )
            print(
                f"    batch {batch:>4}: handler {handler_rate:>9.0f}/s  COPY {copy_rate:>9.0f}/s  "
                f"per-record {per_record:>7.0f}/s  -> {handler_rate / per_record:.1f}x per-record, "
                f"{ratio:.3f}x COPY (median of {rounds} rounds: {', '.join(f'{h / c:.3f}' for h, c in per_round)})",
                flush=True,
            )
            if batch == 100:
                result.goal("handler at batch 100 vs per-record pattern (x)", handler_rate / per_record, ">=", 10)
            if batch == 1000:
                result.goal("handler at batch 1000 vs COPY (x)", ratio, ">=", 0.5)
                ceilings = []
                for round_ in range(1, rounds + 1):
                    _truncate(pg)
                    progress(f"ceiling: the handler's statement alone, batch 1000 (round {round_} of {rounds})")
                    ceilings.append(run_statement_only(pg, bodies, batch))
                ceiling = statistics.median(ceilings)
                result.rows.append(
                    {
                        "method": "INSERT ... ON CONFLICT alone (ceiling)",
                        "batch": batch,
                        "events_per_s": round(ceiling),
                        "x_copy": round(ceiling / copy_rate, 2),
                    }
                )
                print(
                    f"    ceiling: statement alone {ceiling:9.0f}/s = {ceiling / copy_rate:.2f}x COPY; the handler "
                    f"reaches {handler_rate / ceiling:.2f}x of it",
                    flush=True,
                )
                result.notes.append(
                    f"At batch 1000 the idempotent statement alone (no validation, no Python per record) reaches "
                    f"{ceiling / copy_rate:.2f}x COPY: the speculative insertion of ON CONFLICT and the server-side "
                    f"JSON unpacking cost that much more than COPY's bulk load. The handler adds JSON parsing and "
                    f"validation of every record on the same core and reaches {handler_rate / ceiling:.2f}x of "
                    "that ceiling."
                )
                cpu = python_per_record(bodies, batch, repeats=3 if args.smoke else 30)
                print(
                    f"    Python per record (CPU, no database): process_batch {cpu['process_batch']:.2f} us, "
                    f"the whole handler {cpu['handler']:.2f} us",
                    flush=True,
                )
                result.notes.append(
                    f"Python per record at batch 1000 (CPU time, minimum of 30 runs, no database): "
                    f"{cpu['process_batch']:.1f} µs in `process_batch` (parse, validate, the statement's parameter), "
                    f"{cpu['handler']:.1f} µs in the whole handler (with Powertools' logging and the EMF metric lines)."
                )
    # Other work on the same cores moves every figure: say how busy the machine was.
    result.notes.append(f"Load average (1 min) at the start and the end: {load_before:.2f}, {os.getloadavg()[0]:.2f}.")
    if not args.smoke and sorted(batches) == [10, 100, 1000]:
        result.save()
    return result


if __name__ == "__main__":
    main()
