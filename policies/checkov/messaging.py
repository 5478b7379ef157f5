"""CKV_RAMPART_8: SQS queues and SNS topics are encrypted with a customer-managed KMS key."""

from __future__ import annotations

from typing import Any

from rampart_policy_lib import CheckCategories, CheckResult, first, is_true, severity

from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck


class MessagingUsesCustomerManagedKey(BaseResourceCheck):
    def __init__(self) -> None:
        super().__init__(
            name="Rampart: SQS queues and SNS topics use a customer-managed KMS key, never alias/aws/*",
            id="CKV_RAMPART_8",
            categories=[CheckCategories.ENCRYPTION],
            supported_resources=["aws_sqs_queue", "aws_sns_topic"],
        )
        self.severity = severity("HIGH")

    def scan_resource_conf(self, conf: dict[str, list[Any]]) -> CheckResult:
        self.evaluated_keys = ["kms_master_key_id", "sqs_managed_sse_enabled"]
        if is_true(conf.get("sqs_managed_sse_enabled")):
            return CheckResult.FAILED
        key = first(conf.get("kms_master_key_id"))
        if not isinstance(key, str) or not key.strip():
            return CheckResult.FAILED
        # AWS-managed keys: the alias (alias/aws/sqs, alias/aws/sns) or its ARN form (...:alias/aws/...).
        if "alias/aws/" in key:
            return CheckResult.FAILED
        return CheckResult.PASSED


check = MessagingUsesCustomerManagedKey()
