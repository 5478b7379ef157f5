"""A small IAM policy evaluator: exactly the elements and condition operators Rampart's policies use.

Why not a library: the PyPI candidates (iam-ape computes effective permissions from account authorisation
details; aws-why and sibyl-aws are young simulators) either do not evaluate a web-identity request's
conditions or are not established enough to trust as a proof. AWS's own simulator (SimulateCustomPolicy) needs
an account, and moto does not implement it. So this module evaluates what the trust and permission policies
of iac/ and the bootstrap contain, and tests/pipeline/test_iam_eval.py checks it against AWS's documented
examples (IAM User Guide: "Policy evaluation logic", "IAM JSON policy elements: Condition operators",
"Single-valued vs multivalued context keys", and the GitHub OIDC trust examples).

Supported: Effect; Action / NotAction; Resource / NotResource; Principal (AWS, Federated, Service, "*");
condition operators String(Not)Equals(IgnoreCase), String(Not)Like, Arn(Not)Equals, Arn(Not)Like, Bool, Null,
the IfExists suffix and the ForAnyValue: / ForAllValues: set prefixes. Policy variables (${aws:username}) are
not supported: a policy containing one is refused, not guessed at. Anything else raises UnsupportedPolicy.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

ALLOW, EXPLICIT_DENY, IMPLICIT_DENY = "Allow", "ExplicitDeny", "ImplicitDeny"


class UnsupportedPolicy(ValueError):
    """The policy uses an element or operator this evaluator does not implement."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str = "*"
    principal: Mapping[str, str] = field(default_factory=dict)  # e.g. {"Federated": arn}
    context: Mapping[str, str | Sequence[str]] = field(default_factory=dict)


def _as_list(value: Any) -> list[Any]:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _glob(pattern: str, value: str, *, ignore_case: bool) -> bool:
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, value, re.IGNORECASE | re.DOTALL if ignore_case else re.DOTALL) is not None


def _arn_match(pattern: str, value: str, *, like: bool) -> bool:
    # ARNs compare by their six colon-separated parts; the last part keeps any further colons.
    pattern_parts, value_parts = pattern.split(":", 5), value.split(":", 5)
    if len(pattern_parts) != 6 or len(value_parts) != 6:
        return False
    if like:
        return all(_glob(p, v, ignore_case=False) for p, v in zip(pattern_parts, value_parts, strict=True))
    return pattern == value


def _string_test(operator: str) -> Any:
    base = {
        "StringEquals": lambda p, v: p == v,
        "StringEqualsIgnoreCase": lambda p, v: p.lower() == v.lower(),
        "StringLike": lambda p, v: _glob(p, v, ignore_case=False),
        "ArnEquals": lambda p, v: _arn_match(p, v, like=False),
        "ArnLike": lambda p, v: _arn_match(p, v, like=True),
        "Bool": lambda p, v: str(p).lower() == str(v).lower(),
    }
    return base.get(operator)


NEGATIONS = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


def _check_no_variables(values: Iterable[Any]) -> None:
    for value in values:
        if isinstance(value, str) and "${" in value:
            raise UnsupportedPolicy(f"policy variables are not supported: {value!r}")


def _condition_holds(operator: str, key: str, policy_values: list[Any], context: Mapping[str, Any]) -> bool:
    _check_no_variables(policy_values)
    set_prefix = None
    if ":" in operator and operator.split(":", 1)[0] in {"ForAnyValue", "ForAllValues"}:
        set_prefix, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists") and operator != "IfExists"
    if if_exists:
        operator = operator[: -len("IfExists")]
    present = key in context and context[key] is not None
    values = [str(v) for v in _as_list(context.get(key))]
    if operator == "Null":
        (expected,) = {str(v).lower() for v in policy_values}
        return (not present) == (expected == "true")
    negated = operator in NEGATIONS
    test = _string_test(NEGATIONS.get(operator, operator))
    if test is None:
        raise UnsupportedPolicy(f"condition operator {operator!r}")
    policy_values = [str(v) for v in policy_values]
    if not present:
        if set_prefix == "ForAllValues":
            return True  # vacuously true for an empty set (AWS documents this pitfall)
        if set_prefix == "ForAnyValue":
            return False
        return if_exists or negated

    def matches(value: str) -> bool:
        hit = any(test(p, value) for p in policy_values)
        return not hit if negated else hit

    if set_prefix == "ForAllValues":
        return all(matches(v) for v in values)
    return any(matches(v) for v in values)


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, Any]) -> bool:
    # Every operator block, and every key within it, must hold (AND); values of one key are ORed.
    return all(
        _condition_holds(operator, key, _as_list(values), context)
        for operator, pairs in conditions.items()
        for key, values in pairs.items()
    )


def _principal_matches(principal: Any, request_principal: Mapping[str, str]) -> bool:
    if principal == "*":
        return True
    if not isinstance(principal, Mapping):
        raise UnsupportedPolicy(f"Principal {principal!r}")
    for kind, identities in principal.items():
        if kind not in {"AWS", "Federated", "Service"}:
            raise UnsupportedPolicy(f"Principal type {kind!r}")
        if kind in request_principal and (
            "*" in _as_list(identities) or request_principal[kind] in _as_list(identities)
        ):
            return True
    return False


def _statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
    known = {"Sid", "Effect", "Action", "NotAction", "Resource", "NotResource", "Principal", "Condition"}
    if unknown := set(statement) - known:
        raise UnsupportedPolicy(f"statement elements {sorted(unknown)}")
    if "NotPrincipal" in statement:
        raise UnsupportedPolicy("NotPrincipal")
    if "Action" in statement:
        action_ok = any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement["Action"]))
    else:
        action_ok = not any(_glob(a, request.action, ignore_case=True) for a in _as_list(statement["NotAction"]))
    if not action_ok:
        return False
    if "Resource" in statement:
        _check_no_variables(_as_list(statement["Resource"]))
        if not any(_glob(r, request.resource, ignore_case=False) for r in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement and any(
        _glob(r, request.resource, ignore_case=False) for r in _as_list(statement["NotResource"])
    ):
        return False
    if "Principal" in statement and not _principal_matches(statement["Principal"], request.principal):
        return False
    return _conditions_hold(statement.get("Condition") or {}, request.context)


def statements(document: str | Mapping[str, Any]) -> list[dict[str, Any]]:
    doc = json.loads(document) if isinstance(document, str) else dict(document)
    return [dict(s) for s in _as_list(doc.get("Statement"))]


def evaluate(documents: Iterable[str | Mapping[str, Any]], request: Request) -> str:
    """AWS's evaluation within one account: an explicit Deny wins, then any Allow, else an implicit deny."""
    applicable = [s for d in documents for s in statements(d) if _statement_applies(s, request)]
    if any(s.get("Effect") == "Deny" for s in applicable):
        return EXPLICIT_DENY
    if any(s.get("Effect") == "Allow" for s in applicable):
        return ALLOW
    return IMPLICIT_DENY


def evaluate_with_boundary(
    identity_documents: Iterable[str | Mapping[str, Any]],
    boundary_document: str | Mapping[str, Any] | None,
    request: Request,
) -> str:
    """Identity policies within a permissions boundary: allowed only if both allow and neither denies."""
    identity = evaluate(identity_documents, request)
    if boundary_document is None or identity != ALLOW:
        return identity
    boundary = evaluate([boundary_document], request)
    return ALLOW if boundary == ALLOW else boundary
