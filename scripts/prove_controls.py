"""Controls as data (security/controls.yaml): prove that every control's proofs fail when the control is gone.

    python scripts/prove_controls.py prove [--only ID ...] [--jobs N] [--baseline]   # make prove-controls
    python scripts/prove_controls.py check                                          # schema + mutations apply
    python scripts/prove_controls.py docs [--check]                                 # SECURITY.md's table

For each mutation of each control: copy the working tree (tracked and untracked-but-not-ignored files) into a
scratch folder, apply the mutation there, run ONLY the proofs the mutation names, and require that EVERY one of
them fails ("killed"). The scratch copy imports its own ``src`` (PYTHONPATH comes before the editable install's
path hook; a preflight checks it) and reuses the project's virtualenvs through symlinks. The original tree is
never modified. Exit status 1 when a mutation survived (a proof still passed), did not apply (its snippet is not
found exactly once: the code drifted, update the control), or a proof could not run.
"""

from __future__ import annotations

import argparse
import ast
import concurrent.futures
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
CONTROLS = REPO / "security" / "controls.yaml"
SECURITY_MD = REPO / "SECURITY.md"
TABLE_BEGIN = "<!-- controls-table:begin (generated from security/controls.yaml by `make security-docs`) -->"
TABLE_END = "<!-- controls-table:end -->"
SYMLINKED = (".venv", ".venv-checkov")
# Downloaded Lambda wheels (build/lambda-wheels/<lock digest>/, ignored by git): each complete download is shared
# with the scratch copies read-only, so a build in a copy needs no network (a changed lock still downloads anew).
WHEEL_CACHE = Path("build") / "lambda-wheels"
ID_PATTERN = re.compile(r"^[a-z][a-z0-9-]{2,60}$")
OPS = ("replace", "delete", "ast_stub")
PROOF_KINDS = ("pytest", "checkov", "cmd")
PYTEST_TIMEOUT_S = 900


class ControlsError(ValueError):
    """security/controls.yaml is malformed, or a mutation does not apply to the current tree."""


# -- the model ----------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Proof:
    """``tests/x.py::test_y`` (pytest), ``checkov:CKV_ID@dir`` or ``cmd:<argv>`` (killed when it exits non-zero)."""

    text: str

    @property
    def kind(self) -> str:
        if self.text.startswith("checkov:"):
            return "checkov"
        if self.text.startswith("cmd:"):
            return "cmd"
        return "pytest"

    @property
    def checkov(self) -> tuple[str, str]:
        check, _, directory = self.text.removeprefix("checkov:").partition("@")
        return check, directory or "iac"


@dataclass(frozen=True)
class Mutation:
    name: str
    op: str
    file: str
    old: str = ""
    new: str = ""
    function: str = ""  # ast_stub: [Class.]function whose body becomes `new`
    proofs: tuple[Proof, ...] = ()

    def describe(self) -> str:
        return f"{self.name} ({self.op} in {self.file})"


@dataclass(frozen=True)
class Control:
    id: str
    claim: str
    implementation: tuple[str, ...]
    proofs: tuple[Proof, ...]
    evidence: tuple[str, ...]
    mutations: tuple[Mutation, ...]
    notes: str = ""


def load_controls(path: Path = CONTROLS) -> list[Control]:
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        raise ControlsError(f"{path} is not valid YAML: {exc}") from None
    if not isinstance(data, dict) or not isinstance(data.get("controls"), list):
        raise ControlsError(f"{path}: expected a mapping with a `controls` list")
    controls: list[Control] = []
    seen: set[str] = set()
    for raw in data["controls"]:
        controls.append(_control(raw))
        if controls[-1].id in seen:
            raise ControlsError(f"duplicate control id {controls[-1].id}")
        seen.add(controls[-1].id)
    names = [m.name for c in controls for m in c.mutations]
    if len(names) != len(set(names)):
        raise ControlsError("mutation names must be unique across controls")
    return controls


def _strings(raw: Any, where: str) -> tuple[str, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list) or not all(isinstance(s, str) and s.strip() for s in raw):
        raise ControlsError(f"{where}: expected a list of non-empty strings")
    return tuple(raw)


