"""CKV_RAMPART_1: every API Gateway method requires an API key."""

from __future__ import annotations

from typing import Any

from rampart_policy_lib import CheckCategories, CheckResult, is_true, severity

from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


class ApiKeyRequiredOnEveryMethod(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Rampart: every API Gateway method requires an API key (api_key_required = true)",
            id="CKV_RAMPART_1",
            categories=[CheckCategories.IAM],
            supported_resources=["aws_api_gateway_method"],
        )
        self.severity = severity("HIGH")

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        self.evaluated_keys = ["api_key_required"]
        return CheckResult.PASSED if is_true(conf.get("api_key_required")) else CheckResult.FAILED


check = ApiKeyRequiredOnEveryMethod()
