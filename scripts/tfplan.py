"""The reviewed Terraform plan, end to end: summarise it, seal it, and refuse to apply anything but it.

    summary PLAN_JSON [--out MD]         added / changed / destroyed, with IAM, KMS key policy, security group
                                         and public-access changes called out (markdown; exit 0)
    seal PLAN_FILE PLAN_JSON --commit SHA --env ENV
                                         write PLAN_FILE.manifest.json (commit, env, sha256 of the plan file,
                                         the state lineage and serial it was planned against, has_changes)
    verify PLAN_FILE --commit SHA --env ENV
                                         before any credentials: the plan file's sha256 is the sealed one, and
                                         it was made for this commit and environment
    check-state PLAN_FILE STATE_JSON     with the apply role: the state has not moved since the plan (same
                                         lineage and serial), so the plan is not stale

Standard library only: it runs before `make install` and in jobs that install nothing.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

# Resource types whose changes a reviewer must see called out, by theme.
IAM_PREFIXES = ("aws_iam_",)
KMS_TYPES = ("aws_kms_key", "aws_kms_key_policy", "aws_kms_grant", "aws_kms_alias")
SECURITY_GROUP_TYPES = (
    "aws_security_group",
    "aws_security_group_rule",
    "aws_vpc_security_group_ingress_rule",
    "aws_vpc_security_group_egress_rule",
    "aws_network_acl",
    "aws_network_acl_rule",
)
# What can open something to the internet or to other accounts.
PUBLIC_ACCESS_TYPES = (
    "aws_s3_bucket_public_access_block",
    "aws_s3_bucket_policy",
    "aws_s3_bucket_acl",
    "aws_lambda_permission",
    "aws_lambda_function_url",
    "aws_api_gateway_method",
    "aws_api_gateway_rest_api_policy",
    "aws_sqs_queue_policy",
    "aws_sns_topic_policy",
    "aws_secretsmanager_secret_policy",
    "aws_wafv2_web_acl",
    "aws_wafv2_web_acl_association",
    "aws_internet_gateway",
    "aws_route",
    "aws_eip",
)
PUBLIC_ATTRIBUTES = {"publicly_accessible", "map_public_ip_on_launch", "authorization", "api_key_required"}


def action_of(change: dict[str, Any]) -> str:
    actions = change.get("change", {}).get("actions", ["no-op"])
    if actions in (["create", "delete"], ["delete", "create"]):
        return "replace"
    if actions == ["read"]:
        return "read"
    return actions[0]


def changed_attributes(change: dict[str, Any]) -> list[str]:
    body = change.get("change", {})
    before, after = body.get("before") or {}, body.get("after") or {}
    unknown = body.get("after_unknown") or {}
    keys = set(before) | set(after) | set(unknown)
    return sorted(k for k in keys if before.get(k) != after.get(k) or unknown.get(k) is True)


def themes(change: dict[str, Any]) -> list[str]:
    kind = change["type"]
    found = []
    if kind.startswith(IAM_PREFIXES):
        found.append("IAM")
    if kind in KMS_TYPES and (kind != "aws_kms_key" or "policy" in changed_attributes(change)):
        found.append("KMS key policy")
    if kind in SECURITY_GROUP_TYPES:
        found.append("security group")
    if kind in PUBLIC_ACCESS_TYPES or PUBLIC_ATTRIBUTES & set(changed_attributes(change)):
        found.append("public access")
    return found


def summarise(plan: dict[str, Any]) -> dict[str, Any]:
    counts = {"create": 0, "update": 0, "replace": 0, "delete": 0}
    called_out: dict[str, list[str]] = {"IAM": [], "KMS key policy": [], "security group": [], "public access": []}
    lines = []
    for change in plan.get("resource_changes", []):
        if change.get("mode") == "data":
            continue
        action = action_of(change)
        if action not in counts:
            continue
        counts[action] += 1
        attributes = changed_attributes(change) if action == "update" else []
        detail = f" ({', '.join(attributes)})" if attributes else ""
        lines.append(f"{action} {change['address']}{detail}")
        for theme in themes(change):
            called_out[theme].append(f"{action} `{change['address']}`{detail}")
    outputs = sorted(
        name for name, c in (plan.get("output_changes") or {}).items() if c.get("actions", ["no-op"]) != ["no-op"]
    )
    return {
        "counts": counts,
        "called_out": called_out,
        "changes": lines,
        "outputs": outputs,
        "has_changes": any(counts.values()) or bool(outputs),
    }


def markdown(summary: dict[str, Any], title: str) -> str:
    c = summary["counts"]
    out = [
        f"### {title}",
        "",
        f"**{c['create']} to add, {c['update']} to change, {c['replace']} to replace, {c['delete']} to destroy**"
        + (f"; outputs changing: {', '.join(summary['outputs'])}" if summary["outputs"] else ""),
        "",
    ]
    for theme, items in summary["called_out"].items():
        if items:
            out += [f"#### ⚠ {theme} changes ({len(items)})", "", *[f"- {i}" for i in items], ""]
    if summary["changes"]:
        out += ["<details><summary>every change</summary>", "", "```", *summary["changes"], "```", "", "</details>"]
    else:
        out.append("No changes.")
    return "\n".join(out) + "\n"


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def planned_state(plan_file: Path) -> dict[str, Any]:
    """Lineage and serial of the state the plan was computed against (the `tfstate` entry of the plan file)."""
    with zipfile.ZipFile(plan_file) as archive:
        if "tfstate" not in archive.namelist():
            return {"lineage": None, "serial": None}
        state = json.loads(archive.read("tfstate") or b"{}")
    return {"lineage": state.get("lineage"), "serial": state.get("serial")}


def manifest_path(plan_file: Path) -> Path:
    return plan_file.with_name(plan_file.name + ".manifest.json")


def fail(message: str) -> int:
    print(f"==> [tfplan] REFUSED: {message}", file=sys.stderr)
    return 1


def cmd_summary(args: argparse.Namespace) -> int:
    summary = summarise(json.loads(Path(args.plan_json).read_text()))
    text = markdown(summary, args.title)
    if args.out:
        Path(args.out).write_text(text)
    sys.stdout.write(text)
    return 0


def cmd_seal(args: argparse.Namespace) -> int:
    plan_file = Path(args.plan_file)
    summary = summarise(json.loads(Path(args.plan_json).read_text()))
    manifest = {
        "commit": args.commit,
        "env": args.env,
        "plan_file": plan_file.name,
        "sha256": sha256(plan_file),
        "state": planned_state(plan_file),
        "has_changes": summary["has_changes"],
        "counts": summary["counts"],
    }
    manifest_path(plan_file).write_text(json.dumps(manifest, indent=1, sort_keys=True) + "\n")
    print(
        f"==> [tfplan] sealed {plan_file.name}: sha256 {manifest['sha256']}, commit {args.commit}, "
        f"state {manifest['state']['lineage']}#{manifest['state']['serial']}, has_changes={summary['has_changes']}"
    )
    return 0


def load_manifest(plan_file: Path) -> dict[str, Any]:
    path = manifest_path(plan_file)
    if not path.is_file() or not plan_file.is_file():
        raise FileNotFoundError(f"{plan_file} or its manifest {path.name} is missing")
    manifest: dict[str, Any] = json.loads(path.read_text())
    return manifest


def cmd_verify(args: argparse.Namespace) -> int:
    plan_file = Path(args.plan_file)
    try:
        manifest = load_manifest(plan_file)
    except FileNotFoundError as error:
        return fail(str(error))
    if sha256(plan_file) != manifest.get("sha256"):
        return fail(f"{plan_file.name} does not match its sealed sha256: not the plan that was reviewed")
    if manifest.get("commit") != args.commit:
        return fail(f"the plan was made for commit {manifest.get('commit')}, this is {args.commit}")
    if manifest.get("env") != args.env:
        return fail(f"the plan was made for environment {manifest.get('env')}, this is {args.env}")
    print(f"==> [tfplan] {plan_file.name}: sha256 and commit {args.commit} verified")
    return 0


def cmd_check_state(args: argparse.Namespace) -> int:
    plan_file = Path(args.plan_file)
    manifest = load_manifest(plan_file)
    text = Path(args.state_json).read_text().strip()
    current = json.loads(text) if text else {}
    now = {"lineage": current.get("lineage"), "serial": current.get("serial")}
    planned = manifest["state"]
    if planned != planned_state(plan_file):
        return fail("the manifest's state does not match the plan file's")
    if now != planned:
        return fail(
            f"stale plan: the state moved from {planned['lineage']}#{planned['serial']} to "
            f"{now['lineage']}#{now['serial']} since it was planned; plan again"
        )
    print(f"==> [tfplan] state unchanged since the plan ({now['lineage']}#{now['serial']})")
    return 0


def main(argv: Iterable[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("summary")
    p.add_argument("plan_json")
    p.add_argument("--out")
    p.add_argument("--title", default="terraform plan")
    p.set_defaults(func=cmd_summary)
    p = sub.add_parser("seal")
    p.add_argument("plan_file")
    p.add_argument("plan_json")
    p.add_argument("--commit", required=True)
    p.add_argument("--env", required=True)
    p.set_defaults(func=cmd_seal)
    p = sub.add_parser("verify")
    p.add_argument("plan_file")
    p.add_argument("--commit", required=True)
    p.add_argument("--env", required=True)
    p.set_defaults(func=cmd_verify)
    p = sub.add_parser("check-state")
    p.add_argument("plan_file")
    p.add_argument("state_json")
    p.set_defaults(func=cmd_check_state)
    args = parser.parse_args(list(argv) if argv is not None else None)
    result: int = args.func(args)
    return result


if __name__ == "__main__":
    sys.exit(main())
