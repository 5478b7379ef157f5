"""GitHub Actions workflow invariants (checkov github_actions framework).

CKV_RAMPART_14: every `uses:` (step actions and reusable workflows) is pinned to a full 40-hex commit SHA.
CKV_RAMPART_15: the workflow declares top-level `permissions`, empty or read-only.
CKV_RAMPART_16: `id-token: write` is granted only to (a) jobs that assume an AWS role with
                aws-actions/configure-aws-credentials, (b) jobs that attest build provenance with
                actions/attest-build-provenance and nothing else: `attestations: write`, an environment (its own
                OIDC subject, which no AWS role trusts), no AWS credentials step and no `run:` step (no project code
                holds the token; it goes to Sigstore only), or (c) calls of a reusable workflow of this repository
                (`uses: ./...`: the permissions only cap the callee, whose jobs this check sees in their own file);
                never at the top level.
CKV_RAMPART_19: in a job with `id-token: write`, nothing is installed after the credentials step: no package
                manager, no setup-* or cache action, no make target that installs (the credentials would be in
                reach of every install script and of whatever a compromised package runs).
"""

from __future__ import annotations

import re
from typing import Any

from rampart_policy_lib import CheckResult, severity

from checkov.github_actions import schemas as _gha_schemas
from checkov.github_actions.checks.base_github_action_check import BaseGithubActionsCheck
from checkov.yaml_doc.enums import BlockType


def _admit_attestations_permission() -> None:
    """checkov (3.3.30, the newest release) validates each workflow against a bundled schema that predates the
    `attestations` permission scope, and silently skips a workflow that does not match: every check, built-in and
    Rampart's, would pass ci.yml and deploy.yml by never looking at them. This adds the scope (GitHub's workflow
    syntax: read, write or none) to the schema checkov validates against; it loads with these checks, before any
    workflow is parsed. tests/policies/test_policies.py asserts that every workflow of .github/ is scanned."""
    for schema in (_gha_schemas.gha_workflow, _gha_schemas.gha_schema):
        scopes = (schema.get("definitions") or {}).get("permissions-event", {}).get("properties")
        if isinstance(scopes, dict):
            scopes.setdefault("attestations", {"$ref": "#/definitions/permissions-level"})


_admit_attestations_permission()

_SHA_PIN = re.compile(r"^[^@\s]+@[0-9a-f]{40}$")
_DIGEST_PIN = re.compile(r"^docker://[^@\s]+@sha256:[0-9a-f]{64}$")
AWS_CREDENTIALS_ACTION = "aws-actions/configure-aws-credentials"
ATTEST_ACTION = "actions/attest-build-provenance"
# What an attesting job may run besides the attestation: the runner hardening and the artifact it attests.
ATTEST_JOB_ACTIONS = {"step-security/harden-runner", "actions/download-artifact", ATTEST_ACTION}


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


def assumes_aws_role(job: dict[str, Any]) -> bool:
    return any(
        str(s.get("uses", "")).split("@")[0] == AWS_CREDENTIALS_ACTION
        and isinstance(s.get("with"), dict)
        and "role-to-assume" in s["with"]
        for s in _steps(job)
    )


def attests_only(job: dict[str, Any]) -> bool:
    """A job whose OIDC token can only reach Sigstore: it attests with actions/attest-build-provenance, holds
    `attestations: write`, runs in an environment (a subject of its own) and runs nothing but the attestation, the
    runner hardening and the artifact download: no `run:` step, no AWS credentials."""
    steps = _steps(job)
    permissions = job.get("permissions")
    actions = [str(s.get("uses", "")).split("@")[0] for s in steps]
    return (
        isinstance(permissions, dict)
        and permissions.get("attestations") == "write"
        and bool(job.get("environment"))
        and ATTEST_ACTION in actions
        and all("uses" in s and "run" not in s for s in steps)
        and set(actions) <= ATTEST_JOB_ACTIONS
    )


def calls_local_workflow(job: dict[str, Any]) -> bool:
    return isinstance(job.get("uses"), str) and job["uses"].strip().startswith("./")


class IdTokenOnlyWhereAwsRoleAssumed(BaseGithubActionsCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Rampart: id-token: write only to assume an AWS role, or to attest provenance with nothing else",
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
        allowed = assumes_aws_role(conf) or attests_only(conf) or calls_local_workflow(conf)
        return (CheckResult.PASSED if allowed else CheckResult.FAILED), conf


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
