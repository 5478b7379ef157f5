"""The `make gate` summary: rows for the supply-chain gates, and the date of the advisory data `make audit` used."""

from __future__ import annotations

import importlib.util
import os
import sys
from pathlib import Path
from types import ModuleType

import pytest

REPO = Path(__file__).resolve().parents[2]


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("rampart_gate_rows", REPO / "scripts" / "gate.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    sys.modules["rampart_gate_rows"] = module
    spec.loader.exec_module(module)
    return module


gate = _load()


def test_supply_chain_rows_count_findings() -> None:
    assert gate.FINDINGS["iam-lint"]("==> [iam-lint] findings: 3; suppressed (with reasons): 33; FAIL") == 3
    assert gate.FINDINGS["scorecard-offline"]("==> [scorecard-offline] findings: 0; PASS") == 0
    two_failures = "==> [sbom] FAIL: a.cdx.json: x\n==> [sbom] FAIL: a.cdx.json: y\n==> [sbom] b.cdx.json: lists"
    assert gate.FINDINGS["sbom-check"](two_failures) == 2
    assert gate.FINDINGS["verify-artifacts"]("==> [verify-artifacts] FAIL: api.zip: sha256 ...") == 1


def snapshot(tmp_path: Path, text: str | None) -> Path:
    vulns = tmp_path / "advisory-db" / "vulns"
    vulns.mkdir(parents=True)
    if text is not None:
        (vulns.parent / "SNAPSHOT.txt").write_text(text, encoding="utf-8")
    return vulns


def test_advisory_data_offline_is_the_snapshot_date(tmp_path: Path) -> None:
    vulns = snapshot(tmp_path, "source: pypa/advisory-database at commit abc (2024-10-10), OSV format\n")
    assert gate.advisory_data({"ADVISORY_DB": str(vulns)}).startswith("snapshot of 2024-10-10 (")
    assert gate.advisory_data({"RAMPART_ADVISORY_DB": str(vulns)}).startswith("snapshot of 2024-10-10")


def test_advisory_data_without_a_snapshot_file_says_so(tmp_path: Path) -> None:
    assert gate.advisory_data({"ADVISORY_DB": str(snapshot(tmp_path, None))}).startswith("unknown date (no ")


def test_advisory_data_on_github_is_live() -> None:
    assert gate.advisory_data({"GITHUB_ACTIONS": "true", "ADVISORY_DB": "/nowhere"}).startswith("live (api.osv.dev")


FAKE_MAKE = """#!/usr/bin/env bash
echo "==> [audit] pip-audit --strict against a stand-in"
echo "==> [audit] findings: 0; PASS in 0.1s"
"""


def test_the_gate_summary_prints_the_advisory_date(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    (bindir / "make").write_text(FAKE_MAKE)
    (bindir / "make").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bindir}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    monkeypatch.setenv("ADVISORY_DB", str(snapshot(tmp_path, "pypa/advisory-database (2025-03-01)\n")))
    assert gate.run_gate(["audit"]) == 0
    out = capsys.readouterr().out
    assert "advisory data (make audit): snapshot of 2025-03-01" in out
