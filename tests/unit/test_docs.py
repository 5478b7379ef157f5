"""The documents point at things that exist: every test and check named in SECURITY.md's controls table, and
every file the README and SECURITY.md link to."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SECURITY = (ROOT / "SECURITY.md").read_text(encoding="utf-8")
POLICIES = (ROOT / "policies" / "README.md").read_text(encoding="utf-8")


def _controls_rows() -> list[str]:
    section = SECURITY.split("## Controls and their proof", 1)[1].split("\n## ", 1)[0]
    rows = [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| control")]
    return [row for row in rows if not row.startswith("| ---")]


def test_the_controls_table_is_not_empty() -> None:
    assert len(_controls_rows()) >= 20


@pytest.mark.parametrize("row", _controls_rows(), ids=lambda r: r.split("|")[1].strip()[:40])
def test_every_proof_in_the_controls_table_exists(row: str) -> None:
    proof = row.split("|")[3]
    named = 0
    # tests/x.py::name and the shorthand `::other` for another test in the same file
    current: Path | None = None
    for path, name in re.findall(r"(tests/[\w/]+\.py)?(?:::(\w+))?", proof):
        if path:
            current = ROOT / path
            assert current.exists(), f"{path} does not exist"
            named += 1
        if name:
            assert current is not None
            assert re.search(rf"^def {name}\(", current.read_text(encoding="utf-8"), re.M), f"{current}::{name}"
            named += 1
    for check in re.findall(r"CKV2?_RAMPART_\d+", proof):
        assert f"`{check}`" in POLICIES, f"{check} is not a documented policy"
        named += 1
    for target in re.findall(r"`make ([\w-]+)`", proof):
        makefiles = "".join(p.read_text() for p in [ROOT / "Makefile", *(ROOT / "mk").glob("*.mk")])
        assert re.search(rf"^{re.escape(target)}:", makefiles, re.M), f"make {target}"
        named += 1
    assert named, f"row names no test, check or target: {row}"


def test_every_implementation_file_in_the_controls_table_exists() -> None:
    for row in _controls_rows():
        for path in re.findall(r"`((?:src|iac|scripts|requirements|\.github)/[^`*]+?)`", row.split("|")[2]):
            assert (ROOT / path.rstrip("/")).exists() or list(ROOT.glob(path)), path


@pytest.mark.parametrize("doc", ["README.md", "SECURITY.md", "docs/operations.md"])
def test_linked_files_exist(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    base = (ROOT / doc).parent
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (base / target).exists(), f"{doc} links to missing {target}"