def _control(raw: Any) -> Control:
    if not isinstance(raw, dict):
        raise ControlsError(f"a control must be a mapping: {raw!r}")
    allowed = {"id", "claim", "implementation", "proofs", "evidence", "mutations", "notes"}
    if extra := set(raw) - allowed:
        raise ControlsError(f"control {raw.get('id')}: unknown keys {sorted(extra)}")
    cid = raw.get("id")
    if not isinstance(cid, str) or not ID_PATTERN.match(cid):
        raise ControlsError(f"control id {cid!r} must match {ID_PATTERN.pattern}")
    claim = raw.get("claim")
    if not isinstance(claim, str) or not claim.strip():
        raise ControlsError(f"{cid}: a claim is required")
    implementation = _strings(raw.get("implementation"), f"{cid}.implementation")
    if not implementation:
        raise ControlsError(f"{cid}: name where the control is implemented")
    for item in implementation:
        file = item.split("::")[0]
        if not (REPO / file).exists() and not any(REPO.glob(file)):
            raise ControlsError(f"{cid}: implementation {file} does not exist")
    proofs = tuple(Proof(p) for p in _strings(raw.get("proofs"), f"{cid}.proofs"))
    if not proofs:
        raise ControlsError(f"{cid}: at least one proof is required")
    for proof in proofs:
        if proof.kind == "pytest":
            file = proof.text.split("::")[0]
            if not (REPO / file).is_file():
                raise ControlsError(f"{cid}: proof {proof.text}: {file} does not exist")
            if "emulate" in file:
                raise ControlsError(f"{cid}: emulator proofs are too slow to rerun per mutation: list under evidence")
    evidence = _strings(raw.get("evidence"), f"{cid}.evidence")
    mutations_raw = raw.get("mutations")
    if not isinstance(mutations_raw, list) or not mutations_raw:
        raise ControlsError(f"{cid}: at least one mutation is required")
    mutations = tuple(_mutation(cid, m, proofs) for m in mutations_raw)
    notes = raw.get("notes") or ""
    return Control(cid, claim.strip(), implementation, proofs, evidence, mutations, str(notes).strip())


def _mutation(cid: str, raw: Any, proofs: tuple[Proof, ...]) -> Mutation:
    if not isinstance(raw, dict):
        raise ControlsError(f"{cid}: a mutation must be a mapping")
    allowed = {"name", "op", "file", "old", "new", "function", "proofs"}
    if extra := set(raw) - allowed:
        raise ControlsError(f"{cid}: mutation keys {sorted(extra)} unknown")
    name, op, file = raw.get("name"), raw.get("op"), raw.get("file")
    if not isinstance(name, str) or not ID_PATTERN.match(name):
        raise ControlsError(f"{cid}: mutation name {name!r} must match {ID_PATTERN.pattern}")
    if op not in OPS:
        raise ControlsError(f"{cid}/{name}: op must be one of {OPS}")
    if not isinstance(file, str) or not (REPO / file).is_file():
        raise ControlsError(f"{cid}/{name}: file {file!r} does not exist")
    old, new, function = str(raw.get("old") or ""), str(raw.get("new") or ""), str(raw.get("function") or "")
    if op in ("replace", "delete") and not old:
        raise ControlsError(f"{cid}/{name}: `{op}` needs `old` (the exact snippet)")
    if op == "replace" and "new" not in raw:
        raise ControlsError(f"{cid}/{name}: `replace` needs `new`")
    if op == "ast_stub" and not (function and new):
        raise ControlsError(f"{cid}/{name}: `ast_stub` needs `function` and `new` (the replacement body)")
    selected = _strings(raw.get("proofs"), f"{cid}/{name}.proofs")
    chosen = tuple(Proof(p) for p in selected) if selected else proofs
    unknown = [p.text for p in chosen if p not in proofs]
    if unknown:
        raise ControlsError(f"{cid}/{name}: proofs {unknown} are not among the control's proofs")
    return Mutation(name, op, file, old, new, function, chosen)


