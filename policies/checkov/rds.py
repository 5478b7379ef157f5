"""CKV_RAMPART_4 (IAM database authentication) and CKV_RAMPART_5 (no public access) for RDS."""

from __future__ import annotations

from typing import Any

from rampart_policy_lib import CheckCategories, CheckResult, first, is_true, severity

from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


class RdsIamAuthentication(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Rampart: RDS uses IAM database authentication",
            id="CKV_RAMPART_4",
            categories=[CheckCategories.IAM],
            supported_resources=["aws_db_instance", "aws_rds_cluster"],
        )
        self.severity = severity("HIGH")

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        self.evaluated_keys = ["iam_database_authentication_enabled"]
        if is_true(conf.get("iam_database_authentication_enabled")):
            return CheckResult.PASSED
        return CheckResult.FAILED


class RdsNotPubliclyAccessible(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Rampart: RDS is not publicly accessible (publicly_accessible = false)",
            id="CKV_RAMPART_5",
            categories=[CheckCategories.NETWORKING],
            supported_resources=["aws_db_instance", "aws_rds_cluster_instance"],
        )
        self.severity = severity("CRITICAL")

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        self.evaluated_keys = ["publicly_accessible"]
        value = first(conf.get("publicly_accessible"))
        # Absent means the provider default, false. Anything else (true, an expression) fails: the
        # invariant must be visible in the code, not depend on a variable's value.
        if value is None or value is False or (isinstance(value, str) and value.lower() == "false"):
            return CheckResult.PASSED
        return CheckResult.FAILED


iam_auth_check = RdsIamAuthentication()
public_access_check = RdsNotPubliclyAccessible()
