"""`make mutation`: cosmic-ray over the core modules, in a scratch copy of the tree; a gate on the score.

    python scripts/mutation.py [--module src/rampart/events.py ...]   # run (default: every module), then report
    python scripts/mutation.py --report                                # report and gate from the stored results

cosmic-ray mutates files in place, so it runs in a scratch copy (scripts/prove_controls.py's, with PYTHONPATH on
the copy's src) and the working tree is never touched. Per module:

1. ``cosmic-ray init`` lists the mutants; those inside type annotations that are never evaluated (see
   :func:`annotation_ranges`) are marked skipped, and counted in their own column.
2. The module's test commands run unmutated, each in a fresh interpreter and then as the mutants will run: both
   must pass (a red baseline would count every mutant killed), and their time sets the timeout.
3. ``cosmic-ray exec`` runs the tests once per mutant: the unit tests first (-x), the integration tests (real
   PostgreSQL over TLS: one server for the whole run, tests/conftest.py's ``pg`` attaches to it) only when the
   unit tests pass. pytest runs in a fork of a server that has imported the test tools (scripts/mutation_fork.py).

Results are stored per module in docs/mutation-results.json (a ``--module`` run replaces only its modules) and
docs/mutation.md is rendered from them. The exit status is the gate: non-zero when a module has not been run or
was changed since, when a module's raw score (killed / (killed + survived)) is below 85 %, or when a survivor has
no explanation beginning with "equivalent:" in docs/mutation-equivalents.json.
"""

from __future__ import annotations

import argparse
import ast
import datetime as dt
import hashlib
import json
import os
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cosmic_ray.work_db import WorkDB, use_db
from cosmic_ray.work_item import WorkerOutcome, WorkResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from rampart.local.postgres import EmbeddedPostgres
from scripts.prove_controls import REPO, make_scratch, scratch_env, tree_files

REPORT = REPO / "docs" / "mutation.md"
RESULTS = REPO / "docs" / "mutation-results.json"
EXPLANATIONS = REPO / "docs" / "mutation-equivalents.json"
MIN_SCORE = 85.0
PYTEST = ["-x", "-q", "-p", "no:cacheprovider", "--no-cov", "-o", "addopts="]
UNIT, INTEGRATION = "tests/unit", "tests/integration"
# Module -> its test groups, fastest first; a group runs only if the one before passed (a mutant is killed by
# the first group that fails).
TESTS: dict[str, list[list[str]]] = {
    "src/rampart/events.py": [
        [
            f"{UNIT}/test_events.py",
            f"{UNIT}/test_events_edges.py",
            f"{UNIT}/test_events_scan.py",
            f"{UNIT}/test_event_schema.py",
            f"{UNIT}/test_batch.py",
            f"{UNIT}/test_api_window.py",
        ],
        [f"{INTEGRATION}/test_ingest_handler.py"],
    ],
    "src/rampart/ingest/batch.py": [
        [
            f"{UNIT}/test_batch.py",
            f"{UNIT}/test_dlq.py",
            f"{UNIT}/test_dead_letters.py",
            f"{UNIT}/test_ingest_metrics.py",
        ],
        [f"{INTEGRATION}/test_ingest_handler.py"],
    ],
    "src/rampart/api/cursor.py": [
        [f"{UNIT}/test_cursor.py", f"{UNIT}/test_cursor_edges.py"],
        [f"{INTEGRATION}/test_api_handler.py", "-k", "cursor"],
    ],
    "src/rampart/db/store.py": [
        [f"{UNIT}/test_store.py"],
        [f"{INTEGRATION}/test_ingest_handler.py", f"{INTEGRATION}/test_api_handler.py"],
    ],
    "src/rampart/api/handler.py": [
        [f"{UNIT}/test_openapi.py"],
        [f"{INTEGRATION}/test_api_handler.py", f"{INTEGRATION}/test_cursor_rotation.py"],
    ],
}
# Decorators that register a function without reading its annotations. Any other decorator may read them (the
# Powertools routes do: their parameters' annotations are the request's validation), so those are mutated.
INERT_DECORATORS = ("app.exception_handler", "app.not_found", "logger.inject_lambda_context", "dataclass")
SKIPPED_ANNOTATION = "annotation, not evaluated"


