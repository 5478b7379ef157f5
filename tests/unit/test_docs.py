"""The documents point at things that exist: every file the README and SECURITY.md link to. (SECURITY.md's
controls table is generated from security/controls.yaml: tests/unit/test_controls.py checks it.)"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("doc", ["README.md", "SECURITY.md", "docs/operations.md"])
def test_linked_files_exist(doc: str) -> None:
    text = (ROOT / doc).read_text(encoding="utf-8")
    base = (ROOT / doc).parent
    for target in re.findall(r"\]\(([^)#:]+)\)", text):
        assert (base / target).exists(), f"{doc} links to missing {target}"
