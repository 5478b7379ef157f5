"""`make gate` reads its gates from ci.yml; `make secrets` fails on a secret missing from the audited baseline."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rampart_gate", REPO / "scripts" / "gate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["rampart_gate"] = module
    spec.loader.exec_module(module)
    return module


gate = _load()


def test_gate_runs_exactly_the_make_targets_of_ci_yml() -> None:
    targets = gate.gate_targets()
    assert targets[:3] == ["lint", "typecheck", "checkov-install"]
    assert {"pytest-all", "checkov", "checkov-actions", "bandit", "audit", "zizmor", "iac-validate", "secrets"} <= set(
        targets
    )
    assert len(targets) == len(set(targets))


def test_gate_refuses_a_workflow_step_that_is_not_a_make_target(tmp_path: Path) -> None:
    workflow = tmp_path / "ci.yml"
    workflow.write_text("jobs:\n  x:\n    steps:\n      - run: pytest -q\n", encoding="utf-8")
    with pytest.raises(SystemExit):
        gate.gate_targets(workflow)


def test_gate_counts_findings_from_tool_output() -> None:
    assert gate.FINDINGS["checkov"]("Passed checks: 3, Failed checks: 2, Skipped checks: 0") == 2
    assert gate.FINDINGS["audit"]("==> [audit] findings: 4; FAIL in 1.0s") == 4
    assert gate.FINDINGS["zizmor"]("No findings to report. Good job!") == 0
    assert gate.FINDINGS["typecheck"]("Found 3 errors in 2 files (checked 9 source files)") == 3


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    git(tmp_path, "init", "-q")
    (tmp_path / "app.py").write_text('print("hello")\n', encoding="utf-8")
    git(tmp_path, "add", "app.py")
    return tmp_path


def baseline(repo: Path) -> Path:
    scan = subprocess.run(
        [str(Path(sys.executable).parent / "detect-secrets"), "scan"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=True,
    )
    path = repo / ".secrets.baseline"
    path.write_text(scan.stdout, encoding="utf-8")
    return path


# A high-entropy string assigned to a secret-looking name: detect-secrets' keyword and entropy plugins fire.
LEAK = 'aws_secret_access_key = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYzExampleKeyZ9"  # pragma: allowlist secret\n'
LEAK_LINE = LEAK.split("  #", maxsplit=1)[0] + "\n"  # written without the pragma


def test_secrets_gate_passes_a_clean_tree_and_fails_a_new_secret(repo: Path) -> None:
    path = baseline(repo)
    assert gate.check_secrets(repo, path) == 0
    (repo / "config.py").write_text(LEAK_LINE, encoding="utf-8")
    git(repo, "add", "config.py")
    assert gate.check_secrets(repo, path) == 1
    assert json.loads(path.read_text(encoding="utf-8"))["results"] == {}  # the gate never edits the baseline


def test_secrets_gate_requires_every_baseline_entry_audited_as_false_positive(repo: Path) -> None:
    (repo / "config.py").write_text(LEAK_LINE, encoding="utf-8")
    git(repo, "add", "config.py")
    path = baseline(repo)
    assert gate.check_secrets(repo, path) == 1  # listed but not audited
    data = json.loads(path.read_text(encoding="utf-8"))
    for entries in data["results"].values():
        for entry in entries:
            entry["is_secret"] = False
    path.write_text(json.dumps(data), encoding="utf-8")
    assert gate.check_secrets(repo, path) == 0
    (repo / "config.py").write_text("\n\n" + LEAK_LINE, encoding="utf-8")  # only moved
    assert gate.check_secrets(repo, path) == 0


def test_the_committed_baseline_is_fully_audited() -> None:
    data = json.loads((REPO / ".secrets.baseline").read_text(encoding="utf-8"))
    assert all(e.get("is_secret") is False for entries in data["results"].values() for e in entries)
