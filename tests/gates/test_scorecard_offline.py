"""`make scorecard-offline`: the repository passes, and each weakening Scorecard would flag fails (fixtures below)."""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.gates.source_tree import REPO

sys.path.insert(0, str(REPO / "scripts"))
import scorecard_offline

COPIED = [".github", "requirements", "mk", "Makefile", "SECURITY.md", "LICENSE", "scripts/lock.sh"]
CHECKOUT = "actions/checkout@3d3c42e5aac5ba805825da76410c181273ba90b1 # v7.0.1"


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    for name in COPIED:
        source, target = REPO / name, root / name
        target.parent.mkdir(parents=True, exist_ok=True)
        if source.is_dir():
            shutil.copytree(source, target)
        else:
            shutil.copyfile(source, target)
    return root


def workflow(root: Path, name: str, text: str) -> None:
    (root / ".github" / "workflows" / name).write_text(text, encoding="utf-8")


def job(steps: str, permissions: str = "contents: read", on: str = "pull_request:") -> str:
    return f"""name: fixture
on:
  {on}
permissions: {{}}
jobs:
  build:
    runs-on: ubuntu-24.04
    permissions:
      {permissions}
    steps:
{steps}"""


def edit_ruleset(root: Path, change: Callable[[dict], None]) -> None:
    path = root / ".github" / "rulesets" / "main.json"
    data = json.loads(path.read_text())
    change(data)
    path.write_text(json.dumps(data))


def drop_rule(kind: str) -> Callable[[dict], None]:
    return lambda d: d.update(rules=[r for r in d["rules"] if r["type"] != kind])


def no_code_owner_review(data: dict) -> None:
    next(r for r in data["rules"] if r["type"] == "pull_request")["parameters"]["require_code_owner_review"] = False


FIXTURES: dict[str, tuple[Callable[[Path], None], str, str]] = {
    "tag-pinned action": (
        lambda r: workflow(r, "x.yml", job("      - uses: actions/checkout@v4\n")),
        "pinned-dependencies", "actions/checkout@v4 is not pinned to a full commit SHA",
    ),
    "SHA without version comment": (
        lambda r: workflow(r, "x.yml", job(f"      - uses: {CHECKOUT.split(' #', maxsplit=1)[0]}\n")),
        "pinned-dependencies", "has no `# vX.Y.Z` version comment",
    ),
    "lock line without hash": (
        lambda r: (r / "requirements" / "extra.txt").write_text("requests==2.32.0\n"),
        "pinned-dependencies", "extra.txt: requests==2.32.0 has no --hash",
    ),
    "pip install without hashes": (
        lambda r: (r / "mk" / "extra.mk").write_text("x:\n\t@pip install requests\n"),
        "pinned-dependencies", "extra.mk:2: pip install without --require-hashes",
    ),
    "download piped into a shell": (
        lambda r: workflow(r, "x.yml", job("      - run: curl -sSL https://get.example | bash\n")),
        "pinned-dependencies", "a download piped into a shell",
    ),
    "no top-level permissions": (
        lambda r: workflow(r, "x.yml", job("      - run: make lint\n").replace("permissions: {}\n", "")),
        "token-permissions", "no top-level permissions",
    ),
    "top-level write-all": (
        lambda r: workflow(r, "x.yml", job("      - run: make lint\n").replace("{}", "write-all")),
        "token-permissions", "top-level permissions grant write",
    ),
    "job writes contents": (
        lambda r: workflow(r, "x.yml", job("      - run: make lint\n", permissions="contents: write")),
        "token-permissions", "`contents: write` is never needed",
    ),
    "security-events without SARIF": (
        lambda r: workflow(r, "x.yml", job("      - run: make lint\n", permissions="security-events: write")),
        "token-permissions", "`security-events: write` but no step that needs it",
    ),
    "script injection": (
        lambda r: workflow(r, "x.yml", job('      - run: echo "${{ github.event.pull_request.title }}"\n')),
        "dangerous-workflow", "untrusted github.event.pull_request.title",
    ),
    "pull_request_target checks out the PR": (
        lambda r: workflow(r, "x.yml", job(
            f"      - uses: {CHECKOUT}\n        with:\n          ref: ${{{{ github.event.pull_request.head.sha }}}}\n",
            on="pull_request_target:")),
        "dangerous-workflow", "pull_request_target checks out the pull request",
    ),
    "no ruleset": (
        lambda r: shutil.rmtree(r / ".github" / "rulesets"),
        "branch-protection", "no ruleset protects the default branch",
    ),
    "bypass actors": (
        lambda r: edit_ruleset(r, lambda d: d.update(bypass_actors=[{"actor_id": 5, "actor_type": "RepositoryRole"}])),
        "branch-protection", "bypass actors can merge around the gate",
    ),
    "no code-owner review": (
        lambda r: edit_ruleset(r, no_code_owner_review),
        "branch-protection", "code-owner review not required",
    ),
    "force push allowed": (
        lambda r: edit_ruleset(r, drop_rule("non_fast_forward")),
        "branch-protection", "force pushes of the branch allowed",
    ),
    "no CODEOWNERS": (
        lambda r: (r / ".github" / "CODEOWNERS").unlink(),
        "branch-protection", "no .github/CODEOWNERS",
    ),
    "no SAST": (
        lambda r: (r / ".github" / "workflows" / "codeql.yml").unlink(),
        "project-files", "no SAST workflow",
    ),
    "no security policy": (
        lambda r: (r / "SECURITY.md").unlink(),
        "project-files", "no SECURITY.md",
    ),
}  # fmt: skip


def test_the_repository_passes(repo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert scorecard_offline.main(["--root", str(repo)]) == 0
    out = capsys.readouterr().out
    assert out.count(" pass") == len(scorecard_offline.CHECKS) and "findings: 0; PASS" in out


@pytest.mark.parametrize("fixture", sorted(FIXTURES))
def test_each_weakening_fails(repo: Path, fixture: str, capsys: pytest.CaptureFixture[str]) -> None:
    weaken, check, message = FIXTURES[fixture]
    weaken(repo)
    assert scorecard_offline.main(["--root", str(repo)]) == 1
    out = capsys.readouterr().out
    failing = [line.split()[0] for line in out.splitlines() if "FAIL (" in line]
    assert failing == [check], out
    assert message in out, out
