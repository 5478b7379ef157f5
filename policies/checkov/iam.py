"""IAM invariants, on JSON policies and on aws_iam_policy_document data sources alike.

CKV_RAMPART_11: no Allow statement grants the action "*" (or "*:*") or uses NotAction.
CKV_RAMPART_12: rds-db:connect is granted only on a specific DB user ARN (dbuser:<resource-id>/<user>).
CKV_RAMPART_13: web-identity (OIDC) trust policies pin `aud` to sts.amazonaws.com and `sub` to exact subjects of
                one repository (name form or GitHub's immutable id form), with no wildcard anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from rampart_policy_lib import (
    CheckCategories,
    CheckResult,
    as_list,
    policy_document_statements,
    policy_statements,
    severity,
)

from checkov.terraform.checks.data.base_check import BaseDataCheck
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

Statements = list[dict[str, Any]]
Evaluator = Callable[[Statements], CheckResult]

POLICY_RESOURCES = ["aws_iam_policy", "aws_iam_role_policy", "aws_iam_user_policy", "aws_iam_group_policy"]
WEB_IDENTITY = "sts:assumerolewithwebidentity"


def _actions_match(actions: list[str], wanted: str) -> bool:
    """Whether an action list grants `wanted` (IAM globbing, case-insensitive)."""
    for action in actions:
        pattern = re.escape(action.lower()).replace(r"\*", ".*").replace(r"\?", ".")
        if re.fullmatch(pattern, wanted):
            return True
    return False


def no_wildcard_action(statements: Statements) -> CheckResult:
    if not statements:
        return CheckResult.UNKNOWN
    for st in statements:
        if st["Effect"].lower() != "allow":
            continue
        if st["NotAction"] or any(a.strip() in {"*", "*:*"} for a in st["Action"]):
            return CheckResult.FAILED
    return CheckResult.PASSED


# arn:<partition>:rds-db:<region>:<account>:dbuser:<db-resource-id>/<db-user>, no wildcard in the last two.
_DBUSER = re.compile(r"^arn:[^*]+:rds-db:[^*]*:[^*]*:dbuser:([^*/]+)/([^*/]+)$")


def rds_connect_specific_user(statements: Statements) -> CheckResult:
    relevant = [
        st for st in statements if st["Effect"].lower() == "allow" and _actions_match(st["Action"], "rds-db:connect")
    ]
    if not relevant:
        return CheckResult.UNKNOWN
    for st in relevant:
        if not st["Resource"] or not all(_DBUSER.match(r.strip()) for r in st["Resource"]):
            return CheckResult.FAILED
    return CheckResult.PASSED


# repo:<R>:<context>, exactly: <R> is owner/name, GitHub's immutable form owner@<owner_id>/name@<repo_id>, or
# ${var.x} when the repository is a variable (itself validated); <context> is concrete (pull_request,
# environment:<name>, ref:refs/heads/<branch>, ...). No `*` or `?` anywhere: StringLike would make them patterns.
_OWNER = r"[A-Za-z0-9][A-Za-z0-9-]{0,38}"
_NAME = r"[A-Za-z0-9_.-]{1,100}"
_REPO_SUB = re.compile(rf"^repo:(\$\{{[^}}*?]+\}}|{_OWNER}/{_NAME}|{_OWNER}@[0-9]+/{_NAME}@[0-9]+):[^*?\s]+$")


def _condition_values(st: dict[str, Any], tests: set[str], suffix: str) -> list[str] | None:
    found: list[str] | None = None
    for test, pairs in st["Condition"].items():
        if test not in tests:
            continue
        for variable, values in pairs.items():
            if variable.endswith(suffix):
                found = (found or []) + [str(v) for v in as_list(values)]
    return found


def oidc_trust_pinned(statements: Statements) -> CheckResult:
    relevant = [
        st for st in statements if st["Effect"].lower() == "allow" and _actions_match(st["Action"], WEB_IDENTITY)
    ]
    if not relevant:
        return CheckResult.UNKNOWN
    for st in relevant:
        aud = _condition_values(st, {"StringEquals"}, ":aud")
        if not aud or any(v != "sts.amazonaws.com" for v in aud):
            return CheckResult.FAILED
        sub = _condition_values(st, {"StringEquals", "StringLike"}, ":sub")
        if not sub or not all(_REPO_SUB.match(v) for v in sub):
            return CheckResult.FAILED
        # Any other operator on `sub` (ForAnyValue:StringLike, StringNotEquals, ...) widens or inverts it.
        other = _condition_values(st, {t for t in st["Condition"] if t not in {"StringEquals", "StringLike"}}, ":sub")
        if other:
            return CheckResult.FAILED
    return CheckResult.PASSED


def _resource_statements(conf: dict[str, Any], attributes: tuple[str, ...]) -> Statements:
    statements: Statements = []
    for attribute in attributes:
        if attribute != "inline_policy":
            statements += policy_statements(conf.get(attribute))
        if attribute == "inline_policy":
            for block in as_list(conf.get("inline_policy")):
                if isinstance(block, dict):
                    statements += policy_statements(block.get("policy"))
    return statements


class _PolicyResourceCheck(BaseResourceCheck):
    def __init__(
        self,
        *,
        name: str,
        id: str,
        level: str,
        evaluator: Evaluator,
        attributes: tuple[str, ...],
        resources: list[str],
    ) -> None:
        super().__init__(name=name, id=id, categories=[CheckCategories.IAM], supported_resources=resources)
        self.severity = severity(level)
        self._evaluator = evaluator
        self._attributes = attributes

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        self.evaluated_keys = list(self._attributes)
        return self._evaluator(_resource_statements(conf, self._attributes))


class _PolicyDocumentCheck(BaseDataCheck):
    def __init__(self, *, name: str, id: str, level: str, evaluator: Evaluator) -> None:
        super().__init__(name=name, id=id, categories=[CheckCategories.IAM], supported_data=["aws_iam_policy_document"])
        self.severity = severity(level)
        self._evaluator = evaluator

    def scan_data_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        self.evaluated_keys = ["statement"]
        return self._evaluator(policy_document_statements(conf))


NAME_11 = 'Rampart: IAM policies grant no "*" action and no Allow+NotAction'
NAME_12 = "Rampart: rds-db:connect is granted only on a specific DB user (dbuser:<resource-id>/<user>)"
NAME_13 = "Rampart: OIDC trust policies pin aud (sts.amazonaws.com) and a repository-scoped sub"

PERMISSION_ATTRS = ("policy", "inline_policy")
PERMISSION_RESOURCES = [*POLICY_RESOURCES, "aws_iam_role"]

wildcard_resource = _PolicyResourceCheck(
    name=NAME_11,
    id="CKV_RAMPART_11",
    level="HIGH",
    evaluator=no_wildcard_action,
    attributes=PERMISSION_ATTRS,
    resources=PERMISSION_RESOURCES,
)
wildcard_document = _PolicyDocumentCheck(name=NAME_11, id="CKV_RAMPART_11", level="HIGH", evaluator=no_wildcard_action)
rds_resource = _PolicyResourceCheck(
    name=NAME_12,
    id="CKV_RAMPART_12",
    level="HIGH",
    evaluator=rds_connect_specific_user,
    attributes=PERMISSION_ATTRS,
    resources=PERMISSION_RESOURCES,
)
rds_document = _PolicyDocumentCheck(
    name=NAME_12, id="CKV_RAMPART_12", level="HIGH", evaluator=rds_connect_specific_user
)
oidc_resource = _PolicyResourceCheck(
    name=NAME_13,
    id="CKV_RAMPART_13",
    level="CRITICAL",
    evaluator=oidc_trust_pinned,
    attributes=("assume_role_policy",),
    resources=["aws_iam_role"],
)
oidc_document = _PolicyDocumentCheck(name=NAME_13, id="CKV_RAMPART_13", level="CRITICAL", evaluator=oidc_trust_pinned)
