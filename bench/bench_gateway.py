"""Through the local gateway: HTTP with API keys, concurrent clients, a fixed request rate held for a duration.

Open-loop load (requests are scheduled at the target rate and latency is measured from the scheduled time, so
a slow server cannot hide its queueing), against a table of 100,000+ events, through the same gateway and
handler processes `rampart up` runs. The baseline, measured in the same run: the API handler called directly
in-process (no HTTP, no gateway) on the same database.

Run: .venv/bin/python -m bench.bench_gateway [--rate R] [--seconds S] [--rows N] [--smoke]
"""

from __future__ import annotations

import argparse
import http.client
import importlib
import json
import os
import random
import threading
import time
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

from bench.bench_api import seed
from bench.common import Result, percentile, progress, quiet_stdout, summary_ms, timed
from rampart.local.gateway import ApiKey, UsagePlan
from rampart.local.stack import Stack, StackConfig
from tests.helpers import FakeContext, api_event

SOURCES = ["billing", "shipping", "identity", "catalog"]


def _paths(ids: list[str], rng: random.Random) -> str:
    roll = rng.random()
    if roll < 0.6:
        query = {"limit": "50"} | ({"source": rng.choice(SOURCES)} if rng.random() < 0.5 else {})
        return "/events?" + urlencode(query)
    if roll < 0.9:
        return "/events/" + rng.choice(ids)
    return "/stats?" + urlencode({"bucket": "hour", "since": "2026-01-01T00:00:00Z", "until": "2026-01-02T00:00:00Z"})


class Worker(threading.Thread):
    def __init__(self, base: str, key: str, schedule: list[float], ids: list[str], seed_: int) -> None:
        super().__init__(daemon=True)
        split = urlsplit(base)
        self.host, self.port, self.prefix = split.hostname or "127.0.0.1", split.port or 80, split.path
        self.key, self.schedule, self.ids = key, schedule, ids
        self.rng = random.Random(seed_)
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.errors = 0
        self.conn: http.client.HTTPConnection | None = None

    def _request(self, path: str) -> int:
        for attempt in (1, 2):
            if self.conn is None:
                self.conn = http.client.HTTPConnection(self.host, self.port, timeout=10)
            try:
                self.conn.request("GET", self.prefix + path, headers={"x-api-key": self.key})
                resp = self.conn.getresponse()
                resp.read()
                if resp.getheader("Connection", "").lower() == "close":
                    self.conn.close()
                    self.conn = None
                return resp.status
            except (OSError, http.client.HTTPException):
                self.conn.close()
                self.conn = None
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def run(self) -> None:
        for due in self.schedule:
            delay = due - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            try:
                status = self._request(_paths(self.ids, self.rng))
            except (OSError, http.client.HTTPException):
                self.errors += 1
                continue
            self.latencies.append((time.perf_counter() - due) * 1000)
            self.statuses[status] = self.statuses.get(status, 0) + 1


