"""`make iam-lint`: parliament over every IAM policy document the Terraform renders.

Input: the state the emulator applied (build/terraform/emulated-state.json, `terraform show -json`, written by
the `stack` fixture of tests/iac/conftest.py during `make iac-emulate`). Every document is linted once (same
content, several addresses: linted once, reported under the applied resource):
  - identity: aws_iam_role_policy / aws_iam_policy / aws_iam_user_policy / aws_iam_group_policy `policy`,
    inline policies of aws_iam_role;
  - trust: aws_iam_role `assume_role_policy`;
  - key: aws_kms_key `policy`;
  - resource: bucket, queue, topic, secret, log and REST API policies (the `*_policy` resources);
  - rendered: every data.aws_iam_policy_document `json` that is not applied as it is or as part of an applied
    document (a key policy's service statements), e.g. the artifact bucket policy the emulator leaves out.
Computed attributes that echo the service's own default (aws_sns_topic.policy, aws_vpc_endpoint.policy when
unset) are not documents this code writes and are skipped.

Zero findings, or each one suppressed in iac/iam-lint-suppressions.yaml (policy address glob + finding ->
reason, listed in SECURITY.md). A suppression without a reason, or one that no longer matches anything, fails.
This applies nothing: without the state file it fails and says to run `make iac-emulate` first; a state older
than a file under iac/ fails too (it would lint yesterday's policies).
"""

from __future__ import annotations

import argparse
import fnmatch
import importlib.resources
import json
import re
import sys
import types
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
STATE = ROOT / "build" / "terraform" / "emulated-state.json"
SUPPRESSIONS = ROOT / "iac" / "iam-lint-suppressions.yaml"
IAC = ROOT / "iac"

# (resource type, attribute) -> kind, for managed resources: the attributes that carry a document we author.
AUTHORED: dict[tuple[str, str], str] = {
    ("aws_iam_role", "assume_role_policy"): "trust",
    ("aws_iam_role_policy", "policy"): "identity",
    ("aws_iam_policy", "policy"): "identity",
    ("aws_iam_user_policy", "policy"): "identity",
    ("aws_iam_group_policy", "policy"): "identity",
    ("aws_kms_key", "policy"): "key",
    ("aws_s3_bucket_policy", "policy"): "resource",
    ("aws_sqs_queue_policy", "policy"): "resource",
    ("aws_sns_topic_policy", "policy"): "resource",
    ("aws_secretsmanager_secret_policy", "policy"): "resource",
    ("aws_cloudwatch_log_resource_policy", "policy_document"): "resource",
    ("aws_api_gateway_rest_api_policy", "policy"): "resource",
    ("aws_ecr_repository_policy", "policy"): "resource",
    ("aws_lambda_layer_version_permission", "policy"): "resource",
}
KIND_ORDER = {"identity": 0, "trust": 1, "key": 2, "resource": 3, "rendered": 4}


def load_parliament() -> Any:
    """parliament 1.6.4 (the latest) imports pkg_resources for two file paths; setuptools >= 81 dropped that
    module. The stand-in below provides exactly that one function from the standard library."""
    if "pkg_resources" not in sys.modules:
        try:
            import pkg_resources  # noqa: F401, PLC0415
        except ImportError:
            shim = types.ModuleType("pkg_resources")
            shim.resource_filename = lambda package, name: str(importlib.resources.files(package) / name)  # type: ignore[attr-defined]
            sys.modules["pkg_resources"] = shim
    import parliament  # noqa: PLC0415

    return parliament


@dataclass
class Document:
    text: str  # canonical JSON
    kind: str
    addresses: list[str] = field(default_factory=list)

    @property
    def primary(self) -> str:
        return self.addresses[0]


@dataclass(frozen=True)
class Finding:
    address: str
    kind: str
    issue: str
    detail: str


@dataclass
class Suppression:
    policy: str
    finding: str
    reason: str
    detail: str = ""
    used: int = 0

    def matches(self, document: Document, finding: Finding) -> bool:
        if finding.issue != self.finding:
            return False
        if self.detail and not re.search(self.detail, finding.detail):
            return False
        return any(fnmatch.fnmatchcase(address, self.policy) for address in document.addresses)


def _resources(module: dict[str, Any]) -> list[dict[str, Any]]:
    found = list(module.get("resources") or [])
    for child in module.get("child_modules") or []:
        found += _resources(child)
    return found


def _canonical(text: str) -> str | None:
    try:
        doc = json.loads(text)
    except (TypeError, ValueError):
        return None
    if not isinstance(doc, dict) or "Statement" not in doc:
        return None
    return json.dumps(doc, sort_keys=True, separators=(",", ":"))


