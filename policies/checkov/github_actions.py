"""GitHub Actions workflow invariants (checkov github_actions framework).

CKV_RAMPART_14: every `uses:` (step actions and reusable workflows) is pinned to a full 40-hex commit SHA.
CKV_RAMPART_15: the workflow declares top-level `permissions`, empty or read-only.
CKV_RAMPART_16: `id-token: write` is granted only to jobs that assume an AWS role with
                aws-actions/configure-aws-credentials, and never at the top level.
"""

from __future__ import annotations

import re
from typing import Any

from rampart_policy_lib import CheckResult, severity

from checkov.github_actions.checks.base_github_action_check import BaseGithubActionsCheck
from checkov.yaml_doc.enums import BlockType

_SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
_DIGEST_PIN = re.compile(r"^docker://[^@\s]+@sha256:[0-9a-f]{64}$")
AWS_CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"


def _is_pinned(uses: str) -> bool:
    uses = uses.strip()
    if uses.startswith("./"):
        return True  # an action or workflow of this repository, pinned by the checkout itself
    return bool(_SHA_PIN.match(uses) or _DIGEST_PIN.match(uses))


def _steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    steps = job.get("steps") or []
    return [s for s in steps if isinstance(s, dict)] if isinstance(steps, list) else []


def _grants_id_token_write(permissions: Any) -> bool:
    if permissions == "write-all":
        return True
    return isinstance(permissions, dict) and permissions.get("id-token") == "write"


class ActionsPinnedToSha(BaseGithubActionsCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Rampart: every action and reusable workflow is pinned to a full 40-hex commit SHA",
            id="CKV_RAMPART_14",
            block_type=BlockType.ARRAY,
            supported_entities=("jobs",),
        )
        self.severity = severity("HIGH")

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        if not isinstance(conf, dict):
            return CheckResult.UNKNOWN, conf
        uses = [conf["uses"]] if isinstance(conf.get("uses"), str) else []
        uses += [s["uses"] for s in _steps(conf) if isinstance(s.get("uses"), str)]
        if all(_is_pinned(u) for u in uses):
            return CheckResult.PASSED, conf
        return CheckResult.FAILED, conf


class TopLevelPermissionsReadOnly(BaseGithubActionsCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Rampart: the workflow declares top-level permissions, empty or read-only",
            id="CKV_RAMPART_15",
            # DOCUMENT: the check sees the whole workflow, so it can fail when `permissions` is absent.
            block_type=BlockType.DOCUMENT,
            supported_entities=("permissions",),
        )
        self.severity = severity("HIGH")

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        if not isinstance(conf, dict) or "jobs" not in conf:
            return CheckResult.UNKNOWN, conf
        if "permissions" not in conf:
            return CheckResult.FAILED, conf
        permissions = conf["permissions"]
        if permissions in ({}, None, "read-all"):
            return CheckResult.PASSED, conf
        if isinstance(permissions, dict) and all(
            v in {"read", "none"} for k, v in permissions.items() if not k.startswith("__")
        ):
            return CheckResult.PASSED, conf
        return CheckResult.FAILED, conf


class IdTokenOnlyWhereAwsRoleAssumed(BaseGithubActionsCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Rampart: id-token: write only in jobs that assume an AWS role (configure-aws-credentials)",
            id="CKV_RAMPART_16",
            block_type=BlockType.ARRAY,
            supported_entities=("jobs",),
        )
        self.severity = severity("HIGH")

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        if not isinstance(conf, dict):
            return CheckResult.UNKNOWN, conf
        if not _grants_id_token_write(conf.get("permissions")):
            return CheckResult.PASSED, conf
        assumes_role = any(
            str(s.get("uses", "")).split("@")[0] == AWS_CREDENTIALS_ACTION
            and isinstance(s.get("with"), dict)
            and "role-to-assume" in s["with"]
            for s in _steps(conf)
        )
        return (CheckResult.PASSED if assumes_role else CheckResult.FAILED), conf


pinned_check = ActionsPinnedToSha()
permissions_check = TopLevelPermissionsReadOnly()
id_token_check = IdTokenOnlyWhereAwsRoleAssumed()
