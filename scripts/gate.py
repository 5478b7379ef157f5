"""`make gate`: run exactly what the pull-request gate (.github/workflows/ci.yml) runs, then one summary table.

The list of gates is not written down twice: it is read from ci.yml, every `run: make <target>` step of
every job, in order. A step that is not a make target cannot be reproduced locally, so it is an error.
Every target runs even when an earlier one failed, so the table shows the whole picture; the exit status
is non-zero when any gate failed.

    python scripts/gate.py            # the gate
    python scripts/gate.py --list     # the make targets, in order, without running them
    python scripts/gate.py secrets [FILE...]  # detect-secrets against .secrets.baseline (make secrets)
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CI_WORKFLOW = REPO / ".github" / "workflows" / "ci.yml"
BASELINE = REPO / ".secrets.baseline"
# The locks are excluded: their sha256 pins are high-entropy by design (pip --require-hashes checks them).
SECRETS_EXCLUDE = re.compile(r"^(requirements/.*\.txt|\.secrets\.baseline)$")


def gate_targets(workflow: Path = CI_WORKFLOW) -> list[str]:
    """The make targets of every `run:` step in the workflow, in job and step order, without repeats."""
    doc = yaml.safe_load(workflow.read_text(encoding="utf-8"))
    targets: list[str] = []
    for job_id, job in (doc.get("jobs") or {}).items():
        for step in job.get("steps") or []:
            if "run" not in step:
                continue
            words = shlex.split(str(step["run"]), comments=True)
            if len(words) < 2 or words[0] != "make" or any(w.startswith("-") for w in words[1:]):
                raise SystemExit(f"{workflow.name}: job {job_id}: step {step['run']!r} is not `make <target>`")
            targets += [w for w in words[1:] if w not in targets]
    return targets


def _sum(pattern: str, text: str) -> int:
    return sum(int(n) for n in re.findall(pattern, text))


def _sarif_results(path: Path) -> int | None:
    try:
        sarif = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return sum(len(run.get("results") or []) for run in sarif.get("runs") or [])


# How many findings a gate's output reports; None when the output says nothing countable.
FINDINGS: dict[str, Callable[[str], int | None]] = {
    "lint": lambda out: _sum(r"Found (\d+) errors?", out) + _sum(r"(\d+) files? would be reformatted", out),
    "typecheck": lambda out: _sum(r"Found (\d+) errors? in", out),
    "pytest-all": lambda out: _sum(r"(\d+) (?:failed|errors?)\b", out.split("short test summary")[-1]),
    "checkov": lambda out: _sum(r"Failed checks: (\d+)", out),
    "checkov-actions": lambda out: _sum(r"Failed checks: (\d+)", out),
    "policies-check": lambda out: _sum(r"Failed checks: (\d+)", out),
    "iac-scan": lambda out: _sum(r"Failed checks: (\d+)", out),
    "bandit": lambda out: _sarif_results(REPO / "build" / "reports" / "bandit.sarif"),
    "audit": lambda out: _sum(r"findings: (\d+);", out),
    "zizmor": lambda out: 0 if "No findings to report" in out else _sum(r"(\d+) findings?", out),
    "secrets": lambda out: _sum(r"new secrets?: (\d+)", out),
    "iac-validate": lambda out: len(re.findall(r"^\s*Error: ", out, re.MULTILINE)),
    # Supply chain (mk/supply-chain.mk): IAM policy lint, Scorecard-style checks, SBOMs, build manifest.
    "iam-lint": lambda out: _sum(r"findings: (\d+);", out),
    "scorecard-offline": lambda out: _sum(r"findings: (\d+);", out),
    "sbom-check": lambda out: len(re.findall(r"^==> \[sbom\] FAIL", out, re.MULTILINE)),
    "verify-artifacts": lambda out: len(re.findall(r"^==> \[verify-artifacts\] FAIL", out, re.MULTILINE)),
}

SNAPSHOT_DATE = re.compile(r"\b(\d{4}-\d{2}-\d{2})\b")


def advisory_data(environ: dict[str, str] | None = None, repo: Path = REPO) -> str:
    """Which advisory data `make audit` used, with its date: the snapshot's (SNAPSHOT.txt beside its vulns/
    directory) offline, "live" on GitHub (GITHUB_ACTIONS=true: the live OSV service, as of this run)."""
    env = os.environ if environ is None else environ
    if env.get("GITHUB_ACTIONS") == "true":
        return f"live (api.osv.dev, queried {time.strftime('%Y-%m-%d', time.gmtime())})"
    vulns = Path(env.get("ADVISORY_DB") or env.get("RAMPART_ADVISORY_DB") or repo.parent / "shared/advisory-db/vulns")
    snapshot = vulns.parent / "SNAPSHOT.txt"
    try:
        text = snapshot.read_text(encoding="utf-8")
    except OSError:
        return f"unknown date (no {snapshot})"
    match = SNAPSHOT_DATE.search(text)
    date = match.group(1) if match else "undated"
    return f"snapshot of {date} ({snapshot})"


def run_gate(targets: list[str]) -> int:
    rows: list[tuple[str, str, str, float]] = []
    make = shutil.which("make") or "make"
    for target in targets:
        print(f"==> [gate] make {target}", flush=True)
        started = time.monotonic()
        proc = subprocess.Popen(  # noqa: S603 - fixed argv (make + a target read from ci.yml)
            [make, "--no-print-directory", target],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        assert proc.stdout is not None
        lines = []
        for line in proc.stdout:
            sys.stdout.write(line)
            lines.append(line)
        code = proc.wait()
        elapsed = time.monotonic() - started
        counter = FINDINGS.get(target)
        count = counter("".join(lines)) if counter else None
        findings = "-" if count is None else str(count)
        rows.append((target, "pass" if code == 0 else f"FAIL ({code})", findings, elapsed))
    width = max(len(r[0]) for r in rows)
    print("\n==> [gate] summary (targets from .github/workflows/ci.yml)")
    print(f"  {'gate':<{width}}  {'result':<9}  {'findings':>8}  {'time':>7}")
    print(f"  {'-' * width}  {'-' * 9}  {'-' * 8}  {'-' * 7}")
    for target, result, findings, elapsed in rows:
        print(f"  {target:<{width}}  {result:<9}  {findings:>8}  {elapsed:>6.1f}s")
    failed = [r[0] for r in rows if r[1] != "pass"]
    total = sum(r[3] for r in rows)
    print(f"  {'total':<{width}}  {'FAIL' if failed else 'pass':<9}  {'':>8}  {total:>6.1f}s")
    if "audit" in targets:
        print(f"  advisory data (make audit): {advisory_data()}")
    if failed:
        print(f"==> [gate] FAILED: {' '.join(failed)}")
        return 1
    print("==> [gate] every gate passed")
    return 0


def check_secrets(repo: Path = REPO, baseline: Path = BASELINE, only: list[str] | None = None) -> int:
    """detect-secrets over the tracked files; fails on a secret that is not in the audited baseline.

    Runs the hook against a copy of the baseline: the hook rewrites a baseline whose line numbers moved
    (exit 3), and a gate must not edit committed files. Baseline entries must be audited false positives:
    an entry audited as a real secret, or not audited at all, fails too.
    """
    bindir = Path(sys.executable).parent
    data: dict[str, Any] = json.loads(baseline.read_text(encoding="utf-8"))
    entries = [(f, s) for f, secrets in data.get("results", {}).items() for s in secrets]
    bad = [(f, s) for f, s in entries if s.get("is_secret") is not False]
    for filename, secret in bad:
        state = "a real secret" if secret.get("is_secret") else "not audited"
        print(f"==> [secrets] baseline entry {filename}:{secret.get('line_number')} ({secret['type']}) is {state}")
    if only is None:
        only = subprocess.run(
            ["git", "ls-files", "-z"],  # noqa: S607 - git from PATH, as every developer runs it
            cwd=repo, capture_output=True, text=True, check=True,
        ).stdout.split("\0")  # fmt: skip
    candidates = only
    files = [f for f in candidates if f and not SECRETS_EXCLUDE.match(f) and (repo / f).is_file()]
    with tempfile.TemporaryDirectory() as tmp:
        copy = Path(tmp) / ".secrets.baseline"
        shutil.copyfile(baseline, copy)
        proc = subprocess.run(  # noqa: S603 - fixed argv, file names from git
            [str(bindir / "detect-secrets-hook"), "--baseline", str(copy), *files],
            cwd=repo, capture_output=True, text=True, check=False,
        )  # fmt: skip
    new = proc.stdout.count("Secret Type:")
    if proc.returncode not in (0, 3):  # 3: only line numbers of known entries moved
        sys.stdout.write(proc.stdout + proc.stderr)
        new = max(new, 1)
    print(f"==> [secrets] {len(files)} tracked files, {len(entries)} audited baseline entries, new secrets: {new}")
    return 1 if (new or bad) else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", nargs="?", choices=["gate", "secrets"], default="gate")
    parser.add_argument("files", nargs="*", help="secrets: scan only these files (pre-commit passes them)")
    parser.add_argument("--list", action="store_true", help="print the gate's make targets and exit")
    args = parser.parse_args(argv)
    os.chdir(REPO)
    if args.command == "secrets":
        return check_secrets(only=args.files or None)
    targets = gate_targets()
    if args.list:
        print(" ".join(targets))
        return 0
    return run_gate(targets)


if __name__ == "__main__":
    sys.exit(main())
