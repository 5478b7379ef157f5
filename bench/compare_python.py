"""The ingest's Python work per record in two revisions, measured alternately (CPU time, no database).

Run: .venv/bin/python -m bench.compare_python BEFORE [AFTER] [--rounds 15] [--repeats 15]
(BEFORE and AFTER are git revisions; AFTER defaults to this working tree, uncommitted changes included.)

Each revision is exported with `git archive` into a temporary directory. Every round measures each revision in a
fresh process (bench_ingest.python_per_record at batch 1,000: the minimum CPU time of --repeats runs), the order
rotating from round to round, so load from other processes falls on both; the medians of the rounds and of the
paired differences are printed. On a shared machine this, not one run of each, is what tells a change of a few
tenths of a microsecond from the noise (docs/benchmarks.md).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

from bench.common import ROOT

_MEASURE = (
    "import json, sys, rampart\n"
    "from bench.bench_ingest import _bodies, python_per_record\n"
    "assert rampart.__file__.startswith(sys.argv[1]), rampart.__file__\n"
    "print(json.dumps(python_per_record(_bodies(1000), 1000, repeats=int(sys.argv[2]))))\n"
)


def _export(revision: str, into: Path) -> Path:
    archive = subprocess.run(["git", "archive", revision], cwd=ROOT, capture_output=True, check=True).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into


def _measure(root: Path, repeats: int) -> dict[str, float]:
    env = dict(os.environ, PYTHONPATH=f"{root / 'src'}{os.pathsep}{root}")
    out = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(root), str(repeats)],
        cwd=root,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    return dict(json.loads(out.strip().splitlines()[-1]))


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("before")
    ap.add_argument("after", nargs="?", default=None, help="a revision; this working tree if left out")
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--repeats", type=int, default=15)
    args = ap.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        roots = {
            "before": _export(args.before, Path(tmp) / "before"),
            "after": _export(args.after, Path(tmp) / "after") if args.after else ROOT,
        }
        runs: dict[str, list[dict[str, float]]] = {name: [] for name in roots}
        loads = [os.getloadavg()[0]]
        for round_ in range(args.rounds):
            for name in sorted(roots, reverse=round_ % 2 == 1):
                runs[name].append(_measure(roots[name], args.repeats))
            loads.append(os.getloadavg()[0])
    for key in ("process_batch", "handler"):
        for name in roots:
            values = [run[key] for run in runs[name]]
            shown = " ".join(f"{v:.2f}" for v in values)
            print(f"{key:13} {name:6} median {statistics.median(values):.2f} us a record ({shown})")
        saved = statistics.median(b[key] - a[key] for b, a in zip(runs["before"], runs["after"], strict=True))
        print(f"{key:13} saved  median of the paired differences {saved:.2f} us a record")
    print(f"load average (1 min) during the rounds: {min(loads):.2f}-{max(loads):.2f}")


if __name__ == "__main__":
    main()