def load(base: str, key: str, ids: list[str], rate: float, seconds: float, workers: int) -> dict[str, Any]:
    start = time.perf_counter() + 0.5
    total = int(rate * seconds)
    schedules: list[list[float]] = [[] for _ in range(workers)]
    for i in range(total):
        schedules[i % workers].append(start + i / rate)
    threads = [Worker(base, key, s, ids, n) for n, s in enumerate(schedules)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(seconds + 120)
    latencies = [x for t in threads for x in t.latencies]
    statuses: dict[int, int] = {}
    for t in threads:
        for code, n in t.statuses.items():
            statuses[code] = statuses.get(code, 0) + n
    elapsed = max(time.perf_counter() - start, 1e-9)
    errors = sum(t.errors for t in threads) + sum(n for code, n in statuses.items() if code >= 500 or code == 429)
    return {
        "target_rps": rate,
        "achieved_rps": round(len(latencies) / elapsed, 1),
        "requests": total,
        "p50_ms": round(percentile(latencies, 50), 2),
        "p99_ms": round(percentile(latencies, 99), 2),
        "max_ms": round(max(latencies), 2),
        "errors": errors,
        "not_200": sum(n for code, n in statuses.items() if code != 200) + sum(t.errors for t in threads),
        "statuses": statuses,
    }


def main(argv: list[str] | None = None) -> Result:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rate", type=float, default=150.0, help="requests per second to hold")
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--workers", type=int, default=32)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    rate, seconds, rows = (20.0, 3.0, 2_000) if args.smoke else (args.rate, args.seconds, args.rows)
    result = Result("gateway")
    print(f"== through the gateway: {rate:.0f} req/s for {seconds:.0f} s, {rows:,} rows, keyed HTTP", flush=True)
    key = ApiKey.generate("bench", UsagePlan(rate=100_000, burst=100_000))
    with Stack(StackConfig(api_keys=[key], ingest_concurrency=1, progress=progress)) as stack:
        assert stack.postgres is not None
        progress(f"seeding {rows:,} rows")
        seed(stack.postgres, rows)
        import psycopg2  # noqa: PLC0415

        conn = psycopg2.connect(stack.postgres.dsn("rampart_admin"))
        with conn.cursor() as cur:
            cur.execute("SELECT event_id::text FROM rampart.events ORDER BY random() LIMIT 2000")
            ids = [r[0] for r in cur.fetchall()]
        conn.close()

        progress("baseline: the API handler in-process, same database, same request mix")
        os.environ.update({**stack.db_env("rampart_api"), "RAMPART_CURSOR_KEY": stack.cursor_key})
        with quiet_stdout():
            handler = importlib.import_module("rampart.api.handler")
        handler._store = None
        handler._keyring = None
        rng = random.Random(7)

        def direct() -> None:
            path = _paths(ids, rng)
            route, _, query = path.partition("?")
            q = dict(parse_qsl(query)) if query else None
            with quiet_stdout():
                resp = handler.lambda_handler(api_event("/v1" + route, q), FakeContext())
            assert resp["statusCode"] == 200, resp["body"][:300]

        base = summary_ms(timed(direct, 50 if args.smoke else 500))
        result.rows.append({"case": "handler in-process (baseline)", **base})
        print(f"    handler in-process        p50 {base['p50_ms']:7.2f} ms  p99 {base['p99_ms']:7.2f} ms", flush=True)

        progress("no key -> 403 (sanity)")
        conn403 = http.client.HTTPConnection("127.0.0.1", stack.api_port, timeout=5)
        conn403.request("GET", "/v1/health")
        assert conn403.getresponse().status == 403
        conn403.close()

        progress(f"open-loop load: {rate:.0f} req/s for {seconds:.0f} s, {args.workers} client threads")
        out = load(stack.api_url, key.value, ids, rate, seconds, args.workers)
        result.rows.append({"case": "through the gateway (HTTP + key)", **out})
        print(
            f"    through the gateway       p50 {out['p50_ms']:7.2f} ms  p99 {out['p99_ms']:7.2f} ms  "
            f"achieved {out['achieved_rps']} req/s  errors {out['errors']}  statuses {json.dumps(out['statuses'])}",
            flush=True,
        )
        handler._store.db.close()
    result.goal("gateway p99 at the held rate (ms)", out["p99_ms"], "<=", 300)
    result.goal("errors (5xx, 429, transport) at the held rate", out["errors"], "<=", 0)
    # Every request of the mix is valid (known ids, valid filters): any answer but 200 is the twin's fault.
    result.goal("valid requests answered other than 200", out["not_200"], "<=", 0)
    result.goal("achieved / target rate", out["achieved_rps"] / rate, ">=", 0.97)
    result.notes.append(
        f"Gateway p50 is {out['p50_ms'] / base['p50_ms']:.1f}x the in-process handler p50 "
        "(HTTP parsing, key check, throttling, event building, a process hop)."
    )
    result.notes.append(
        "The gateway is werkzeug's threaded server (one connection per request: it answers `Connection: close`) "
        "in front of worker processes, one invocation at a time each (like Lambda execution environments)."
    )
    if not args.smoke:
        result.save()
    return result


if __name__ == "__main__":
    main()