# -- mutations ----------------------------------------------------------------------------------------------------
def mutate(text: str, mutation: Mutation) -> str:
    """The file's text with the mutation applied; :class:`ControlsError` when it does not apply exactly once."""
    if mutation.op in ("replace", "delete"):
        count = text.count(mutation.old)
        if count != 1:
            raise ControlsError(
                f"mutation {mutation.name}: the snippet occurs {count} times in {mutation.file} (must be exactly "
                f"once; the code drifted: update security/controls.yaml)\n--- snippet ---\n{mutation.old}"
            )
        return text.replace(mutation.old, "" if mutation.op == "delete" else mutation.new)
    return _ast_stub(text, mutation)


def _ast_stub(text: str, mutation: Mutation) -> str:
    tree = ast.parse(text)
    path = mutation.function.split(".")
    found: list[ast.FunctionDef | ast.AsyncFunctionDef] = []

    def walk(nodes: list[ast.stmt], depth: int) -> None:
        for node in nodes:
            if isinstance(node, ast.ClassDef) and depth < len(path) - 1 and node.name == path[depth]:
                walk(node.body, depth + 1)
            elif (
                isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)
                and depth == len(path) - 1
                and node.name == path[depth]
            ):
                found.append(node)

    walk(tree.body, 0)
    if len(found) != 1:
        raise ControlsError(
            f"mutation {mutation.name}: function {mutation.function} found {len(found)} times in {mutation.file}"
        )
    func = found[0]
    lines = text.splitlines(keepends=True)
    first = func.body[0]
    # Keep a docstring, replace everything after it.
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        start = first.end_lineno or first.lineno
    else:
        start = first.lineno - 1
    end = func.body[-1].end_lineno or func.body[-1].lineno
    indent = " " * (func.col_offset + 4)
    body = "".join(indent + line + "\n" for line in mutation.new.strip("\n").splitlines())
    return "".join(lines[:start]) + body + "".join(lines[end:])


def check_mutations_apply(controls: list[Control], root: Path = REPO) -> list[str]:
    problems = []
    for control in controls:
        for mutation in control.mutations:
            try:
                text = (root / mutation.file).read_text(encoding="utf-8")
                mutated = mutate(text, mutation)
                if mutated == text:
                    problems.append(f"{mutation.name}: the mutation changes nothing")
                elif mutation.file.endswith(".py"):
                    ast.parse(mutated)
            except ControlsError as exc:
                problems.append(str(exc))
            except SyntaxError as exc:
                problems.append(f"{mutation.name}: the mutated {mutation.file} is not valid Python: {exc}")
    return problems


# -- scratch copies -------------------------------------------------------------------------------------------------
def tree_files(repo: Path = REPO) -> list[str]:
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],  # noqa: S607
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(f for f in out.split("\0") if f and (repo / f).is_file())


def make_scratch(files: list[str], parent: Path) -> Path:
    scratch = Path(tempfile.mkdtemp(prefix="prove-", dir=parent))
    for rel in files:
        dest = scratch / rel
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / rel, dest)
    for name in SYMLINKED:
        if (REPO / name).exists():
            (scratch / name).symlink_to(REPO / name)
    shared = REPO / WHEEL_CACHE
    for download in sorted(shared.iterdir()) if shared.is_dir() else []:
        if (download / ".complete").is_file():
            (scratch / WHEEL_CACHE).mkdir(parents=True, exist_ok=True)
            (scratch / WHEEL_CACHE / download.name).symlink_to(download)
    # Some gates list files with git (detect-secrets): give the copy an index of its own.
    git = ["git", "-c", "init.defaultBranch=scratch", "-c", "core.hooksPath=/dev/null"]
    subprocess.run([*git, "init", "-q"], cwd=scratch, check=True)  # noqa: S603
    subprocess.run([*git, "add", "-A"], cwd=scratch, check=True)  # noqa: S603
    return scratch