def documents(state: dict[str, Any]) -> list[Document]:
    """Every policy document in a `terraform show -json` state, once per distinct content."""
    found: dict[str, Document] = {}

    def add(text: Any, kind: str, address: str) -> None:
        canonical = _canonical(text) if isinstance(text, str) else None
        if canonical is None:
            return
        document = found.setdefault(canonical, Document(canonical, kind))
        if KIND_ORDER[kind] < KIND_ORDER[document.kind]:
            document.kind = kind
            document.addresses.insert(0, address)  # report under the applied resource
        else:
            document.addresses.append(address)

    resources = _resources((state.get("values") or {}).get("root_module") or {})
    for resource in sorted(resources, key=lambda r: r["address"]):
        values = resource.get("values") or {}
        if resource.get("mode") == "data":
            if resource.get("type") == "aws_iam_policy_document":
                add(values.get("json"), "rendered", resource["address"])
            continue
        for (rtype, attribute), kind in AUTHORED.items():
            if resource.get("type") == rtype:
                add(values.get(attribute), kind, f"{resource['address']}.{attribute}")
        if resource.get("type") == "aws_iam_role":
            for inline in values.get("inline_policy") or []:
                add(inline.get("policy"), "identity", f"{resource['address']}.inline_policy[{inline.get('name')}]")
    applied = [d for d in found.values() if d.kind != "rendered"]
    kept = [d for d in found.values() if d.kind != "rendered" or not _covered(d, applied)]
    return sorted(kept, key=lambda d: (KIND_ORDER[d.kind], d.primary))


def _statements(document: Document) -> set[str]:
    statements = json.loads(document.text)["Statement"]
    statements = statements if isinstance(statements, list) else [statements]
    return {json.dumps(s, sort_keys=True) for s in statements}


def _covered(fragment: Document, applied: list[Document]) -> bool:
    """A rendered document whose every statement is part of one applied document (a key policy's service
    statements, merged by source_policy_documents) is linted as part of that document."""
    mine = _statements(fragment)
    return any(mine <= _statements(d) for d in applied)


def lint(docs: list[Document]) -> list[tuple[Document, Finding]]:
    parliament = load_parliament()
    results = []
    for document in docs:
        policy = parliament.analyze_policy_string(document.text, include_community_auditors=False)
        for finding in policy.findings:
            detail = finding.detail if isinstance(finding.detail, str) else json.dumps(finding.detail, default=str)
            results.append((document, Finding(document.primary, document.kind, finding.issue, detail or "")))
    return results


def load_suppressions(path: Path) -> list[Suppression]:
    if not path.exists():
        return []
    data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    entries = data.get("suppressions") or []
    suppressions = []
    for number, entry in enumerate(entries, 1):
        missing = [key for key in ("policy", "finding", "reason") if not str(entry.get(key) or "").strip()]
        if missing:
            raise SystemExit(f"{path}: suppression {number} lacks {', '.join(missing)} (every one needs a reason)")
        suppressions.append(
            Suppression(entry["policy"], entry["finding"], " ".join(entry["reason"].split()), entry.get("detail", ""))
        )
    return suppressions


def stale_inputs(state_path: Path, iac: Path) -> list[Path]:
    written = state_path.stat().st_mtime
    inputs = [p for p in iac.rglob("*") if p.suffix in (".tf", ".tfvars") and ".terraform" not in p.parts]
    return sorted(p for p in inputs if p.is_file() and p.stat().st_mtime > written)


def run(state_path: Path, suppressions_path: Path, iac: Path | None) -> int:
    if not state_path.is_file():
        print(
            f"==> [iam-lint] FAIL: no applied state at {state_path}. `make iac-emulate` writes it (the emulator "
            "applies the dev root); iam-lint applies nothing itself. Run `make iac-emulate iam-lint`.",
            file=sys.stderr,
        )
        return 2
    if iac is not None:
        newer = stale_inputs(state_path, iac)
        if newer:
            names = ", ".join(str(p.relative_to(iac.parent)) for p in newer[:3])
            print(
                f"==> [iam-lint] FAIL: {state_path} is older than {names}: run `make iac-emulate` again",
                file=sys.stderr,
            )
            return 2
    state = json.loads(state_path.read_text(encoding="utf-8"))
    docs = documents(state)
    if not docs:
        print(f"==> [iam-lint] FAIL: {state_path} holds no policy document (an empty or destroyed state?)")
        return 2
    suppressions = load_suppressions(suppressions_path)
    open_findings: list[Finding] = []
    suppressed = 0
    for document, finding in lint(docs):
        rule = next((s for s in suppressions if s.matches(document, finding)), None)
        if rule is None:
            open_findings.append(finding)
        else:
            rule.used += 1
            suppressed += 1
    kinds = {k: sum(1 for d in docs if d.kind == k) for k in KIND_ORDER}
    summary = ", ".join(f"{k} {n}" for k, n in kinds.items() if n)
    print(f"==> [iam-lint] parliament over {len(docs)} policy documents ({summary}) from {state_path}")
    for finding in open_findings:
        print(f"    {finding.address} [{finding.kind}]: {finding.issue}: {finding.detail[:300]}")
    unused = [s for s in suppressions if not s.used]
    for rule in unused:
        print(f"    stale suppression in {suppressions_path.name}: {rule.policy} {rule.finding} matches nothing")
    total = len(open_findings) + len(unused)
    verdict = "PASS" if total == 0 else "FAIL"
    print(f"==> [iam-lint] findings: {total}; suppressed (with reasons): {suppressed}; {verdict}")
    return 1 if total else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--state", type=Path, default=STATE, help="terraform show -json of the applied state")
    parser.add_argument("--suppressions", type=Path, default=SUPPRESSIONS)
    parser.add_argument("--iac", type=Path, default=IAC, help="fail when a .tf file here is newer than the state")
    parser.add_argument("--no-staleness-check", action="store_true")
    args = parser.parse_args(argv)
    return run(args.state, args.suppressions, None if args.no_staleness_check else args.iac)


if __name__ == "__main__":
    raise SystemExit(main())
