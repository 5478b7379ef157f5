"""The one variable that names the repository in every trusted subject (`github_repository`, root and module)
takes GitHub's name form and its immutable id form, and nothing with a wildcard. The validation's regex is read
from the Terraform code and run here (RE2 and Python agree on this subset)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

IAC = Path(__file__).resolve().parents[2] / "iac"
FILES = [IAC / "envs" / "variables.tf", IAC / "modules" / "github_oidc" / "variables.tf"]


def accepts(path: Path, value: str) -> bool:
    block = re.search(r'variable "github_repository" \{(.*?)\n\}', path.read_text(), re.DOTALL)
    assert block
    pattern = re.search(r'can\(regex\("(.*?)", var\.github_repository\)\)', block.group(1))
    assert pattern and 'contains([0, 2], length(regexall("@", var.github_repository)))' in block.group(1)
    regex = pattern.group(1).replace("\\\\", "\\")
    return re.search(regex, value) is not None and value.count("@") in (0, 2)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.parent.name)
@pytest.mark.parametrize("value", ["rampart-project/rampart", "octo-org@123456/octo-repo@456789", "o/r.js_x-1"])
def test_both_subject_forms_are_accepted(path: Path, value: str) -> None:
    assert accepts(path, value)


@pytest.mark.parametrize("path", FILES, ids=lambda p: p.parent.name)
@pytest.mark.parametrize(
    "value",
    ["o/*", "*/r", "o/r:*", "o/r*", "o@123/r", "o/r@456", "o@x/r@1", "o/r/extra", "repo:o/r", "o/r:pull_request", ""],
)
def test_wildcards_and_half_forms_are_rejected(path: Path, value: str) -> None:
    assert not accepts(path, value)
