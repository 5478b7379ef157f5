"""Rampart's threat model as code (pytm): the flows and trust boundaries of docs/architecture, each flow's STRIDE
threats mapped to the control ids of security/controls.yaml.

    python security/threat_model.py            # writes docs/threat-model.dot and docs/threat-model.md
    python security/threat_model.py --check    # fails when either is out of date (make test, via pytest)
    make threat-model                          # both, then renders docs/threat-model.png with Graphviz

tests/unit/test_threat_model.py checks that the committed files are up to date and that every flow has every
STRIDE category mapped to controls that exist (or to an accepted risk with its reason).
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pytm import TM, Actor, Boundary, Dataflow, Datastore, ExternalEntity, Lambda, Process

REPO = Path(__file__).resolve().parents[1]
DOT = REPO / "docs" / "threat-model.dot"
MARKDOWN = REPO / "docs" / "threat-model.md"
STRIDE = {
    "S": "Spoofing",
    "T": "Tampering",
    "R": "Repudiation",
    "I": "Information disclosure",
    "D": "Denial of service",
    "E": "Elevation of privilege",
}
ACCEPTED = "accepted:"


@dataclass(frozen=True)
class Flow:
    """One data flow of the model and, per STRIDE category, the controls (ids) that mitigate its threats, or
    ``accepted: <reason>`` where the risk is accepted or owned outside this repository."""

    name: str
    source: str
    sink: str
    protocol: str
    threats: dict[str, tuple[str, ...]]


def build() -> tuple[TM, list[Flow]]:
    TM.reset()
    tm = TM("Rampart", description="Ingest -> store -> serve on AWS; deployed from GitHub Actions through OIDC.")
    tm.isOrdered = True
    internet = Boundary("Internet")
    github = Boundary("GitHub (Actions runners)")
    aws_edge = Boundary("AWS regional edge (WAF, API Gateway)")
    aws_managed = Boundary("AWS managed services (SNS, SQS, STS, Secrets Manager)")
    vpc = Boundary("VPC private subnets (Lambdas, RDS)")
    operator_host = Boundary("Operator workstation")

    producer = ExternalEntity("Producer")
    producer.inBoundary = internet
    client = ExternalEntity("API client")
    client.inBoundary = internet
    operator = Actor("Operator")
    operator.inBoundary = operator_host
    keys_cli = Process("rampart keys (CLI)")
    keys_cli.inBoundary = operator_host
    actions = ExternalEntity("GitHub Actions job (plan / apply / deploy)")
    actions.inBoundary = github

    topic = Process("SNS topic (CMK)")
    queue = Datastore("SQS queue + DLQ (CMK)")
    sts = Process("STS (OIDC federation)")
    secrets = Datastore("Secrets Manager (client keys, cursor key)")
    for element in (topic, queue, sts, secrets):
        element.inBoundary = aws_managed
    waf = Process("WAFv2 web ACL")
    gateway = Process("API Gateway REST (API keys, usage plans)")
    for element in (waf, gateway):
        element.inBoundary = aws_edge
    ingest = Lambda("ingest Lambda")
    api = Lambda("API Lambda")
    database = Datastore("RDS PostgreSQL")
    for element in (ingest, api, database):
        element.inBoundary = vpc

    everything = [producer, client, operator, keys_cli, actions, topic, queue, sts, secrets, waf, gateway]
    everything += [ingest, api, database]
    elements = {e.name: e for e in everything}
    flows = [
        Flow("publish events", "Producer", "SNS topic (CMK)", "HTTPS (SigV4)", {
            "S": ("queue-accepts-only-the-topic",),
            "T": ("messaging-cmk", "strict-event-schema"),
            "R": ("accepted: SNS/SQS data events in CloudTrail belong to the account baseline",),
            "I": ("messaging-cmk",),
            "D": ("poison-dead-lettered-with-reason", "dlq-redrive"),
            "E": ("strict-event-schema", "parameterised-sql"),
        }),
        Flow("fan out to the queue", "SNS topic (CMK)", "SQS queue + DLQ (CMK)", "AWS internal", {
            "S": ("queue-accepts-only-the-topic",),
            "T": ("messaging-cmk",),
            "R": ("accepted: SNS/SQS data events in CloudTrail belong to the account baseline",),
            "I": ("messaging-cmk",),
            "D": ("dlq-redrive", "alarms-reach-someone"),
            "E": ("queue-accepts-only-the-topic",),
        }),
        Flow("poll a batch", "SQS queue + DLQ (CMK)", "ingest Lambda", "event source mapping", {
            "S": ("lambda-roles-least-privilege",),
            "T": ("strict-event-schema",),
            "R": ("poison-dead-lettered-with-reason", "dead-letters-remember"),
            "I": ("no-secret-in-logs",),
            "D": ("poison-dead-lettered-with-reason", "nothing-lost-on-db-outage", "dead-letters-remember"),
            "E": ("strict-event-schema", "lambda-roles-least-privilege"),
        }),
        Flow("store events", "ingest Lambda", "RDS PostgreSQL", "PostgreSQL over TLS (IAM token)", {
            "S": ("rds-iam-auth", "db-client-verify-full", "iam-token-renewal"),
            "T": ("db-roles-least-privilege", "rds-encrypted-tls-forced", "canonical-values-stored", "database-checks"),
            "R": ("idempotent-insert", "poison-dead-lettered-with-reason"),
            "I": ("rds-encrypted-tls-forced", "rds-private", "no-secret-in-logs", "no-payload-in-database-logs"),
            "D": ("nothing-lost-on-db-outage", "idempotent-insert", "no-deadlock-between-batches"),
            "E": ("parameterised-sql", "db-roles-least-privilege"),
        }),
        Flow("call the API", "API client", "WAFv2 web ACL", "HTTPS", {
            "S": ("api-key-required",),
            "T": ("tamper-evident-cursors", "cursor-key-rotation", "api-input-validation"),
            "R": ("accepted: API Gateway access logs carry apiKeyId (evidence, not a proved control)",),
            "I": ("api-security-headers", "gateway-responses-security-headers", "no-internals-in-errors"),
            "D": ("waf-rate-rule", "usage-plan-throttle-quota", "api-bounded-answers"),
            "E": ("api-input-validation", "parameterised-sql"),
        }),
        Flow("forward allowed requests", "WAFv2 web ACL", "API Gateway REST (API keys, usage plans)", "AWS internal", {
            "S": ("api-key-required",),
            "T": ("api-input-validation",),
            "R": ("accepted: API Gateway access logs with apiKeyId",),
            "I": ("gateway-responses-security-headers",),
            "D": ("usage-plan-throttle-quota", "waf-rate-rule"),
            "E": ("api-key-required",),
        }),
        Flow("invoke the API function", "API Gateway REST (API keys, usage plans)", "API Lambda", "Lambda proxy", {
            "S": ("api-key-required", "code-signing-enforced"),
            "T": ("api-input-validation", "tamper-evident-cursors"),
            "R": ("accepted: request ids in the error envelope and the logs tie a response to a request",),
            "I": ("no-internals-in-errors", "api-security-headers", "no-secret-in-logs"),
            "D": ("usage-plan-throttle-quota", "api-bounded-answers", "cursor-key-rotation"),
            "E": ("api-input-validation",),
        }),
        Flow("read events", "API Lambda", "RDS PostgreSQL", "PostgreSQL over TLS (IAM token)", {
            "S": ("rds-iam-auth", "db-client-verify-full", "iam-token-renewal"),
            "T": ("db-roles-least-privilege",),
            "R": ("accepted: reads are not audited row by row; the API role cannot change anything",),
            "I": ("rds-private", "rds-encrypted-tls-forced", "db-roles-least-privilege"),
            "D": ("api-input-validation", "no-internals-in-errors", "api-bounded-answers"),
            "E": ("parameterised-sql", "db-roles-least-privilege"),
        }),
        Flow("assume a role (plan / apply / deploy)", "GitHub Actions job (plan / apply / deploy)",
             "STS (OIDC federation)", "HTTPS (OIDC token)", {
            "S": ("oidc-trust-pinned",),
            "T": ("hardened-workflows", "hash-pinned-dependencies", "reproducible-packages", "code-signing-enforced",
                  "sealed-plan-applied", "credentials-last", "sbom-matches-the-zip", "artifacts-match-the-manifest",
                  "verify-build-from-scratch"),
            "R": ("artifact-access-logged",
                  "accepted: CloudTrail records the role session; GitHub environments record approvals"),
            "I": ("hardened-workflows", "plan-role-reads-nothing-secret", "no-secret-in-repo-or-state"),
            "D": ("ordered-deploy-path",
                  "accepted: a failed deploy is rolled back by the smoke test (scripts/deploy_functions.sh)"),
            "E": ("hardened-workflows", "oidc-trust-pinned", "deploy-role-scoped", "ordered-deploy-path",
                  "governance-as-code"),
        }),
        Flow("issue, rotate, revoke client keys", "rampart keys (CLI)", "API Gateway REST (API keys, usage plans)",
             "HTTPS (operator credentials)", {
            "S": ("accepted: the operator's own AWS credentials and MFA belong to the account baseline",),
            "T": ("client-keys-lifecycle",),
            "R": ("accepted: CloudTrail records key management calls",),
            "I": ("no-secret-in-repo-or-state", "no-secret-in-logs"),
            "D": ("usage-plan-throttle-quota", "client-keys-lifecycle"),
            "E": ("accepted: the operator role is outside this repository",),
        }),
        Flow("store client key secrets", "rampart keys (CLI)", "Secrets Manager (client keys, cursor key)",
             "HTTPS (operator credentials)", {
            "S": ("accepted: the operator's own AWS credentials and MFA belong to the account baseline",),
            "T": ("accepted: Secrets Manager versions every value; the key's CMK policy names who may write",),
            "R": ("accepted: CloudTrail records secret reads and writes",),
            "I": ("no-secret-in-repo-or-state", "no-secret-in-logs"),
            "D": ("accepted: a lost secret is reissued with rampart keys rotate",),
            "E": ("accepted: the operator role is outside this repository",),
        }),
        Flow("run rampart keys", "Operator", "rampart keys (CLI)", "local process", {
            "S": ("accepted: the operator's workstation is outside this repository",),
            "T": ("hash-pinned-dependencies",),
            "R": ("accepted: CloudTrail records the calls the CLI makes",),
            "I": ("no-secret-in-logs",),
            "D": ("accepted: a local tool",),
            "E": ("accepted: the operator's workstation is outside this repository",),
        }),
    ]  # fmt: skip
    for flow in flows:
        df = Dataflow(elements[flow.source], elements[flow.sink], flow.name)
        df.protocol = flow.protocol
    return tm, flows


def render_dot() -> str:
    tm, _ = build()
    dot = str(tm.dfd())
    # Portable output: pytm points at its own icons by absolute path; keep only the file name (`make threat-model`
    # renders with -Gimagepath=<pytm's images folder>).
    dot = re.sub(r'image = "[^"]*/images/([^"/]+)"', r'image = "\1"', dot)
    # Boundary labels are HTML-like, where a line break is <br/>, not \n.
    dot = re.sub(
        r"label = <<i>(.*?)</i>>", lambda m: "label = <<i>" + m.group(1).replace("\\n", "<br/>") + "</i>>", dot
    )
    return dot.rstrip() + "\n"


def render_markdown() -> str:
    _, flows = build()
    lines = [
        "# Threat model: STRIDE per data flow",
        "",
        "Generated by `security/threat_model.py` (pytm) — do not edit; run `make threat-model`. Each flow of the",
        "data-flow diagram ([threat-model.png](threat-model.png), source [threat-model.dot](threat-model.dot))",
        "lists, per STRIDE category, the controls of [security/controls.yaml](../security/controls.yaml) that",
        "mitigate it (each proved by `make prove-controls`), or the risk accepted and why.",
        "",
    ]
    for flow in flows:
        lines += [f"## {flow.source} → {flow.sink}: {flow.name}", "", f"Protocol: {flow.protocol}.", ""]
        lines += ["| threat | mitigated by |", "| --- | --- |"]
        for letter, category in STRIDE.items():
            cells = [f"`{c}`" if not c.startswith(ACCEPTED) else f"*{c}*" for c in flow.threats.get(letter, ())]
            lines.append(f"| {category} | {'; '.join(cells)} |")
        lines.append("")
    return "\n".join(lines)


def problems(control_ids: set[str]) -> list[str]:
    """Every flow covers every STRIDE category; each names controls that exist, or an accepted risk with a reason."""
    _, flows = build()
    found = []
    for flow in flows:
        for letter, category in STRIDE.items():
            entries = flow.threats.get(letter, ())
            if not entries:
                found.append(f"{flow.name}: no mitigation or accepted risk for {category}")
            for entry in entries:
                if entry.startswith(ACCEPTED):
                    if len(entry.removeprefix(ACCEPTED).strip()) < 10:
                        found.append(f"{flow.name}/{letter}: an accepted risk needs its reason")
                elif entry not in control_ids:
                    found.append(f"{flow.name}/{letter}: {entry} is not a control in security/controls.yaml")
        if all(e.startswith(ACCEPTED) for entries in flow.threats.values() for e in entries):
            found.append(f"{flow.name}: no control at all")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="fail when docs/threat-model.{dot,md} are out of date")
    args = parser.parse_args(argv)
    outputs = {DOT: render_dot(), MARKDOWN: render_markdown()}
    stale = [p for p, text in outputs.items() if not p.is_file() or p.read_text(encoding="utf-8") != text]
    if args.check:
        for path in stale:
            print(f"{path.relative_to(REPO)} is out of date: run `make threat-model`", file=sys.stderr)
        return 1 if stale else 0
    for path, text in outputs.items():
        path.write_text(text, encoding="utf-8")
        print(f"==> [threat-model] {path.relative_to(REPO)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
