"""GitHub Actions workflow invariants (checkov github_actions framework).

CKV_RAMPART_14: every `uses:` (step actions and reusable workflows) is pinned to a full 40-hex commit SHA.
CKV_RAMPART_15: the workflow declares top-level `permissions`, empty or read-only.
CKV_RAMPART_16: `id-token: write` is granted only to jobs that assume an AWS role with
                aws-actions/configure-aws-credentials, and never at the top level.
CKV_RAMPART_19: in a job with `id-token: write`, nothing is installed after the credentials step: no package
                manager, no setup-* or cache action, no make target that installs (the credentials would be in
                reach of every install script and of whatever a compromised package runs).
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


# Steps that install code: package managers, installers piped to a shell, and the project's installing targets.
_INSTALLS = re.compile(
    r"(?:^|[\s;&|(])(?:pip3?|uv|pipx|npm|npx|yarn|pnpm|apt-get|apt|brew|gem|cargo|go|poetry|conda)\s+"
    r"(?:install|add|ci|sync|get|run)\b"
    r"|(?:curl|wget)\b[^|\n]*\|\s*(?:ba|z)?sh\b"
    r"|\bmake\s+(?:[^\n#]*\s)?(?:install|package|checkov-install|terraform-providers|iac-validate|rds-ca)\b"
    r"|\bterraform\b[^\n#]*\binit\b(?![^\n#]*-backend-config)"
)
_INSTALLING_ACTIONS = re.compile(r"^(actions/setup-[a-z]+|hashicorp/setup-terraform|actions/cache)(@|$)")


def installs_after_credentials(job: dict[str, Any]) -> bool:
    seen_credentials = False
    for step in _steps(job):
        uses = str(step.get("uses", "")).strip()
        if uses.split("@")[0] == AWS_CREDENTIALS_ACTION:
            seen_credentials = True
            continue
        if not seen_credentials:
            continue
        if _INSTALLING_ACTIONS.match(uses) or _INSTALLS.search(str(step.get("run", ""))):
            return True
    return False


class NoInstallAfterCredentials(BaseGithubActionsCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Rampart: a job with id-token: write installs nothing after it obtained cloud credentials",
            id="CKV_RAMPART_19",
            block_type=BlockType.ARRAY,
            supported_entities=("jobs",),
        )
        self.severity = severity("HIGH")

    def scan_conf(self, conf: dict[str, Any]) -> tuple[CheckResult, dict[str, Any]]:
        if not isinstance(conf, dict) or not _grants_id_token_write(conf.get("permissions")):
            return CheckResult.UNKNOWN if not isinstance(conf, dict) else CheckResult.PASSED, conf
        return (CheckResult.FAILED if installs_after_credentials(conf) else CheckResult.PASSED), conf


pinned_check = ActionsPinnedToSha()
permissions_check = TopLevelPermissionsReadOnly()
id_token_check = IdTokenOnlyWhereAwsRoleAssumed()
install_check = NoInstallAfterCredentials()