# -- which mutants can never be observed: annotations nothing evaluates ------------------------------------------
def annotation_ranges(source: str) -> list[tuple[tuple[int, int], tuple[int, int]]]:
    """(start, end) positions, as (line, column in characters), of the annotations Python never evaluates.

    The modules say ``from __future__ import annotations``: an annotation is kept as a string and evaluated only if
    something asks for it (typing.get_type_hints, pydantic, Powertools' route validation). Counted as never
    evaluated: the annotations of a function's parameters and return when the function has no decorator or only
    :data:`INERT_DECORATORS`; a variable's annotation in a function or at module level; a field's in a
    ``@dataclass`` (dataclasses read annotations as text, for ClassVar only). A class body that is not a dataclass
    (a TypedDict pydantic validates, a Protocol) keeps its mutants.
    """
    lines = source.splitlines()

    def position(line: int, byte_col: int) -> tuple[int, int]:  # ast counts UTF-8 bytes, cosmic-ray characters
        return line, len(lines[line - 1].encode("utf-8")[:byte_col].decode("utf-8"))

    def inert(decorators: list[ast.expr]) -> bool:
        for decorator in decorators:
            target = decorator.func if isinstance(decorator, ast.Call) else decorator
            if not ast.unparse(target).endswith(INERT_DECORATORS):
                return False
        return True

    ranges: list[tuple[tuple[int, int], tuple[int, int]]] = []

    def add(node: ast.expr) -> None:
        end_line, end_col = node.end_lineno or node.lineno, node.end_col_offset or node.col_offset
        ranges.append((position(node.lineno, node.col_offset), position(end_line, end_col)))

    def visit(node: ast.AST, annotations_inert: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                if inert(child.decorator_list):
                    args = child.args
                    for arg in [*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg]:
                        if arg is not None and arg.annotation is not None:
                            add(arg.annotation)
                    if child.returns is not None:
                        add(child.returns)
                visit(child, True)
            elif isinstance(child, ast.ClassDef):
                is_dataclass = bool(child.decorator_list) and inert(child.decorator_list)
                visit(child, is_dataclass)
            elif isinstance(child, ast.AnnAssign):
                if annotations_inert:
                    add(child.annotation)
            else:
                visit(child, annotations_inert)

    visit(ast.parse(source), True)
    return ranges


def skip_annotation_mutants(session: Path, source: str) -> int:
    ranges = annotation_ranges(source)
    skipped = 0
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item in list(db.pending_work_items):
            mutation = item.mutations[0]
            start, end = tuple(mutation.start_pos), tuple(mutation.end_pos)
            if any(low <= start and end <= high for low, high in ranges):
                db.set_result(item.job_id, WorkResult(output=SKIPPED_ANNOTATION, worker_outcome=WorkerOutcome.SKIPPED))
                skipped += 1
    return skipped


# -- running -----------------------------------------------------------------------------------------------------
def fork_command(socket_path: Path, groups: list[list[str]]) -> str:
    client = f"python -S scripts/mutation_fork.py run {socket_path} --"
    return " && ".join(f"{client} {shlex.join([*PYTEST, *group])}" for group in groups)


def display_command(groups: list[list[str]]) -> str:
    return " && ".join(f"pytest {shlex.join([*PYTEST, *group])}" for group in groups)


def run_baseline_fresh(groups: list[list[str]], scratch: Path, env: dict[str, str], modules_out: Path) -> None:
    """Each test group, unmutated, in a fresh interpreter: must pass. Records the modules the tests import (the fork
    server preloads the third-party ones)."""
    probe = (
        "import json, sys, pytest\n"
        "code = pytest.main(sys.argv[2:])\n"
        "known = set(json.load(open(sys.argv[1]))) if __import__('os').path.exists(sys.argv[1]) else set()\n"
        "json.dump(sorted(known | set(sys.modules)), open(sys.argv[1], 'w'))\n"
        "sys.exit(int(code))\n"
    )
    for group in groups:
        argv = ["python", "-c", probe, str(modules_out), *PYTEST, *group]
        done = subprocess.run(argv, cwd=scratch, env=env, check=False, capture_output=True, text=True)  # noqa: S603
        if done.returncode != 0:
            raise SystemExit(
                f"mutation: the UNMUTATED tree fails {display_command([group])} (exit {done.returncode}); every "
                f"mutant would count as killed. Fix the tests first.\n{done.stdout[-3000:]}{done.stderr[-2000:]}"
            )


@contextmanager
def fork_server(scratch: Path, env: dict[str, str], modules_file: Path) -> Iterator[Path]:
    socket_path = scratch / "fork.sock"
    socket_path.unlink(missing_ok=True)
    log = (scratch / "fork-server.log").open("w", encoding="utf-8")
    argv = ["python", "scripts/mutation_fork.py", "serve", str(socket_path), str(modules_file), str(scratch)]
    server = subprocess.Popen(argv, cwd=scratch, env=env, stdout=log, stderr=subprocess.STDOUT)  # noqa: S603
    try:
        deadline = time.monotonic() + 120
        while not socket_path.exists():
            if server.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(
                    f"mutation: the fork server did not start: {(scratch / 'fork-server.log').read_text()}"
                )
            time.sleep(0.1)
        yield socket_path
    finally:
        server.terminate()
        server.wait(timeout=30)
        log.close()


def run_module(module: str, scratch: Path, env: dict[str, str]) -> dict[str, object]:
    started = time.monotonic()
    groups = TESTS[module]
    config, session = scratch / "cosmic-ray.toml", scratch / "cosmic-ray.sqlite"
    session.unlink(missing_ok=True)
    modules_file = scratch / "preload.json"
    modules_file.unlink(missing_ok=True)
    print(f"==> [mutation] {module}: baseline in a fresh interpreter", flush=True)
    run_baseline_fresh(groups, scratch, env, modules_file)
    cosmic = str(REPO / ".venv" / "bin" / "cosmic-ray")
    with fork_server(scratch, env, modules_file) as socket_path:
        command = fork_command(socket_path, groups)
        t0 = time.monotonic()
        baseline = subprocess.run(["bash", "-c", command], cwd=scratch, env=env, check=False, capture_output=True)  # noqa: S603, S607
        baseline_s = time.monotonic() - t0
        if baseline.returncode != 0:
            raise SystemExit(
                f"mutation: the UNMUTATED tree fails {module}'s tests through the fork server "
                f"(exit {baseline.returncode}):\n{baseline.stdout.decode()[-3000:]}{baseline.stderr.decode()[-2000:]}"
            )
        timeout = max(60.0, 10 * baseline_s)
        print(f"==> [mutation] {module}: baseline {baseline_s:.1f} s, timeout {timeout:.0f} s", flush=True)
        config.write_text(
            "[cosmic-ray]\n"
            f'module-path = "{module}"\n'
            f"timeout = {timeout:.0f}\n"
            "excluded-modules = []\n"
            f"test-command = {json.dumps(f'bash -c {shlex.quote(command)}')}\n"
            '\n[cosmic-ray.distributor]\nname = "local"\n',
            encoding="utf-8",
        )
        subprocess.run([cosmic, "init", str(config), str(session)], cwd=scratch, env=env, check=True)  # noqa: S603
        source = (scratch / module).read_text(encoding="utf-8")
        skipped = skip_annotation_mutants(session, source)
        print(f"==> [mutation] {module}: {skipped} mutants in annotations skipped; exec", flush=True)
        subprocess.run([cosmic, "exec", str(config), str(session)], cwd=scratch, env=env, check=True)  # noqa: S603
    dump = subprocess.run(  # noqa: S603
        [cosmic, "dump", str(session)], cwd=scratch, env=env, check=True, capture_output=True, text=True
    ).stdout
    lines = source.splitlines()
    counts = {"mutants": 0, "skipped": 0, "killed": 0, "timeout": 0, "survived": 0, "incompetent": 0}
    survivors, others = [], []
    for line in dump.splitlines():
        work, result = json.loads(line)
        mutation, result = work["mutations"][0], result or {}
        counts["mutants"] += 1
        worker, outcome = result.get("worker_outcome"), result.get("test_outcome")
        if worker == "skipped":
            counts["skipped"] += 1
        elif worker == "normal" and outcome == "killed":
            counts["killed"] += 1
            counts["timeout"] += result.get("output") == "timeout"
        elif worker == "normal" and outcome == "survived":
            counts["survived"] += 1
            row, col = mutation["start_pos"]
            survivors.append(
                {
                    "key": f"{module}:{row}:{col}:{mutation['operator_name'].split('/')[-1]}",
                    "line": row,
                    "code": lines[row - 1].strip(),
                    "diff": result.get("diff", ""),
                }
            )
        else:
            counts["incompetent"] += 1
            row, col = mutation["start_pos"]
            others.append(
                {
                    "key": f"{module}:{row}:{col}:{mutation['operator_name'].split('/')[-1]}",
                    "outcome": f"{worker}/{outcome}",
                    "output": str(result.get("output") or "")[-300:],
                }
            )
    return {
        **counts,
        "survivors": sorted(survivors, key=lambda s: (int(str(s["line"])), str(s["key"]))),
        "not_run": others,
        "date": dt.datetime.now(dt.UTC).date().isoformat(),
        "minutes": round((time.monotonic() - started) / 60, 1),
        "baseline_s": round(baseline_s, 1),
        "command": display_command(groups),
        "source_sha256": hashlib.sha256((REPO / module).read_bytes()).hexdigest(),
    }


# -- report and gate ---------------------------------------------------------------------------------------------
def score(entry: dict[str, object]) -> float:
    killed, survived = int(str(entry["killed"])), int(str(entry["survived"]))
    return 100.0 * killed / max(1, killed + survived)


def problems(results: dict[str, dict[str, object]], explanations: dict[str, str]) -> list[str]:
    found = []
    for module in TESTS:
        entry = results.get(module)
        if entry is None:
            found.append(f"{module}: not run")
            continue
        if entry.get("source_sha256") != hashlib.sha256((REPO / module).read_bytes()).hexdigest():
            found.append(f"{module}: changed since its run (rerun: make mutation MODULE={module})")
        if score(entry) < MIN_SCORE:
            found.append(f"{module}: raw score {score(entry):.1f} % < {MIN_SCORE:.0f} %")
        for survivor in entry["survivors"]:  # type: ignore[attr-defined]
            if not explanations.get(survivor["key"], "").startswith("equivalent:"):
                found.append(f"{survivor['key']}: survivor without an 'equivalent:' explanation")
    return found


def render(results: dict[str, dict[str, object]], explanations: dict[str, str], found: list[str]) -> str:
    lines = [
        "# Mutation testing",
        "",
        "Generated by `make mutation` (cosmic-ray, scripts/mutation.py) from docs/mutation-results.json. Each mutant",
        "is a small change to the code (an operator swapped, a constant changed, a condition negated); it is *killed*",
        "when the module's tests fail with it. Every survivor is explained in docs/mutation-equivalents.json (why the",
        "change cannot be observed). Mutants inside annotations Python never evaluates (parameter, return and variable",
        "annotations under `from __future__ import annotations`; not the Powertools routes' parameters, nor a",
        "TypedDict's fields, which are evaluated) are not run and are counted in their own column.",
        "",
        f"Gate: the raw score, killed / (killed + survived), at least {MIN_SCORE:.0f} % per module; every survivor",
        "explained; results current with the module's source. Rerun one module:",
        "`make mutation MODULE=src/rampart/db/store.py` (only its section changes).",
        "",
        "| module | date | mutants | skipped: annotation, not evaluated | killed (of which timeout) | survived "
        "(of which explained as equivalent) | incompetent | raw score | minutes |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    counted = ("mutants", "skipped", "killed", "timeout", "survived", "incompetent")
    totals = dict.fromkeys((*counted, "explained"), 0)
    minutes = 0.0
    for module in TESTS:
        entry = results.get(module)
        if entry is None:
            lines.append(f"| `{module}` | not run | | | | | | | |")
            continue
        for key in counted:
            totals[key] += int(str(entry[key]))
        minutes += float(str(entry["minutes"]))
        survivors: list[dict[str, str]] = entry["survivors"]  # type: ignore[assignment]
        explained = sum(1 for s in survivors if explanations.get(s["key"], "").startswith("equivalent:"))
        totals["explained"] += explained
        lines.append(
            f"| `{module}` | {entry['date']} | {entry['mutants']} | {entry['skipped']} | {entry['killed']} "
            f"({entry['timeout']}) | {entry['survived']} ({explained}) | {entry['incompetent']} "
            f"| {score(entry):.1f} % | {entry['minutes']} |"
        )
    lines.append(
        f"| **all five** | | {totals['mutants']} | {totals['skipped']} | {totals['killed']} ({totals['timeout']}) "
        f"| {totals['survived']} ({totals['explained']}) | {totals['incompetent']} "
        f"| {score(dict(totals)):.1f} % | {minutes:.1f} |"
    )
    lines += [
        "",
        "Command: `make mutation` (all modules) or `python scripts/mutation.py --module MODULE`; `--report` renders",
        "this file and checks the gate from the stored results. Minutes are wall time on a shared 2-core machine.",
        "",
        "Gate: " + ("passes." if not found else "FAILS:"),
    ]
    lines += [f"- {p}" for p in found]
    lines += ["", "Test commands (a group runs only if the one before passed; the first failure kills):", ""]
    lines += [f"- `{m}`: `{results[m]['command']}`" for m in TESTS if m in results]
    for module in TESTS:
        entry = results.get(module)
        if entry is None:
            continue
        survivors = entry["survivors"]  # type: ignore[assignment]
        lines += ["", f"## Survivors in `{module}`", ""]
        for other in entry.get("not_run") or []:  # type: ignore[attr-defined]
            lines += [f"Not run ({other['outcome']}, cosmic-ray could not apply it): `{other['key']}`.", ""]
        if not survivors:
            lines.append("None.")
            continue
        lines += ["| line | operator | code | why it survives |", "| --- | --- | --- | --- |"]
        for s in survivors:
            operator = s["key"].rsplit(":", 1)[-1]
            code = s["code"].replace("|", "\\|")
            why = explanations.get(s["key"], "**not explained**").replace("|", "\\|")
            lines.append(f"| {s['line']} | `{operator}` | `{code}` | {why} |")
    return "\n".join(lines) + "\n"


def load(path: Path) -> dict[str, object]:
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else {}


def report() -> int:
    results: dict[str, dict[str, object]] = load(RESULTS)  # type: ignore[assignment]
    explanations: dict[str, str] = load(EXPLANATIONS)  # type: ignore[assignment]
    found = problems(results, explanations)
    REPORT.write_text(render(results, explanations, found), encoding="utf-8")
    print(REPORT.read_text(encoding="utf-8"))
    for problem in found:
        print(f"mutation gate: {problem}", file=sys.stderr)
    return 1 if found else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--module", action="append", choices=list(TESTS), help="default: every module")
    parser.add_argument("--report", action="store_true", help="only render docs/mutation.md and check the gate")
    args = parser.parse_args(argv)
    if args.report:
        return report()
    modules = args.module or list(TESTS)
    parent = Path(tempfile.mkdtemp(prefix="rampart-mutation-"))
    try:
        scratch = make_scratch(tree_files(), parent)
        env = scratch_env(scratch)
        env["PATH"] = f"{REPO / '.venv' / 'bin'}:{env.get('PATH', '')}"
        with shared_postgres(scratch, env, modules):
            for module in modules:
                print(f"==> [mutation] cosmic-ray over {module}", flush=True)
                entry = run_module(module, scratch, env)
                results = load(RESULTS)
                results[module] = entry
                RESULTS.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    return report()


@contextmanager
def shared_postgres(scratch: Path, env: dict[str, str], modules: list[str]) -> Iterator[None]:
    """One embedded PostgreSQL (TLS, the project's migrations and roles) for every test run that needs one."""
    if not any(INTEGRATION in arg for m in modules for group in TESTS[m] for arg in group):
        yield
        return
    server = EmbeddedPostgres().start()
    try:
        info = scratch / "shared-pg.json"
        fd = os.open(info, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)  # the roles' passwords
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            json.dump(server.describe(), fh)
        env["RAMPART_TEST_SHARED_PG"] = str(info)
        yield
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