def scratch_env(scratch: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("COV_CORE_", "COVERAGE_", "PYTEST_"))}
    env["PYTHONPATH"] = os.pathsep.join([str(scratch / "src"), str(scratch)])
    env["RAMPART_STATE_FILE"] = str(scratch / ".rampart-state.json")
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def assert_imports_scratch(scratch: Path, env: dict[str, str]) -> None:
    code = "import rampart, sys; sys.stdout.write(rampart.__file__)"
    out = subprocess.run(  # noqa: S603
        [str(REPO / ".venv" / "bin" / "python"), "-c", code],
        cwd=scratch,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if not out.stdout.startswith(str(scratch)):
        raise ControlsError(f"the scratch copy imports rampart from {out.stdout or out.stderr!r}, not {scratch}")


# -- running proofs --------------------------------------------------------------------------------------------------
PLUGIN = """\
import json, os
_OUT = os.environ["PROVE_CONTROLS_OUTCOMES"]
_seen = {}
def pytest_runtest_logreport(report):
    if report.failed:
        _seen[report.nodeid] = "failed" if report.when == "call" else "error"
    elif report.when == "call" or report.skipped:
        _seen.setdefault(report.nodeid, "skipped" if report.skipped else "passed")
def pytest_collectreport(report):
    if report.failed:
        _seen[report.nodeid or "<collection>"] = "error"
def pytest_sessionfinish(session, exitstatus):
    with open(_OUT, "w") as f:
        json.dump(_seen, f)
"""


@dataclass
class ProofResult:
    proof: Proof
    status: str  # failed (the mutation is caught), passed (it survived), error (could not run)
    detail: str = ""


def _outcome_for(proof: Proof, outcomes: dict[str, str]) -> str:
    mine = {n: o for n, o in outcomes.items() if n == proof.text or n.startswith((proof.text + "::", proof.text + "["))}
    if not mine:
        return "missing"
    if any(o in ("failed", "error") for o in mine.values()):
        return "failed"
    if all(o == "skipped" for o in mine.values()):
        return "skipped"
    return "passed"


def run_pytest(proofs: list[Proof], scratch: Path, env: dict[str, str]) -> list[ProofResult]:
    if not proofs:
        return []
    (scratch / "_prove_plugin.py").write_text(PLUGIN, encoding="utf-8")
    outcomes_file = scratch / "_outcomes.json"
    env = env | {"PROVE_CONTROLS_OUTCOMES": str(outcomes_file)}
    cmd = [
        str(REPO / ".venv" / "bin" / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "_prove_plugin",
        "--no-cov", "-o", "addopts=", "--strict-markers", "-W", "error::pytest.PytestUnraisableExceptionWarning",
        *[p.text for p in proofs],
    ]  # fmt: skip
    proc = subprocess.run(  # noqa: S603
        cmd, cwd=scratch, env=env, capture_output=True, text=True, timeout=PYTEST_TIMEOUT_S, check=False
    )
    tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-25:])
    try:
        outcomes = json.loads(outcomes_file.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [ProofResult(p, "error", f"pytest exited {proc.returncode} without outcomes\n{tail}") for p in proofs]
    results = []
    for proof in proofs:
        status = _outcome_for(proof, outcomes)
        if status == "missing":
            results.append(ProofResult(proof, "error", f"no test collected for {proof.text}\n{tail}"))
        elif status == "skipped":
            results.append(ProofResult(proof, "error", f"{proof.text} was skipped\n{tail}"))
        else:
            results.append(ProofResult(proof, status, tail if status == "passed" else ""))
    return results


def run_checkov(proofs: list[Proof], scratch: Path, env: dict[str, str]) -> list[ProofResult]:
    results = []
    by_dir: dict[str, list[Proof]] = {}
    for proof in proofs:
        by_dir.setdefault(proof.checkov[1], []).append(proof)
    for directory, group in by_dir.items():
        checks = sorted({p.checkov[0] for p in group})
        framework = "github_actions" if directory.startswith(".github") else "terraform"
        cmd = [
            str(REPO / ".venv-checkov" / "bin" / "checkov"), "--skip-download", "--compact", "-o", "json",
            "--framework", framework, "--external-checks-dir", str(scratch / "policies" / "checkov"),
            "-d", str(scratch / directory), "--check", ",".join(checks),
        ]  # fmt: skip
        proc = subprocess.run(cmd, cwd=scratch, env=env, capture_output=True, text=True, check=False)  # noqa: S603
        failed: set[str] = set()
        ran: set[str] = set()
        try:
            decoder, text, at, reports = json.JSONDecoder(), proc.stdout, 0, []
            while at < len(text):
                if text[at].isspace():
                    at += 1
                    continue
                document, at = decoder.raw_decode(text, at)
                reports += document if isinstance(document, list) else [document]
            for report in reports:
                for key in ("passed_checks", "failed_checks"):
                    for check in report.get("results", {}).get(key, []):
                        ran.add(check["check_id"])
                        if key == "failed_checks":
                            failed.add(check["check_id"])
        except (ValueError, KeyError, AttributeError) as exc:
            detail = f"checkov output unreadable ({exc}); exit {proc.returncode}: {proc.stderr[-1500:]}"
            results += [ProofResult(p, "error", detail) for p in group]
            continue
        for proof in group:
            check = proof.checkov[0]
            if check in failed:
                results.append(ProofResult(proof, "failed"))
            elif check in ran:
                results.append(ProofResult(proof, "passed", f"{check} still passes on {directory}"))
            else:
                results.append(ProofResult(proof, "error", f"{check} did not run on {directory}"))
    return results


def run_cmd(proofs: list[Proof], scratch: Path, env: dict[str, str]) -> list[ProofResult]:
    results = []
    for proof in proofs:
        argv = proof.text.removeprefix("cmd:").split()
        if argv and argv[0] == "python":
            argv[0] = str(REPO / ".venv" / "bin" / "python")
        proc = subprocess.run(  # noqa: S603
            argv, cwd=scratch, env=env, capture_output=True, text=True, timeout=600, check=False
        )
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-15:])
        results.append(
            ProofResult(proof, "failed" if proc.returncode else "passed", tail if not proc.returncode else "")
        )
    return results


