"""`make iam-lint` on the stack this session applied: parliament finds nothing unsuppressed in any policy document
of the dev root (identity, trust, key and resource policies as applied). Runs in `make iac-emulate` with the
session's `stack`, so it can never be skipped for want of a state (tests/gates/test_iam_lint.py proves the linter
itself on small states)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scripts import iam_lint

pytestmark = pytest.mark.emulate


def test_the_applied_state_has_no_unsuppressed_finding(
    stack: dict[str, Any], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps(stack["state"]), encoding="utf-8")
    assert iam_lint.run(state, iam_lint.SUPPRESSIONS, None) == 0, capsys.readouterr().out
    out = capsys.readouterr().out
    assert "PASS" in out and "findings: 0" in out, out
