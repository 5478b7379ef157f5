"""Issue 13 item 9: every request to the artifact bucket (what gets signed and deployed) is logged, as S3 server
access logs in a bucket of its own that only the logging service, for that bucket, may write. As applied."""

from __future__ import annotations

import json
from typing import Any

import pytest

from tests.iac.emulator import client

pytestmark = pytest.mark.emulate


def managed(state: dict[str, Any], address: str) -> dict[str, Any]:
    def walk(module: dict[str, Any]) -> list[dict[str, Any]]:
        found = list(module.get("resources") or [])
        for child in module.get("child_modules") or []:
            found += walk(child)
        return found

    matches = [r for r in walk(state["values"]["root_module"]) if r["address"] == address]
    assert matches, f"{address} is not in the applied state"
    return matches[0]["values"]


@pytest.fixture(scope="module")
def buckets(stack: dict[str, Any]) -> dict[str, str]:
    return {
        "artifacts": managed(stack["state"], "module.functions.aws_s3_bucket.artifacts")["bucket"],
        "logs": managed(stack["state"], "module.functions.aws_s3_bucket.artifact_logs")["bucket"],
    }


def test_artifact_bucket_access_is_logged_to_its_log_bucket(buckets: dict[str, str], moto_url: str) -> None:
    s3 = client("s3", moto_url)
    logging = s3.get_bucket_logging(Bucket=buckets["artifacts"])["LoggingEnabled"]
    assert logging["TargetBucket"] == buckets["logs"]
    assert logging["TargetPrefix"] == "s3-access/"
    assert buckets["logs"] != buckets["artifacts"]


def test_log_bucket_is_private_versioned_sse_s3_and_expires_logs(buckets: dict[str, str], moto_url: str) -> None:
    s3 = client("s3", moto_url)
    logs = buckets["logs"]
    block = s3.get_public_access_block(Bucket=logs)["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    assert s3.get_bucket_versioning(Bucket=logs)["Status"] == "Enabled"
    rules = s3.get_bucket_encryption(Bucket=logs)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"  # what log delivery supports
    ownership = s3.get_bucket_ownership_controls(Bucket=logs)["OwnershipControls"]["Rules"]
    assert ownership == [{"ObjectOwnership": "BucketOwnerEnforced"}]  # no ACLs: the policy grants delivery
    lifecycle = s3.get_bucket_lifecycle_configuration(Bucket=logs)["Rules"]
    assert lifecycle[0]["Status"] == "Enabled" and lifecycle[0]["Expiration"]["Days"] >= 90


def test_only_the_logging_service_for_the_artifact_bucket_may_write(
    buckets: dict[str, str], moto_url: str, stack: dict[str, Any]
) -> None:
    s3 = client("s3", moto_url)
    policy = json.loads(s3.get_bucket_policy(Bucket=buckets["logs"])["Policy"])
    allows = [s for s in policy["Statement"] if s["Effect"] == "Allow"]
    assert len(allows) == 1
    allow = allows[0]
    assert allow["Principal"] == {"Service": "logging.s3.amazonaws.com"}
    assert allow["Action"] in ("s3:PutObject", ["s3:PutObject"])
    assert allow["Resource"] == f"arn:aws:s3:::{buckets['logs']}/s3-access/*"
    assert allow["Condition"]["ArnEquals"]["aws:SourceArn"] == f"arn:aws:s3:::{buckets['artifacts']}"
    account = client("sts", moto_url).get_caller_identity()["Account"]
    assert allow["Condition"]["StringEquals"]["aws:SourceAccount"] == account
    denies = [s for s in policy["Statement"] if s["Effect"] == "Deny"]
    assert any(d["Condition"] == {"Bool": {"aws:SecureTransport": "false"}} for d in denies)
