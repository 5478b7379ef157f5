"""The threat model as code (security/threat_model.py, pytm): the committed diagram source and STRIDE tables are
what the model generates, and every flow's threats map to controls that exist in security/controls.yaml."""

from __future__ import annotations

from pathlib import Path

from scripts import prove_controls
from security import threat_model

ROOT = Path(__file__).resolve().parents[2]


def test_the_committed_dot_and_stride_tables_are_up_to_date() -> None:
    # Graphviz is not needed here: the .dot is compared, the PNG is rendered by `make threat-model`.
    assert (ROOT / "docs" / "threat-model.dot").read_text(encoding="utf-8") == threat_model.render_dot()
    assert (ROOT / "docs" / "threat-model.md").read_text(encoding="utf-8") == threat_model.render_markdown()
    assert (ROOT / "docs" / "threat-model.png").stat().st_size > 10_000


def test_every_flow_maps_each_stride_threat_to_existing_controls() -> None:
    controls = {c.id for c in prove_controls.load_controls()}
    assert threat_model.problems(controls) == []


def test_the_model_has_the_flows_and_boundaries_of_the_architecture() -> None:
    _, flows = threat_model.build()
    pairs = {(f.source, f.sink) for f in flows}
    assert ("Producer", "SNS topic (CMK)") in pairs
    assert ("ingest Lambda", "RDS PostgreSQL") in pairs and ("API Lambda", "RDS PostgreSQL") in pairs
    assert ("API client", "WAFv2 web ACL") in pairs
    assert ("GitHub Actions job (plan / apply / deploy)", "STS (OIDC federation)") in pairs
    assert ("rampart keys (CLI)", "Secrets Manager (client keys, cursor key)") in pairs


def test_an_unknown_control_or_a_missing_category_is_reported() -> None:
    controls = {c.id for c in prove_controls.load_controls()} - {"rds-iam-auth"}
    assert any("rds-iam-auth is not a control" in p for p in threat_model.problems(controls))


def test_most_risks_are_mitigated_by_proved_controls() -> None:
    _, flows = threat_model.build()
    entries = [e for f in flows for es in f.threats.values() for e in es]
    accepted = [e for e in entries if e.startswith(threat_model.ACCEPTED)]
    assert len(accepted) < len(entries) / 3, "most of the threat model must rest on proved controls"
