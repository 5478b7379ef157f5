"""API latency at the handler: first page and a deep page vs the bare SQL query vs OFFSET pagination.

Run: .venv/bin/python -m bench.bench_api [--rows N] [--repeat R] [--smoke]
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import time
from typing import Any

import psycopg2

from bench.common import Result, production_like_postgres, progress, quiet_stdout, summary_ms, timed
from rampart.db.store import LIST_EVENTS
from tests.helpers import FakeContext, api_event

CURSOR_KEY = "benchmark-cursor-key-0123456789abcdef0123"
OFFSET_SQL = """
SELECT event_id, source, type, occurred_at, received_at, payload
FROM rampart.events ORDER BY occurred_at, event_id OFFSET %s LIMIT %s
"""


def seed(pg: Any, rows: int) -> None:
    conn = psycopg2.connect(pg.dsn("rampart_admin"))
    conn.autocommit = True
    with conn.cursor() as cur:
        cur.execute("TRUNCATE rampart.events")
        cur.execute(
            """
            INSERT INTO rampart.events (event_id, source, type, occurred_at, payload)
            SELECT gen_random_uuid(),
                   (ARRAY['billing','shipping','identity','catalog'])[1 + g %% 4],
                   (ARRAY['invoice.paid','parcel.sent','user.created','item.updated','order.placed'])[1 + g %% 5],
                   timestamptz '2026-01-01' + g * interval '1 second',
                   jsonb_build_object('n', g, 'amount', g %% 1000, 'currency', 'EUR',
                                      'tags', jsonb_build_array('a', 'b'))
            FROM generate_series(1, %s) AS g
            """,
            (rows,),
        )
        cur.execute("VACUUM ANALYZE rampart.events")
    conn.close()


def main(argv: list[str] | None = None) -> Result:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--repeat", type=int, default=400)
    ap.add_argument("--limit", type=int, default=100)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    rows, repeat = (20_000, 30) if args.smoke else (args.rows, args.repeat)
    depth = rows // 2
    limit = args.limit
    result = Result("api")
    print(f"== API latency, handler level ({rows:,} rows, deep page {depth:,} rows in, limit {limit})", flush=True)
    with production_like_postgres() as pg:
        progress(f"seeding {rows:,} rows")
        t0 = time.perf_counter()
        seed(pg, rows)
        progress(f"seeded in {time.perf_counter() - t0:.1f}s")
        os.environ.update({**pg.env("rampart_api"), "RAMPART_CURSOR_KEY": CURSOR_KEY})
        with quiet_stdout():
            handler = importlib.import_module("rampart.api.handler")
        handler._store = None
        handler._keyring = None

        conn = psycopg2.connect(pg.dsn("rampart_api"))
        conn.autocommit = True
        cur = conn.cursor()
        cur.execute(OFFSET_SQL, (depth - 1, 1))
        deep_row = cur.fetchone()
        from rampart.api.cursor import filters_digest  # noqa: PLC0415

        codec = handler._cursors()
        deep_cursor = codec.encode(deep_row[3], deep_row[0], filters_digest(None, None, None, None))

        def call(query: dict[str, str]) -> None:
            with quiet_stdout():
                resp = handler.lambda_handler(api_event("/v1/events", query), FakeContext())
            assert resp["statusCode"] == 200, resp["body"][:200]

        def bare(after: tuple[Any, Any] | None) -> None:
            params = {"source": None, "type": None, "since": None, "until": None, "limit": limit + 1}
            params |= {"after_t": after[0], "after_id": after[1]} if after else {"after_t": None, "after_id": None}
            cur.execute(LIST_EVENTS, params)
            cur.fetchall()

        def offset(n: int) -> None:
            cur.execute(OFFSET_SQL, (n, limit))
            cur.fetchall()

        # Correctness first: the deep page through the handler is exactly the OFFSET page.
        with quiet_stdout():
            resp = handler.lambda_handler(
                api_event("/v1/events", {"limit": str(limit), "cursor": deep_cursor}), FakeContext()
            )
        got = [i["event_id"] for i in json.loads(resp["body"])["items"]]
        cur.execute(OFFSET_SQL, (depth, limit))
        assert got == [str(r[0]) for r in cur.fetchall()], "deep page differs from OFFSET"

        cases = {
            "handler first page": lambda: call({"limit": str(limit)}),
            "handler deep page (cursor)": lambda: call({"limit": str(limit), "cursor": deep_cursor}),
            "bare SQL first page (limit)": lambda: bare(None),
            "bare SQL deep page (limit)": lambda: bare((deep_row[3], deep_row[0])),
            "OFFSET first page (peer)": lambda: offset(0),
            "OFFSET deep page (peer)": lambda: offset(depth),
        }
        stats: dict[str, dict[str, float]] = {}
        for name, fn in cases.items():
            progress(name)
            reps = repeat if "OFFSET deep" not in name else max(10, repeat // 10)
            stats[name] = summary_ms(timed(fn, reps, warmup=3))
            result.rows.append({"case": name, **stats[name]})
            print(
                f"    {name:32s} p50 {stats[name]['p50_ms']:8.3f} ms   p99 {stats[name]['p99_ms']:8.3f} ms", flush=True
            )
        conn.close()
        handler._store.db.close()

    first, deep = stats["handler first page"], stats["handler deep page (cursor)"]
    result.goal("handler deep page p50 / first page p50 (x)", deep["p50_ms"] / first["p50_ms"], "<=", 1.2)
    result.goal(
        "handler p50 / bare SQL p50, first page (x)",
        first["p50_ms"] / stats["bare SQL first page (limit)"]["p50_ms"],
        "<=",
        1.5,
    )
    result.notes.append(
        f"OFFSET deep page p50 is {stats['OFFSET deep page (peer)']['p50_ms'] / deep['p50_ms']:.0f}x the handler's "
        "keyset deep page"
    )
    if not args.smoke:
        result.save()
    return result


if __name__ == "__main__":
    main()