def run_proofs(proofs: tuple[Proof, ...], scratch: Path, env: dict[str, str]) -> list[ProofResult]:
    results = run_pytest([p for p in proofs if p.kind == "pytest"], scratch, env)
    results += run_checkov([p for p in proofs if p.kind == "checkov"], scratch, env)
    results += run_cmd([p for p in proofs if p.kind == "cmd"], scratch, env)
    order = {p: i for i, p in enumerate(proofs)}
    return sorted(results, key=lambda r: order[r.proof])


@dataclass
class Outcome:
    control: Control
    mutation: Mutation | None
    verdict: str  # killed, survived, not-applied, error; baseline: ok / broken
    seconds: float
    results: list[ProofResult] = field(default_factory=list)
    detail: str = ""


def prove_mutation(control: Control, mutation: Mutation, files: list[str], parent: Path) -> Outcome:
    started = time.monotonic()
    try:
        return _prove_mutation(control, mutation, files, parent, started)
    except (OSError, subprocess.SubprocessError, ControlsError) as exc:
        return Outcome(control, mutation, "error", time.monotonic() - started, detail=f"{type(exc).__name__}: {exc}")


def _prove_mutation(control: Control, mutation: Mutation, files: list[str], parent: Path, started: float) -> Outcome:
    scratch = make_scratch(files, parent)
    try:
        target = scratch / mutation.file
        try:
            target.write_text(mutate(target.read_text(encoding="utf-8"), mutation), encoding="utf-8")
        except ControlsError as exc:
            return Outcome(control, mutation, "not-applied", time.monotonic() - started, detail=str(exc))
        env = scratch_env(scratch)
        assert_imports_scratch(scratch, env)
        results = run_proofs(mutation.proofs, scratch, env)
        if any(r.status == "error" for r in results):
            verdict = "error"
        elif all(r.status == "failed" for r in results):
            verdict = "killed"
        else:
            verdict = "survived"
        return Outcome(control, mutation, verdict, time.monotonic() - started, results)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def prove_baseline(controls: list[Control], files: list[str], parent: Path) -> Outcome:
    """Every proof passes on the unmutated copy (else a 'kill' would mean nothing)."""
    started = time.monotonic()
    scratch = make_scratch(files, parent)
    try:
        env = scratch_env(scratch)
        assert_imports_scratch(scratch, env)
        proofs = tuple(dict.fromkeys(p for c in controls for m in c.mutations for p in m.proofs))
        results = run_proofs(proofs, scratch, env)
        bad = [r for r in results if r.status != "passed"]
        verdict = "ok" if not bad else "broken"
        detail = "\n".join(f"{r.proof.text}: {r.status} {r.detail}" for r in bad)
        return Outcome(controls[0], None, verdict, time.monotonic() - started, results, detail)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


