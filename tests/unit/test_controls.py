"""security/controls.yaml is well-formed, SECURITY.md's table is generated from it, every proof it names exists,
and every mutation applies to the current tree exactly once (so a drifted snippet fails here, loudly)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from scripts import prove_controls as pc

ROOT = Path(__file__).resolve().parents[2]
CONTROLS = pc.load_controls()
POLICIES = (ROOT / "policies" / "README.md").read_text(encoding="utf-8")


def test_the_security_md_table_is_generated_from_the_controls_file() -> None:
    text = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
    assert pc.updated_security_md(CONTROLS, text) == text, "run `make security-docs`"


def test_every_control_has_a_mutation_and_a_proof_that_reruns() -> None:
    assert len(CONTROLS) >= 55  # every control of SECURITY.md (an accidental deletion fails here)
    for control in CONTROLS:
        assert control.mutations and control.proofs, control.id


def test_every_mutation_applies_exactly_once_to_the_current_tree() -> None:
    assert pc.check_mutations_apply(CONTROLS) == []


def test_every_proof_of_a_control_is_run_by_one_of_its_mutations() -> None:
    """A proof no mutation runs was never seen to fail: it belongs under `evidence`."""
    for control in CONTROLS:
        run = {p for m in control.mutations for p in m.proofs}
        assert [p.text for p in control.proofs if p not in run] == [], control.id


def _test_names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    names = {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}
    for cls in (n for n in tree.body if isinstance(n, ast.ClassDef)):
        names |= {f"{cls.name}::{m.name}" for m in cls.body if isinstance(m, ast.FunctionDef)} | {cls.name}
    return names


@pytest.mark.parametrize("control", CONTROLS, ids=lambda c: c.id)
def test_every_proof_and_evidence_exists(control: pc.Control) -> None:
    tests = [p.text for p in control.proofs if p.kind == "pytest"] + list(control.evidence)
    for node in tests:
        file, _, name = node.partition("::")
        assert (ROOT / file).is_file(), node
        if name:
            assert re.sub(r"\[.*\]$", "", name) in _test_names(ROOT / file), f"{node}: no such test"
    for proof in control.proofs:
        if proof.kind == "checkov":
            check, directory = proof.checkov
            assert (ROOT / directory).is_dir(), proof.text
            if "RAMPART" in check:
                assert f"`{check}`" in POLICIES, f"{check} is not a documented Rampart policy"
            else:
                assert re.fullmatch(r"CKV2?_AWS_\d+", check), proof.text
        if proof.kind == "cmd":
            argv = proof.text.removeprefix("cmd:").split()
            assert argv[0] in ("python", "make"), proof.text
            if argv[0] == "python" and argv[1] != "-m":
                assert (ROOT / argv[1]).is_file(), proof.text


def test_proofs_from_the_mutation_engine_classify_outcomes() -> None:
    proof = pc.Proof("tests/x.py::test_a")
    outcomes = {"tests/x.py::test_a[1]": "passed", "tests/x.py::test_a[2]": "failed", "tests/x.py::test_ab": "passed"}
    assert pc._outcome_for(proof, outcomes) == "failed"
    assert pc._outcome_for(pc.Proof("tests/x.py::test_ab"), outcomes) == "passed"
    assert pc._outcome_for(pc.Proof("tests/x.py::test_c"), outcomes) == "missing"


def test_a_snippet_that_occurs_twice_or_never_does_not_apply() -> None:
    twice = pc.Mutation("m", "replace", "f.py", old="x = 1\n", new="x = 2\n")
    with pytest.raises(pc.ControlsError, match="2 times"):
        pc.mutate("x = 1\nx = 1\n", twice)
    with pytest.raises(pc.ControlsError, match="0 times"):
        pc.mutate("y = 1\n", twice)


def test_ast_stub_replaces_a_body_and_keeps_the_docstring() -> None:
    source = 'class A:\n    def f(self):\n        """Doc."""\n        return 1\n\n\ndef f():\n    return 2\n'
    mutated = pc.mutate(source, pc.Mutation("m", "ast_stub", "f.py", function="A.f", new="return 3"))
    assert mutated == 'class A:\n    def f(self):\n        """Doc."""\n        return 3\n\n\ndef f():\n    return 2\n'
    with pytest.raises(pc.ControlsError, match="found 0 times"):
        pc.mutate(source, pc.Mutation("m", "ast_stub", "f.py", function="B.f", new="return 3"))
