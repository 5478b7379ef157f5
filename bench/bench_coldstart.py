"""Cold start: importing each handler in a fresh interpreter, and the first invocation with its DB connection,
against the imports Rampart cannot avoid (Powertools, pydantic, psycopg2) and Powertools alone.

Run: .venv/bin/python -m bench.bench_coldstart [--runs N] [--smoke]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys

from bench.common import ROOT, Result, production_like_postgres, progress

IMPORT = """
import time
t = time.perf_counter()
{imports}
print(round((time.perf_counter() - t) * 1000, 3))
"""


FIRST_CALL = """
import json, os, sys, time
t = time.perf_counter()
sys.stdout = open(os.devnull, "w")
import {module} as h
from tests.helpers import FakeContext, api_event, sqs_event
event = {event}
out = h.lambda_handler(event, FakeContext())
sys.stdout = sys.__stdout__
assert {check}, out
print(round((time.perf_counter() - t) * 1000, 3))
"""

# What a handler cannot avoid importing: Powertools (the REST resolver with its validation for the API; Logger
# and Metrics for ingest), pydantic with its model machinery (pydantic imports lazily: defining one model is what
# loads it), and psycopg2 with its extras.
_PYDANTIC = "import pydantic\nclass _M(pydantic.BaseModel):\n    x: int"
UNAVOIDABLE_API = (
    "import aws_lambda_powertools.event_handler, aws_lambda_powertools.event_handler.openapi.params, "
    "aws_lambda_powertools.event_handler.middlewares.openapi_validation, psycopg2, psycopg2.extras\n" + _PYDANTIC
)
UNAVOIDABLE_INGEST = (
    "import aws_lambda_powertools.logging, aws_lambda_powertools.metrics, psycopg2, psycopg2.extras\n" + _PYDANTIC
)
CASES = {
    "powertools alone": "import aws_lambda_powertools",
    "unavoidable (API)": UNAVOIDABLE_API,
    "rampart.api.handler": "import rampart.api.handler",
    "unavoidable (ingest)": UNAVOIDABLE_INGEST,
    "rampart.ingest.handler": "import rampart.ingest.handler",
}
# Pydantic's plugin loader scans every installed distribution's entry points at the first model; Rampart turns
# it off (the Lambda environment sets the same variable), for the baselines too.
BENCH_ENV = {"PYDANTIC_DISABLE_PLUGINS": "__all__"}


def _run(code: str, env: dict[str, str] | None = None) -> float:
    out = subprocess.run(
        [sys.executable, "-X", "frozen_modules=on", "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **BENCH_ENV, **(env or {})},
        timeout=120,
    )
    return float(out.stdout.strip().splitlines()[-1])


def median_of(code: str, runs: int, env: dict[str, str] | None = None) -> float:
    _run(code, env)  # warm the OS page cache and .pyc files, as a provisioned runtime would have them
    return statistics.median(_run(code, env) for _ in range(runs))


def main(argv: list[str] | None = None) -> Result:
    ap = argparse.ArgumentParser()
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    runs = 3 if args.smoke else args.runs
    result = Result("coldstart")
    print(f"== cold start (median of {runs} fresh interpreters each)", flush=True)
    ms: dict[str, float] = {}
    for name, imports in CASES.items():
        progress(name)
        ms[name] = median_of(IMPORT.format(imports=imports), runs)
        result.rows.append({"case": f"import {name}", "ms": ms[name]})
        print(f"    import {name:40s} {ms[name]:8.1f} ms", flush=True)
    api_extra = ms["rampart.api.handler"] / ms["unavoidable (API)"]
    ingest_extra = ms["rampart.ingest.handler"] / ms["unavoidable (ingest)"]
    result.goal("API handler import / unavoidable imports (x)", api_extra, "<=", 1.2)
    result.goal("ingest handler import / unavoidable imports (x)", ingest_extra, "<=", 1.2)

    with production_like_postgres() as pg:
        calls: dict[str, tuple[str, dict[str, str], str, str]] = {
            "API first invocation (/v1/health, incl. TLS connect)": (
                "rampart.api.handler",
                {**pg.env("rampart_api"), "RAMPART_CURSOR_KEY": "c" * 40},
                'api_event("/v1/health")',
                'out["statusCode"] == 200',
            ),
            "ingest first invocation (1 record, incl. TLS connect)": (
                "rampart.ingest.handler",
                pg.env("rampart_ingest"),
                'sqs_event(json.dumps({"event_id": "7f1d2a9e-0c4b-4b8e-9a51-0d6c2b1e8f00", "source": "bench",'
                ' "type": "cold.start", "occurred_at": "2026-01-01T00:00:00Z", "payload": {}}))',
                'out == {"batchItemFailures": []}',
            ),
        }
        for name, (module, env, event, check) in calls.items():
            progress(name)
            code = FIRST_CALL.format(module=module, event=event, check=check)
            value = median_of(code, runs, env)
            ms[name] = value
            result.rows.append(
                {"case": name, "ms": value, "x_powertools_alone": round(value / ms["powertools alone"], 2)}
            )
            ratio = value / ms["powertools alone"]
            print(f"    {name:60s} {value:8.1f} ms ({ratio:.1f}x powertools alone)", flush=True)
    if not args.smoke:
        result.save()
    return result


if __name__ == "__main__":
    main()