def print_table(outcomes: list[Outcome]) -> None:
    rows = [("control", "mutation", "proofs", "result", "seconds")]
    for o in outcomes:
        assert o.mutation is not None
        proofs = ", ".join(_short(r.proof.text) for r in o.results) or ", ".join(
            _short(p.text) for p in o.mutation.proofs
        )
        rows.append((o.control.id, o.mutation.name, proofs, o.verdict, f"{o.seconds:.1f}"))
    widths = [max(len(r[i]) for r in rows) for i in range(4)]
    for i, row in enumerate(rows):
        print("  ".join(cell.ljust(widths[j]) if j < 4 else cell.rjust(7) for j, cell in enumerate(row)))
        if i == 0:
            print("  ".join("-" * w for w in widths) + "  -------")


def _short(proof: str) -> str:
    if proof.startswith(("checkov:", "cmd:")):
        return proof
    file, _, rest = proof.partition("::")
    return f"{Path(file).stem}::{rest}" if rest else Path(file).name


def cmd_prove(args: argparse.Namespace) -> int:
    controls = load_controls()
    if args.only:
        unknown = set(args.only) - {c.id for c in controls} - {m.name for c in controls for m in c.mutations}
        if unknown:
            print(f"unknown control or mutation: {sorted(unknown)}", file=sys.stderr)
            return 2
        wanted = [(c, m) for c in controls for m in c.mutations if c.id in args.only or m.name in args.only]
    else:
        wanted = [(c, m) for c in controls for m in c.mutations]
    problems = check_mutations_apply(controls)
    started = time.monotonic()
    files = tree_files()
    parent = Path(tempfile.mkdtemp(prefix="rampart-prove-controls-"))
    print(f"==> [prove-controls] {len(wanted)} mutations of {len({c.id for c, _ in wanted})} controls, "
          f"{args.jobs} at a time; scratch copies under {parent}", flush=True)  # fmt: skip
    try:
        if args.baseline:
            base = prove_baseline([c for c, _ in wanted], files, parent)
            print(f"==> [prove-controls] baseline (every proof passes unmutated): {base.verdict} "
                  f"in {base.seconds:.0f}s", flush=True)  # fmt: skip
            if base.verdict != "ok":
                print(base.detail)
                return 1
        outcomes: list[Outcome] = []
        with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            futures = {pool.submit(prove_mutation, c, m, files, parent): (c, m) for c, m in wanted}
            for future in concurrent.futures.as_completed(futures):
                outcome = future.result()
                outcomes.append(outcome)
                assert outcome.mutation is not None
                print(f"    {outcome.verdict:<11} {outcome.control.id} / {outcome.mutation.name} "
                      f"({outcome.seconds:.0f}s)", flush=True)  # fmt: skip
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    order = {(c.id, m.name): i for i, (c, m) in enumerate(wanted)}
    outcomes.sort(key=lambda o: order[(o.control.id, o.mutation.name if o.mutation else "")])
    print()
    print_table(outcomes)
    bad = [o for o in outcomes if o.verdict != "killed"]
    for o in bad:
        assert o.mutation is not None
        print(f"\n--- {o.verdict}: {o.control.id} / {o.mutation.describe()}")
        if o.detail:
            print(o.detail)
        for r in o.results:
            if r.status != "failed":
                print(f"  {r.proof.text}: {r.status}\n{_indent(r.detail)}")
    killed = sum(o.verdict == "killed" for o in outcomes)
    elapsed = time.monotonic() - started
    print(f"\n==> [prove-controls] {killed}/{len(outcomes)} mutations killed in {elapsed:.0f}s")
    if problems and not args.only:
        print("\n".join(["==> [prove-controls] mutations that do not apply:", *problems]))
        return 1
    return 0 if not bad else 1


def _indent(text: str) -> str:
    return "\n".join("      " + line for line in text.splitlines()[-20:])


