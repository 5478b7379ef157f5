"""Every `file.md#anchor` the repository points at resolves to a heading of that file: the runbook links in the
alarm descriptions (iac/), the docs' links to each other, and any in code or workflows."""

from __future__ import annotations

import re
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


def _map_keys(text: str, local: str) -> list[str]:
    block = text.split(f"  {local} = {{\n", 1)[1].split("\n  }\n", 1)[0]
    return re.findall(r"^    ([a-z0-9-]+) = \{$", block, re.MULTILINE)


def test_every_alarm_of_the_monitoring_module_has_a_runbook() -> None:
    # The descriptions link "docs/operations.md#<key>" (threshold alarms) and "#<slo>-burn" (burn-rate alarms).
    text = (REPO / "iac" / "modules" / "monitoring" / "main.tf").read_text()
    assert (
        "Runbook: ${local.runbooks}#${each.key}" in text and "Runbook: ${local.runbooks}#${each.value.slo}-burn" in text
    )
    thresholds, slos = _map_keys(text, "threshold_alarms"), _map_keys(text, "slos")
    assert len(thresholds) >= 10 and slos == ["api-latency", "api-availability", "ingest-freshness"]
    headings = anchors(REPO / "docs" / "operations.md")
    for anchor in [*thresholds, *(f"{slo}-burn" for slo in slos)]:
        assert anchor in headings, f"docs/operations.md has no runbook heading for #{anchor}"


def test_the_documents_do_link_to_anchors() -> None:
    assert sum(len(references(source)) for source in SOURCES) >= 5  # otherwise the check above proves nothing
