"""Every `file.md#anchor` the repository points at resolves to a heading of that file: the runbook links in the
alarm descriptions (iac/), the docs' links to each other, and any in code or workflows."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.doc_anchors import REPO, anchors, references, slug

SOURCES = sorted(
    {
        *REPO.glob("*.md"),
        *REPO.glob("docs/*.md"),
        *REPO.glob("iac/**/*.tf"),
        *REPO.glob("iac/**/*.md"),
        *REPO.glob("src/**/*.py"),
        *REPO.glob("policies/**/*.md"),
        *REPO.glob(".github/workflows/*.yml"),
    }
    - set(REPO.glob("iac/**/.terraform/**/*"))
)


def test_github_anchors() -> None:
    assert slug("`dlq-not-empty`") == "dlq-not-empty"
    assert slug("Alarms and runbooks") == "alarms-and-runbooks"
    assert slug("2. GitHub OIDC provider") == "2-github-oidc-provider"
    assert slug("The SLOs on a laptop (`rampart status`)") == "the-slos-on-a-laptop-rampart-status"
    assert slug("A [link](x.md) — here") == "a-link--here"


def test_the_runbook_links_are_found_where_they_are_built() -> None:
    monitoring = REPO / "iac" / "modules" / "monitoring" / "main.tf"
    assert monitoring in SOURCES
    # The module builds its runbook links from one local: the whole reference is checked by the emulator test.
    assert 'runbooks = "docs/operations.md"' in monitoring.read_text()


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: str(p.relative_to(REPO)))
def test_every_anchor_reference_resolves(source: Path) -> None:
    where = source.relative_to(REPO)
    for target, written, anchor in references(source):
        assert target is not None, f"{where}: {written}#{anchor} names no file"
        assert anchor in anchors(target), f"{where}: {written}#{anchor} is no heading of {target.name}"