# -- SECURITY.md ------------------------------------------------------------------------------------------------------
def _code(text: str) -> str:
    return f"`{text}`"


def _proof_cell(proof: Proof) -> str:
    if proof.kind == "checkov":
        check, directory = proof.checkov
        return f"`{check}` (checkov on `{directory}`)"
    if proof.kind == "cmd":
        return _code(proof.text.removeprefix("cmd:"))
    return _code(proof.text)


def _evidence_cell(node: str) -> str:
    # Shown, not rerun per mutation: the emulator proofs (make iac-emulate) and the slower end-to-end ones.
    return f"{_code(node)} ({'emulator' if 'test_emulate' in node else 'not rerun per mutation'})"


def render_table(controls: list[Control]) -> str:
    lines = [
        "| id | control | implemented in | proved by | removed by (`make prove-controls`) |",
        "| --- | --- | --- | --- | --- |",
    ]
    for c in controls:
        impl = "; ".join(_code(i) for i in c.implementation)
        proofs = "; ".join([*(_proof_cell(p) for p in c.proofs), *(_evidence_cell(e) for e in c.evidence)])
        mutations = "; ".join(_code(m.name) for m in c.mutations)
        claim = c.claim.replace("|", "\\|")
        row = f"| `{c.id}` | {claim} | {impl} | {proofs} | {mutations} |"
        # Rows about secrets and keys name them next to a colon or an equals sign: detect-secrets' keyword
        # detector takes that for an assignment. The rows are generated from security/controls.yaml, which is
        # scanned itself, so the pragma hides nothing that is not checked there.
        sensitive = re.search(r"secret|key|password|token", row, re.IGNORECASE)
        lines.append(row + (" <!-- pragma: allowlist secret -->" if sensitive else ""))
    return "\n".join(lines) + "\n"


def updated_security_md(controls: list[Control], text: str) -> str:
    if TABLE_BEGIN not in text or TABLE_END not in text:
        raise ControlsError(f"SECURITY.md lacks the markers {TABLE_BEGIN!r} ... {TABLE_END!r}")
    head, rest = text.split(TABLE_BEGIN, 1)
    _, tail = rest.split(TABLE_END, 1)
    return f"{head}{TABLE_BEGIN}\n{render_table(controls)}{TABLE_END}{tail}"


def cmd_docs(args: argparse.Namespace) -> int:
    controls = load_controls()
    text = SECURITY_MD.read_text(encoding="utf-8")
    new = updated_security_md(controls, text)
    if args.check:
        if new != text:
            print("SECURITY.md's controls table is out of date: run `make security-docs`", file=sys.stderr)
            return 1
        print(f"==> [security-docs] SECURITY.md's controls table matches security/controls.yaml ({len(controls)})")
        return 0
    SECURITY_MD.write_text(new, encoding="utf-8")
    print(f"==> [security-docs] SECURITY.md: {len(controls)} controls")
    return 0


def cmd_check(_args: argparse.Namespace) -> int:
    controls = load_controls()
    problems = check_mutations_apply(controls)
    for p in problems:
        print(p, file=sys.stderr)
    mutations = sum(len(c.mutations) for c in controls)
    print(f"==> [controls] {len(controls)} controls, {mutations} mutations; {len(problems)} problem(s)")
    return 1 if problems else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    prove = sub.add_parser("prove", help="apply every mutation to a scratch copy; its proofs must fail")
    prove.add_argument("--only", nargs="+", help="control ids or mutation names")
    prove.add_argument("--jobs", type=int, default=int(os.environ.get("PROVE_JOBS", "2")))
    prove.add_argument("--baseline", action="store_true", help="first check that every proof passes unmutated")
    prove.set_defaults(func=cmd_prove)
    docs = sub.add_parser("docs", help="regenerate SECURITY.md's controls table")
    docs.add_argument("--check", action="store_true", help="only check that it is up to date")
    docs.set_defaults(func=cmd_docs)
    sub.add_parser("check", help="validate the file; every mutation applies exactly once").set_defaults(func=cmd_check)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args))
    except ControlsError as exc:
        print(f"security/controls.yaml: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
