"""Helpers shared by Rampart's checkov checks: value unwrapping and IAM policy normalisation.

checkov hands Terraform attributes over wrapped in lists (``{"policy": [{...}]}``), and IAM policies
arrive either as JSON (``jsonencode(...)``, heredoc) or as ``aws_iam_policy_document`` blocks. Every check
works on one normalised form: a list of statements ``{"Effect", "Action", "NotAction", "Resource",
"Principal", "Condition"}`` with list values.
"""

from __future__ import annotations

import json
from typing import Any

from checkov.common.bridgecrew.severities import BcSeverities, Severities
from checkov.common.models.enums import CheckCategories, CheckResult

__all__ = [
    "BcSeverities",
    "CheckCategories",
    "CheckResult",
    "as_list",
    "first",
    "is_true",
    "policy_document_statements",
    "policy_statements",
    "severity",
]


def severity(level: str) -> Any:
    """checkov's severity object for a level name (HIGH, CRITICAL, ...)."""
    return Severities[level]


def first(value: Any) -> Any:
    """Unwrap checkov's one-element lists: [[x]] -> x, [x] -> x, x -> x."""
    while isinstance(value, list) and len(value) == 1:
        value = value[0]
    return value


def as_list(value: Any) -> list[Any]:
    """A scalar or a (nested) list as a flat list of scalars/dicts."""
    if value is None:
        return []
    if isinstance(value, list):
        out: list[Any] = []
        for item in value:
            out.extend(as_list(item))
        return out
    return [value]


def is_true(value: Any) -> bool:
    value = first(value)
    return value is True or (isinstance(value, str) and value.strip().lower() == "true")


def _statement_list(document: Any) -> list[dict[str, Any]]:
    document = first(document)
    if isinstance(document, str):
        text = document.strip()
        if not text.startswith("{"):
            return []  # an unresolved reference (e.g. "${data.aws_iam_policy_document.x.json}")
        try:
            document = json.loads(text)
        except ValueError:
            return []
    if not isinstance(document, dict):
        return []
    statements = document.get("Statement", [])
    if isinstance(statements, dict):
        statements = [statements]
    return [s for s in as_list(statements) if isinstance(s, dict)]


def policy_statements(document: Any) -> list[dict[str, Any]]:
    """Normalised statements of a JSON policy (dict or JSON text)."""
    out = []
    for raw in _statement_list(document):
        conditions: dict[str, dict[str, list[Any]]] = {}
        for test, pairs in (first(raw.get("Condition")) or {}).items():
            if isinstance(pairs, dict):
                for variable, values in pairs.items():
                    conditions.setdefault(test, {}).setdefault(variable, []).extend(as_list(values))
        principal = first(raw.get("Principal"))
        principals: dict[str, list[Any]] = {}
        if isinstance(principal, dict):
            principals = {k: as_list(v) for k, v in principal.items()}
        elif principal is not None:
            principals = {"*": as_list(principal)}
        out.append(
            {
                "Effect": str(first(raw.get("Effect")) or "Allow"),
                "Action": [str(a) for a in as_list(raw.get("Action"))],
                "NotAction": [str(a) for a in as_list(raw.get("NotAction"))],
                "Resource": [str(r) for r in as_list(raw.get("Resource"))],
                "Principal": principals,
                "Condition": conditions,
            }
        )
    return out


def policy_document_statements(conf: dict[str, Any]) -> list[dict[str, Any]]:
    """Normalised statements of a ``data "aws_iam_policy_document"`` block."""
    out = []
    for raw in as_list(conf.get("statement")):
        if not isinstance(raw, dict):
            continue
        conditions: dict[str, dict[str, list[Any]]] = {}
        for cond in as_list(raw.get("condition")):
            if isinstance(cond, dict):
                test = str(first(cond.get("test")))
                variable = str(first(cond.get("variable")))
                conditions.setdefault(test, {}).setdefault(variable, []).extend(as_list(cond.get("values")))
        principals: dict[str, list[Any]] = {}
        for block in as_list(raw.get("principals")):
            if isinstance(block, dict):
                kind = str(first(block.get("type")))
                principals.setdefault(kind, []).extend(as_list(block.get("identifiers")))
        out.append(
            {
                "Effect": str(first(raw.get("effect")) or "Allow"),
                "Action": [str(a) for a in as_list(raw.get("actions"))],
                "NotAction": [str(a) for a in as_list(raw.get("not_actions"))],
                "Resource": [str(r) for r in as_list(raw.get("resources"))],
                "Principal": principals,
                "Condition": conditions,
            }
        )
    return out
