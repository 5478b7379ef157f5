"""Footprint: each Lambda zip against its budget, the pre-commit hooks on a one-file change, `make test` time.

Run: .venv/bin/python -m bench.bench_footprint
"""

from __future__ import annotations

import argparse
import os
import subprocess
import time
from pathlib import Path

from bench.common import ROOT, Result, progress

ZIPS = ROOT / "dist" / "lambda"
BUDGET_MIB = 15.0
MAKE_TEST_SECONDS = ROOT / "build" / "make-test.seconds"


def main(argv: list[str] | None = None) -> Result:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true")
    args = ap.parse_args(argv)
    result = Result("footprint")
    print("== footprint", flush=True)
    progress("make package")
    subprocess.run(["make", "--no-print-directory", "package"], cwd=ROOT, check=True, capture_output=True)
    for name in ("ingest", "api"):
        size = (ZIPS / f"{name}.zip").stat().st_size / 2**20
        result.rows.append({"item": f"{name}.zip", "value": f"{size:.2f} MiB", "budget": f"{BUDGET_MIB} MiB"})
        print(f"    {name}.zip: {size:.2f} MiB (budget {BUDGET_MIB} MiB)", flush=True)
        result.goal(f"{name}.zip size (MiB)", size, "<=", BUDGET_MIB)
    if not args.smoke:
        progress("pre-commit on a one-file change (src/rampart/events.py)")
        target = ROOT / "src" / "rampart" / "events.py"
        argv = [str(ROOT / ".venv" / "bin" / "pre-commit"), "run", "--files", str(target.relative_to(ROOT))]
        for attempt in (1, 2):
            # pre-commit fails a hook when any file of the tree changes while it runs (someone editing): retry once.
            start = time.perf_counter()
            done = subprocess.run(
                argv, cwd=ROOT, capture_output=True, text=True, env={**os.environ, "SKIP": ""}, check=False
            )
            seconds = time.perf_counter() - start
            if done.returncode == 0:
                break
            if attempt == 2:
                raise RuntimeError(f"pre-commit failed on {target.name}:\n{done.stdout[-3000:]}")
        result.rows.append({"item": "pre-commit, one Python file", "value": f"{seconds:.1f} s", "budget": ""})
        print(f"    pre-commit on one file: {seconds:.1f} s", flush=True)
    if MAKE_TEST_SECONDS.exists():
        total = int(Path(MAKE_TEST_SECONDS).read_text().strip())
        result.rows.append({"item": "make test (last run)", "value": f"{total} s", "budget": "1200 s"})
        print(f"    make test (last run): {total} s", flush=True)
    if not args.smoke:
        result.save()
    return result


if __name__ == "__main__":
    main()
