"""Federated CI identities, judged across the resources of one Terraform directory (a role's trust policy, its
inline and attached policies live in separate resources, and checkov hands a Python check one resource at a
time, so these checks read the role's directory themselves with checkov's HCL parser).

CKV_RAMPART_17: a role trusted by pull requests (an OIDC `sub` of `…:pull_request`, or a pattern that matches
                one) may not read secret values or API key values, decrypt except through S3 (the state), write
                any object (state or its lock), or carry a broad managed policy (ReadOnlyAccess, …).
CKV_RAMPART_18: no two roles of a directory trust the same OIDC `sub`: a job could otherwise pick the
                stronger role by asking for its ARN.
"""

from __future__ import annotations

import ast
import re
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

import hcl2
from rampart_policy_lib import (
    CheckCategories,
    CheckResult,
    as_list,
    first,
    policy_document_statements,
    policy_statements,
    severity,
)

from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

Statements = list[dict[str, Any]]
WEB_IDENTITY = re.compile(r"^sts:(\*|assumerolewithwebidentity|assumerole\*)$", re.IGNORECASE)
BROAD_MANAGED = (
    "ReadOnlyAccess",
    "ViewOnlyAccess",
    "AdministratorAccess",
    "PowerUserAccess",
    "SecretsManager",
    "SecurityAudit",
    "ReadOnly",
)
# Actions a pull request's role must never be granted, on any resource (a secret is secret whichever it is; any
# object write can plant a state lock), and API Gateway reads that can reach a key value (GET /apikeys...).
SECRET_ACTIONS = [
    "secretsmanager:GetSecretValue",
    "secretsmanager:BatchGetSecretValue",
    "ssm:GetParameter",
    "ssm:GetParameters",
    "ssm:GetParametersByPath",
    "s3:PutObject",
    "s3:DeleteObject",
]
API_KEY_PATH = "/apikeys/abc123"


def _scan_roots() -> list[Path]:
    """The directories checkov was asked to scan (-d / --directory), to find a scanned file's directory."""
    roots, args = [], sys.argv[1:]
    for index, arg in enumerate(args):
        if arg in {"-d", "--directory"} and index + 1 < len(args):
            roots.append(Path(args[index + 1]).resolve())
        elif arg.startswith("--directory="):
            roots.append(Path(arg.split("=", 1)[1]).resolve())
    return roots or [Path.cwd()]


def _directory_of(scanned_file: str) -> Path | None:
    candidate = Path(scanned_file)
    if candidate.is_absolute() and candidate.is_file():
        return candidate.parent
    for root in _scan_roots():
        path = root / scanned_file.lstrip("/")
        if path.is_file():
            return path.parent
    return None


