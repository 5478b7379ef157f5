"""`make iam-lint`: parliament over every policy document of the applied state; findings fail unless suppressed
with a reason; it applies nothing and fails loudly without (or with a stale) state. The project's own applied state
is linted in the emulator session (tests/iac/test_emulate_iam_lint.py), where a state always exists: a check here
would have to skip whenever `make iac-emulate` had not run first."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.gates.source_tree import REPO

sys.path.insert(0, str(REPO / "scripts"))
import iam_lint

ACCOUNT = "123456789012"
TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}
SCOPED = {
    "Version": "2012-10-17",
    "Statement": [
        {"Effect": "Allow", "Action": "sqs:ReceiveMessage", "Resource": f"arn:aws:sqs:eu-west-1:{ACCOUNT}:events"}
    ],
}
# What parliament must catch: a resource-level action on "*" and an action that does not exist.
TOO_BROAD = {
    "Version": "2012-10-17",
    "Statement": [
        {"Sid": "ReadEverything", "Effect": "Allow", "Action": "s3:GetObject", "Resource": "*"},
        {"Sid": "Typo", "Effect": "Allow", "Action": "sqs:RecieveMessage", "Resource": "*"},
    ],
}
KEY_STATEMENT = {
    "Sid": "RootDelegates",
    "Effect": "Allow",
    "Principal": {"AWS": f"arn:aws:iam::{ACCOUNT}:root"},
    "Action": "kms:*",
    "Resource": "*",
}
BUCKET = {
    "Version": "2012-10-17",
    "Statement": [
        {
            "Sid": "DenyInsecureTransport",
            "Effect": "Deny",
            "Principal": "*",
            "Action": "s3:*",
            "Resource": ["arn:aws:s3:::artifacts", "arn:aws:s3:::artifacts/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    ],
}


def resource(address: str, rtype: str, values: dict[str, Any], mode: str = "managed") -> dict[str, Any]:
    return {"address": address, "mode": mode, "type": rtype, "values": values}


def state(identity: dict[str, Any]) -> dict[str, Any]:
    key_policy = {"Version": "2012-10-17", "Statement": [KEY_STATEMENT]}
    fragment = {"Version": "2012-10-17", "Statement": [KEY_STATEMENT]}
    child = {
        "address": "module.functions",
        "resources": [
            resource("module.functions.aws_iam_role.this", "aws_iam_role", {"assume_role_policy": json.dumps(TRUST)}),
            resource(
                "module.functions.aws_iam_role_policy.this", "aws_iam_role_policy", {"policy": json.dumps(identity)}
            ),
            resource("module.functions.aws_kms_key.this", "aws_kms_key", {"policy": json.dumps(key_policy)}),
            # Computed: the service's default, not a document this code writes.
            resource(
                "module.functions.aws_sns_topic.this",
                "aws_sns_topic",
                {"policy": json.dumps({"Version": "2008-10-17", "Statement": [TOO_BROAD["Statement"][0]]})},
            ),
            resource(
                "module.functions.data.aws_iam_policy_document.key_part",
                "aws_iam_policy_document",
                {"json": json.dumps(fragment)},
                mode="data",
            ),
            resource(
                "module.functions.data.aws_iam_policy_document.bucket",
                "aws_iam_policy_document",
                {"json": json.dumps(BUCKET)},
                mode="data",
            ),
        ],
    }
    return {"values": {"root_module": {"resources": [], "child_modules": [child]}}}


def write(path: Path, data: Any) -> Path:
    path.write_text(json.dumps(data) if path.suffix == ".json" else yaml.safe_dump(data), encoding="utf-8")
    return path


TRUST_SUPPRESSION = {
    "policy": "*.aws_iam_role.*.assume_role_policy",
    "finding": "MALFORMED",
    "detail": "neither Resource nor NotResource",
    "reason": "a trust policy has no Resource",
}
KEY_SUPPRESSION = {"policy": "*.aws_kms_key.*.policy", "finding": "RESOURCE_STAR", "reason": "Resource * is the key"}


def lint(tmp_path: Path, identity: dict[str, Any], suppressions: list[dict[str, str]]) -> int:
    state_path = write(tmp_path / "state.json", state(identity))
    rules = write(tmp_path / "suppressions.yaml", {"suppressions": suppressions})
    return iam_lint.run(state_path, rules, None)


def test_documents_are_found_by_kind_once_each() -> None:
    docs = iam_lint.documents(state(SCOPED))
    kinds = {d.primary: d.kind for d in docs}
    assert kinds == {
        "module.functions.aws_iam_role_policy.this.policy": "identity",
        "module.functions.aws_iam_role.this.assume_role_policy": "trust",
        "module.functions.aws_kms_key.this.policy": "key",
        "module.functions.data.aws_iam_policy_document.bucket": "rendered",  # not applied: linted on its own
    }  # the key fragment is part of the key policy; the topic's computed default policy is not ours


def test_a_clean_state_with_reasoned_suppressions_passes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lint(tmp_path, SCOPED, [TRUST_SUPPRESSION, KEY_SUPPRESSION]) == 0
    assert "findings: 0; suppressed (with reasons): 2; PASS" in capsys.readouterr().out


def test_a_too_broad_identity_policy_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lint(tmp_path, TOO_BROAD, [TRUST_SUPPRESSION, KEY_SUPPRESSION]) == 1
    out = capsys.readouterr().out
    assert "module.functions.aws_iam_role_policy.this.policy [identity]: RESOURCE_STAR" in out
    assert "UNKNOWN_ACTION" in out


def test_without_its_suppression_a_finding_fails(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert lint(tmp_path, SCOPED, [TRUST_SUPPRESSION]) == 1
    assert "aws_kms_key.this.policy [key]: RESOURCE_STAR" in capsys.readouterr().out


def test_a_suppression_needs_a_reason_and_must_still_match(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit, match="lacks reason"):
        lint(tmp_path, SCOPED, [TRUST_SUPPRESSION, {**KEY_SUPPRESSION, "reason": " "}])
    stale = {"policy": "module.gone.*", "finding": "RESOURCE_STAR", "reason": "was needed once"}
    assert lint(tmp_path, SCOPED, [TRUST_SUPPRESSION, KEY_SUPPRESSION, stale]) == 1
    assert "stale suppression" in capsys.readouterr().out


def test_it_applies_nothing_and_fails_loudly_without_state(tmp_path: Path) -> None:
    result = subprocess.run(
        ["make", "--no-print-directory", "iam-lint", f"IAM_LINT_STATE={tmp_path / 'missing.json'}"],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "make iac-emulate" in result.stderr and "applies nothing" in result.stderr


def test_a_state_older_than_the_terraform_fails(tmp_path: Path) -> None:
    iac = tmp_path / "iac"
    iac.mkdir()
    state_path = write(tmp_path / "state.json", state(SCOPED))
    tf = iac / "main.tf"
    tf.write_text("# changed after the apply\n")
    os.utime(state_path, (1_000_000_000, 1_000_000_000))
    assert iam_lint.run(state_path, write(tmp_path / "s.yaml", {"suppressions": []}), iac) == 2


def test_every_project_suppression_is_reasoned_and_listed_in_security_md() -> None:
    rules = iam_lint.load_suppressions(iam_lint.SUPPRESSIONS)
    security = (REPO / "SECURITY.md").read_text(encoding="utf-8")
    section = security.split("**iam-lint**", 1)[1].split("\n\n**", 1)[0]
    for rule in rules:
        assert len(rule.reason) > 40, rule
        rows = [line for line in section.splitlines() if f"`{rule.policy}`" in line and rule.finding in line]
        assert rows, f"SECURITY.md's iam-lint table lacks {rule.policy} {rule.finding}"
