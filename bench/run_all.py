"""Run every benchmark and write docs/benchmarks.md and docs/benchmarks.png. `make bench` runs this."""

from __future__ import annotations

import argparse
import datetime as dt
import json
from pathlib import Path
from typing import Any

from bench import bench_api, bench_coldstart, bench_footprint, bench_gateway, bench_ingest
from bench.common import RESULTS, ROOT, machine

DOC = ROOT / "docs" / "benchmarks.md"
CHART = ROOT / "docs" / "benchmarks.png"


def _table(rows: list[dict[str, Any]]) -> str:
    if not rows:
        return "_no rows_\n"
    cols = list(dict.fromkeys(k for r in rows for k in r))
    out = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    out += ["| " + " | ".join(str(r.get(c, "")) for c in cols) + " |" for r in rows]
    return "\n".join(out) + "\n"


def _chart(results: dict[str, dict[str, Any]]) -> None:
    import matplotlib  # noqa: PLC0415

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt  # noqa: PLC0415

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    ingest = results.get("ingest", {}).get("rows", [])
    batches = [10, 100, 1000]
    for method, colour in (("Rampart ingest handler", "tab:green"), ("COPY (limit)", "tab:gray")):
        vals = [
            next((r["events_per_s"] for r in ingest if r["method"] == method and r["batch"] == b), 0) for b in batches
        ]
        offset = -0.2 if colour == "tab:green" else 0.2
        axes[0].bar([i + offset for i in range(3)], vals, width=0.4, label=method, color=colour)
    per_record = next((r["events_per_s"] for r in ingest if r["batch"] == 1), 0)
    axes[0].axhline(per_record, color="tab:red", linestyle="--", label="one INSERT+COMMIT per record")
    axes[0].set_xticks(range(3), [f"batch {b}" for b in batches])
    axes[0].set_ylabel("events / s")
    axes[0].set_title("Ingest throughput")
    axes[0].legend(fontsize=8)
    api = results.get("api", {}).get("rows", [])
    axes[1].barh([r["case"] for r in api], [r["p50_ms"] for r in api], color="tab:blue", label="p50")
    axes[1].barh(
        [r["case"] for r in api],
        [r["p99_ms"] - r["p50_ms"] for r in api],
        left=[r["p50_ms"] for r in api],
        color="tab:orange",
        label="p99",
    )
    axes[1].set_xscale("log")
    axes[1].set_xlabel("ms (log)")
    axes[1].set_title("GET /v1/events latency (1M rows)")
    axes[1].legend(fontsize=8)
    axes[1].tick_params(axis="y", labelsize=7)
    cold = results.get("coldstart", {}).get("rows", [])
    axes[2].barh([r["case"] for r in cold], [r["ms"] for r in cold], color="tab:purple")
    axes[2].set_xlabel("ms")
    axes[2].set_title("Cold start")
    axes[2].tick_params(axis="y", labelsize=7)
    fig.tight_layout()
    fig.savefig(CHART, dpi=110)


COMMANDS = {
    "ingest": ".venv/bin/python -m bench.bench_ingest",
    "api": ".venv/bin/python -m bench.bench_api",
    "gateway": ".venv/bin/python -m bench.bench_gateway",
    "coldstart": ".venv/bin/python -m bench.bench_coldstart",
    "footprint": ".venv/bin/python -m bench.bench_footprint",
}
TITLES = {
    "ingest": "1. Ingest throughput",
    "api": "2. API latency at the handler",
    "gateway": "3. Through the local gateway (HTTP, keys, concurrent clients)",
    "coldstart": "4. Cold start",
    "footprint": "5. Footprint",
}


def write_doc(results: dict[str, dict[str, Any]], started: str) -> None:
    m = machine()
    parts = [
        "# Benchmarks\n",
        "Every figure is a ratio against a baseline measured **in the same run, on the same database** "
        "(these machines are noisy; absolute numbers move, ratios much less). Regenerate everything with "
        "`make bench` (about 5 minutes); `make test` runs a smoke version of each to prove they still work.\n",
        f"Last full run: {started} on {m['cpu']} ({m['cores']} cores), Python {m['python']}, {m['postgres']}, "
        f"{m['os']}. PostgreSQL runs embedded with `fsync` and `synchronous_commit` on, TLS `verify-full`.\n",
        "![benchmarks](benchmarks.png)\n",
        "## Goals\n",
        _table([{"benchmark": k, **g} for k, r in results.items() for g in r.get("goals", [])]),
    ]
    for key in ("ingest", "api", "gateway", "coldstart", "footprint"):
        if key not in results:
            continue
        r = results[key]
        parts.append(f"## {TITLES[key]}\n")
        parts.append(f"Reproduce: `{COMMANDS[key]}`\n")
        parts.append(_table(r.get("rows", [])))
        for note in r.get("notes", []):
            parts.append(f"- {note}\n")
    notes = ROOT / "bench" / "NOTES.md"
    if notes.exists():
        parts.append(notes.read_text(encoding="utf-8"))
    DOC.write_text("\n".join(parts), encoding="utf-8")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="run each benchmark tiny, write nothing")
    ap.add_argument("--only", nargs="*", default=None)
    ap.add_argument("--doc-only", action="store_true", help="rewrite the doc and chart from bench/results")
    args = ap.parse_args()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    flags = ["--smoke"] if args.smoke else []
    modules = {
        "ingest": bench_ingest,
        "api": bench_api,
        "gateway": bench_gateway,
        "coldstart": bench_coldstart,
        "footprint": bench_footprint,
    }
    for name, module in modules.items():
        if not args.doc_only and (args.only is None or name in args.only):
            module.main(flags)
    if args.smoke:
        print("==> [bench] smoke run passed (nothing written)")
        return
    results = {p.stem: json.loads(p.read_text()) for p in sorted(Path(RESULTS).glob("*.json"))}
    if args.doc_only or args.only is not None:  # the header dates the last run of every benchmark
        started = str(results.get("ingest", {}).get("started", started))
    _chart(results)
    write_doc(results, started)
    print(f"==> [bench] wrote {DOC.relative_to(ROOT)} and {CHART.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