@lru_cache(maxsize=64)
def _blocks(directory: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """{"aws_iam_role": {name: conf}, "data.aws_iam_policy_document": {...}, ...} of one directory."""
    found: dict[str, dict[str, dict[str, Any]]] = {}
    for path in sorted(directory.glob("*.tf")):
        if path.name.endswith("_override.tf"):
            continue
        try:
            parsed = hcl2.loads(path.read_text())
        except Exception:  # noqa: BLE001 - an unparsable file is checkov's own error to report
            parsed = {}
        for kind, prefix in (("resource", ""), ("data", "data.")):
            for block in parsed.get(kind, []):
                for rtype, named in block.items():
                    for name, conf in named.items():
                        found.setdefault(prefix + rtype, {})[name] = conf
    return found


def _document_statements(conf: dict[str, Any]) -> Statements:
    statements = policy_document_statements(conf)
    for dynamic in as_list(conf.get("dynamic")):
        if isinstance(dynamic, dict) and isinstance(dynamic.get("statement"), dict):
            statements += policy_document_statements({"statement": dynamic["statement"].get("content")})
    return statements


_DOC_REF = re.compile(r"^\$\{data\.aws_iam_policy_document\.([A-Za-z0-9_-]+)\.json\}$")
OPAQUE = {
    "Effect": "Allow",
    "Action": ["*"],
    "NotAction": [],
    "Resource": ["*"],
    "Principal": {},
    "Condition": {},
    "Opaque": True,
}


def _policy(value: Any, blocks: dict[str, dict[str, dict[str, Any]]]) -> Statements:
    """Statements of a policy attribute: a policy document data source, JSON, or jsonencode(...). A jsonencode
    the parser leaves unevaluated yields its `sub` values only (for trusts) and counts as granting anything
    otherwise, so a pull request's role must keep its permissions where they can be read."""
    value = first(value)
    if isinstance(value, str):
        text = value.strip()
        match = _DOC_REF.match(text)
        if match:
            conf = blocks.get("data.aws_iam_policy_document", {}).get(match.group(1))
            return _document_statements(conf) if conf else [OPAQUE]
        if text.startswith("${jsonencode(") and text.endswith(")}"):
            try:  # the parser renders a literal object as a Python literal
                return policy_statements(ast.literal_eval(text[len("${jsonencode(") : -2]))
            except (ValueError, SyntaxError):
                return [OPAQUE]
    statements = policy_statements(value)
    return statements if statements or value in (None, "") else [OPAQUE]


def _refers_to(value: Any, role: str) -> bool:
    return bool(re.fullmatch(rf"\$\{{aws_iam_role\.{re.escape(role)}\.(id|name|arn)\}}", str(first(value)).strip()))


def _role_parts(role: str, blocks: dict[str, dict[str, dict[str, Any]]]) -> tuple[Statements, Statements, list[str]]:
    """(trust statements, permission statements, managed policy ARNs) of aws_iam_role.<role>."""
    conf = blocks.get("aws_iam_role", {}).get(role, {})
    trust = _policy(conf.get("assume_role_policy"), blocks)
    permissions: Statements = []
    for inline in as_list(conf.get("inline_policy")):
        if isinstance(inline, dict):
            permissions += _policy(inline.get("policy"), blocks)
    managed = [str(a) for a in as_list(conf.get("managed_policy_arns"))]
    for rtype in ("aws_iam_role_policy",):
        for policy in blocks.get(rtype, {}).values():
            if _refers_to(policy.get("role"), role):
                permissions += _policy(policy.get("policy"), blocks)
    for attachment in blocks.get("aws_iam_role_policy_attachment", {}).values():
        if _refers_to(attachment.get("role"), role):
            arn = str(first(attachment.get("policy_arn")))
            managed.append(arn)
            match = re.fullmatch(r"\$\{aws_iam_policy\.([A-Za-z0-9_-]+)\.arn\}", arn.strip())
            if match:
                permissions += _policy(blocks.get("aws_iam_policy", {}).get(match.group(1), {}).get("policy"), blocks)
    return trust, permissions, managed


def _subjects(trust: Statements) -> list[str]:
    subjects = []
    for st in trust:
        if st["Effect"].lower() != "allow" or not any(WEB_IDENTITY.match(a.strip()) for a in st["Action"]):
            continue
        for test, pairs in st["Condition"].items():
            if "String" in test:
                subjects += [str(v) for k, values in pairs.items() if k.endswith(":sub") for v in values]
    return subjects


def _glob(pattern: str, value: str) -> bool:
    # Unresolved references (${...}) may become anything: they count as wildcards.
    regex = ""
    for part in re.split(r"(\$\{[^}]*\}|\*|\?)", pattern):
        if part.startswith("${") or part == "*":
            regex += ".*"
        elif part == "?":
            regex += "."
        else:
            regex += re.escape(part)
    return re.fullmatch(regex, value, re.IGNORECASE) is not None


def _trusts_pull_requests(trust: Statements) -> bool:
    return any(_glob(sub, "repo:owner/name:pull_request") or sub.endswith(":pull_request") for sub in _subjects(trust))


def _api_key_path(resource: str) -> bool:
    path = resource.split("::", 1)[1] if "::" in resource else resource
    return _glob(path, API_KEY_PATH)


def _granted(permissions: Statements, action: str, on: Any = None) -> bool:
    """Some Allow grants `action` on a resource `on` accepts (any, by default), and no unconditional Deny of it
    covers every resource (Resource "*", or the same resources)."""

    def actions(st: dict[str, Any]) -> bool:
        return any(_glob(a, action) for a in st["Action"])

    def resources(st: dict[str, Any]) -> bool:
        return on is None or any(on(r) for r in st["Resource"] or ["*"])

    allows = [st for st in permissions if st["Effect"].lower() == "allow" and actions(st) and resources(st)]
    denies = [st for st in permissions if st["Effect"].lower() == "deny" and not st["Condition"] and actions(st)]
    for allow in allows:
        if not any("*" in deny["Resource"] or set(allow["Resource"]) <= set(deny["Resource"]) for deny in denies):
            return True
    return False


def _decrypts_outside_s3(permissions: Statements) -> bool:
    for st in permissions:
        if st["Effect"].lower() != "allow" or not any(_glob(a, "kms:Decrypt") for a in st["Action"]):
            continue
        via = [
            str(v)
            for test, pairs in st["Condition"].items()
            if test == "StringEquals"
            for k, values in pairs.items()
            if k == "kms:ViaService"
            for v in values
        ]
        if not via or not all(v.startswith("s3.") for v in via):
            return True
    return False


def pull_request_role_reads_nothing_secret(blocks: dict[str, Any], role: str) -> CheckResult:
    trust, permissions, managed = _role_parts(role, blocks)
    if not _subjects(trust):
        return CheckResult.UNKNOWN
    if not _trusts_pull_requests(trust):
        return CheckResult.PASSED
    if any(name in arn for arn in managed for name in BROAD_MANAGED):
        return CheckResult.FAILED
    if any(_granted(permissions, action) for action in SECRET_ACTIONS):
        return CheckResult.FAILED
    if _granted(permissions, "apigateway:GET", on=_api_key_path):
        return CheckResult.FAILED
    return CheckResult.FAILED if _decrypts_outside_s3(permissions) else CheckResult.PASSED


def no_shared_subject(blocks: dict[str, Any], role: str) -> CheckResult:
    mine = set(_subjects(_role_parts(role, blocks)[0]))
    if not mine:
        return CheckResult.UNKNOWN
    for other in blocks.get("aws_iam_role", {}):
        if other != role and mine & set(_subjects(_role_parts(other, blocks)[0])):
            return CheckResult.FAILED
    return CheckResult.PASSED


class _DirectoryRoleCheck(BaseResourceCheck):
    def __init__(self, *, name: str, id: str, level: str, evaluator: Any) -> None:
        super().__init__(name=name, id=id, categories=[CheckCategories.IAM], supported_resources=["aws_iam_role"])
        self.severity = severity(level)
        self._evaluator = evaluator
        self._directory: Path | None = None
        self._role = ""

    def run(
        self, scanned_file: str, entity_configuration: Any, entity_name: str, entity_type: str, skip_info: Any
    ) -> Any:
        self._directory = _directory_of(scanned_file)
        self._role = entity_name.rsplit(".", 1)[-1]
        return super().run(scanned_file, entity_configuration, entity_name, entity_type, skip_info)

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        self.evaluated_keys = ["assume_role_policy"]
        if self._directory is None:
            return CheckResult.UNKNOWN
        result: CheckResult = self._evaluator(_blocks(self._directory), self._role)
        return result


pull_request_role_check = _DirectoryRoleCheck(
    name="Rampart: a role trusted by pull requests reads no secret, key value or other key, and writes no state",
    id="CKV_RAMPART_17",
    level="CRITICAL",
    evaluator=pull_request_role_reads_nothing_secret,
)
shared_subject_check = _DirectoryRoleCheck(
    name="Rampart: no two roles trust the same OIDC subject",
    id="CKV_RAMPART_18",
    level="HIGH",
    evaluator=no_shared_subject,
)
