"""`make test` fails when line coverage of src/rampart falls under the floor (scripts/test_summary.py)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from scripts import test_summary


def _run(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, covered: int, statements: int) -> int:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pytest.out").write_text("==== 10 passed, 1 skipped in 3.00s ====\n", encoding="utf-8")
    totals = {"covered_lines": covered, "num_statements": statements, "covered_branches": 1, "num_branches": 2}
    (tmp_path / "coverage.json").write_text(json.dumps({"totals": totals}), encoding="utf-8")
    return test_summary.main(str(tmp_path / "pytest.out"), str(tmp_path / "coverage.json"))


def test_at_the_floor_passes_and_says_so(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, monkeypatch, 900, 1000) == 0
    out = capsys.readouterr().out
    assert "tests: 11 (10 passed, 0 failed, 1 skipped)" in out
    assert "line coverage of src/rampart: 90.0% (900/1000 lines, floor 90%)" in out
    assert (tmp_path / "build" / "test-summary.txt").read_text(encoding="utf-8").strip() == out.strip()


def test_under_the_floor_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _run(tmp_path, monkeypatch, 899, 1000) == 1
    assert "under the 90% floor" in capsys.readouterr().err
