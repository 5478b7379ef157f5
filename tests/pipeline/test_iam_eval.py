"""The evaluator against AWS's documented examples (IAM User Guide pages named in each test), so the trust
matrix and the plan role's proofs rest on AWS's semantics, not on ours."""

from __future__ import annotations

from typing import Any

import pytest

from tests.pipeline.iam_eval import ALLOW, EXPLICIT_DENY, IMPLICIT_DENY, Request, UnsupportedPolicy, evaluate

OIDC = "arn:aws:iam::123456789012:oidc-provider/token.actions.githubusercontent.com"
AUD, SUB = "token.actions.githubusercontent.com:aud", "token.actions.githubusercontent.com:sub"


def policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "2012-10-17", "Statement": list(statements)}


def github_trust(condition: dict[str, Any]) -> dict[str, Any]:
    return policy(
        {
            "Effect": "Allow",
            "Principal": {"Federated": OIDC},
            "Action": "sts:AssumeRoleWithWebIdentity",
            "Condition": condition,
        }
    )


def web_identity(sub: str, aud: str = "sts.amazonaws.com", provider: str = OIDC) -> Request:
    return Request("sts:AssumeRoleWithWebIdentity", principal={"Federated": provider}, context={AUD: aud, SUB: sub})


# "Configuring a role for GitHub OIDC identity provider" (IAM User Guide): StringEquals on aud, StringLike on sub.
GITHUB_DOC_EXAMPLE = github_trust(
    {
        "StringEquals": {AUD: "sts.amazonaws.com"},
        "StringLike": {SUB: "repo:GitHubOrg/GitHubRepo:ref:refs/heads/GitHubBranch"},
    }
)


def test_github_trust_example_admits_the_named_branch_only() -> None:
    assert (
        evaluate([GITHUB_DOC_EXAMPLE], web_identity("repo:GitHubOrg/GitHubRepo:ref:refs/heads/GitHubBranch")) == ALLOW
    )
    assert (
        evaluate([GITHUB_DOC_EXAMPLE], web_identity("repo:GitHubOrg/GitHubRepo:ref:refs/heads/other")) == IMPLICIT_DENY
    )
    assert (
        evaluate([GITHUB_DOC_EXAMPLE], web_identity("repo:GitHubOrg/GitHubRepo:ref:refs/heads/GitHubBranch", aud="x"))
        == IMPLICIT_DENY
    )
    other_provider = "arn:aws:iam::123456789012:oidc-provider/example.com"
    assert (
        evaluate(
            [GITHUB_DOC_EXAMPLE],
            web_identity("repo:GitHubOrg/GitHubRepo:ref:refs/heads/GitHubBranch", provider=other_provider),
        )
        == IMPLICIT_DENY
    )


def test_a_wildcard_sub_admits_every_ref_and_environment() -> None:
    # The IAM guide's own warning case: "repo:org/repo:*" trusts every branch, pull request and environment.
    wide = github_trust({"StringEquals": {AUD: "sts.amazonaws.com"}, "StringLike": {SUB: "repo:octo-org/octo-repo:*"}})
    for sub in ("repo:octo-org/octo-repo:pull_request", "repo:octo-org/octo-repo:environment:production"):
        assert evaluate([wide], web_identity(sub)) == ALLOW
    assert evaluate([wide], web_identity("repo:octo-org/octo-repo-fork:pull_request")) == IMPLICIT_DENY


def test_string_equals_does_not_glob() -> None:
    exact = github_trust({"StringEquals": {AUD: "sts.amazonaws.com", SUB: "repo:o/r:*"}})
    assert evaluate([exact], web_identity("repo:o/r:pull_request")) == IMPLICIT_DENY
    assert evaluate([exact], web_identity("repo:o/r:*")) == ALLOW


def test_multiple_values_are_ored_and_multiple_keys_anded() -> None:
    # "Creating a condition with multiple keys or values": values of one key OR, keys and operators AND.
    statement = {
        "Effect": "Allow",
        "Action": "s3:GetObject",
        "Resource": "*",
        "Condition": {
            "StringEquals": {
                "aws:PrincipalTag/department": ["finance", "hr", "legal"],
                "aws:PrincipalTag/role": "audit",
            }
        },
    }
    ok = {"aws:PrincipalTag/department": "hr", "aws:PrincipalTag/role": "audit"}
    assert evaluate([policy(statement)], Request("s3:GetObject", "arn:aws:s3:::b/k", context=ok)) == ALLOW
    wrong_role = {"aws:PrincipalTag/department": "hr", "aws:PrincipalTag/role": "dev"}
    assert (
        evaluate([policy(statement)], Request("s3:GetObject", "arn:aws:s3:::b/k", context=wrong_role)) == IMPLICIT_DENY
    )


def test_missing_key_is_false_except_for_negated_and_if_exists_operators() -> None:
    # "Condition operators": a key absent from the request context does not match, unless the operator is
    # negated (StringNotLike, ArnNotLike, ...) or ends in IfExists.
    def allowed(condition: dict[str, Any], context: dict[str, str]) -> str:
        return evaluate(
            [policy({"Effect": "Allow", "Action": "ec2:RunInstances", "Resource": "*", "Condition": condition})],
            Request("ec2:RunInstances", context=context),
        )

    assert allowed({"StringEquals": {"ec2:InstanceType": "t2.micro"}}, {}) == IMPLICIT_DENY
    assert allowed({"StringNotEquals": {"ec2:InstanceType": "t2.micro"}}, {}) == ALLOW
    assert allowed({"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}, {}) == ALLOW
    assert (
        allowed(
            {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}, {"ec2:InstanceType": "t2.small"}
        )
        == ALLOW
    )
    assert (
        allowed(
            {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}}, {"ec2:InstanceType": "p4d.24xlarge"}
        )
        == IMPLICIT_DENY
    )


def test_null_and_bool_operators() -> None:
    # "Condition operators": {"Null": {"aws:TokenIssueTime": "true"}} matches long-term credentials (no such key);
    # the deny-insecure-transport example uses {"Bool": {"aws:SecureTransport": "false"}}.
    deny_long_term = policy(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "Action": "*", "Resource": "*", "Condition": {"Null": {"aws:TokenIssueTime": "true"}}},
    )
    assert evaluate([deny_long_term], Request("s3:ListBucket")) == EXPLICIT_DENY
    assert (
        evaluate([deny_long_term], Request("s3:ListBucket", context={"aws:TokenIssueTime": "2026-01-01T00:00:00Z"}))
        == ALLOW
    )
    tls = policy(
        {"Effect": "Deny", "Action": "s3:*", "Resource": "*", "Condition": {"Bool": {"aws:SecureTransport": "false"}}}
    )
    assert evaluate([tls], Request("s3:GetObject", context={"aws:SecureTransport": "false"})) == EXPLICIT_DENY
    assert evaluate([tls], Request("s3:GetObject", context={"aws:SecureTransport": "true"})) == IMPLICIT_DENY


def test_set_operators_and_the_empty_set_pitfall() -> None:
    # "Single-valued vs multivalued context keys": ForAllValues is true when the key is absent (empty set);
    # ForAnyValue is false then.
    def decision(operator: str, tags: list[str] | None) -> str:
        condition = {operator: {"aws:TagKeys": ["environment", "cost-center"]}}
        context = {} if tags is None else {"aws:TagKeys": tags}
        doc = policy({"Effect": "Allow", "Action": "ec2:CreateTags", "Resource": "*", "Condition": condition})
        return evaluate([doc], Request("ec2:CreateTags", context=context))

    assert decision("ForAllValues:StringEquals", ["environment"]) == ALLOW
    assert decision("ForAllValues:StringEquals", ["environment", "owner"]) == IMPLICIT_DENY
    assert decision("ForAllValues:StringEquals", None) == ALLOW
    assert decision("ForAnyValue:StringEquals", ["owner", "cost-center"]) == ALLOW
    assert decision("ForAnyValue:StringEquals", None) == IMPLICIT_DENY


def test_arn_like_compares_part_by_part() -> None:
    # The SNS-to-SQS example of "Condition operators": ArnLike aws:SourceArn with a wildcard in the resource part.
    doc = policy(
        {
            "Effect": "Allow",
            "Principal": {"Service": "sns.amazonaws.com"},
            "Action": "sqs:SendMessage",
            "Resource": "*",
            "Condition": {"ArnLike": {"aws:SourceArn": "arn:aws:sns:eu-central-1:123456789012:rampart-*"}},
        }
    )

    def send(source: str) -> str:
        return evaluate(
            [doc],
            Request("sqs:SendMessage", principal={"Service": "sns.amazonaws.com"}, context={"aws:SourceArn": source}),
        )

    assert send("arn:aws:sns:eu-central-1:123456789012:rampart-events") == ALLOW
    assert send("arn:aws:sns:eu-central-1:999999999999:rampart-events") == IMPLICIT_DENY
    assert send("not-an-arn") == IMPLICIT_DENY


def test_explicit_deny_overrides_allow_and_not_resource() -> None:
    # "Policy evaluation logic": an explicit deny in any policy overrides any allow.
    doc = policy(
        {"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"},
        {"Effect": "Deny", "Action": "kms:Decrypt", "NotResource": "arn:aws:kms:eu-central-1:123456789012:key/state"},
    )
    assert evaluate([doc], Request("kms:Decrypt", "arn:aws:kms:eu-central-1:123456789012:key/state")) == ALLOW
    assert evaluate([doc], Request("kms:Decrypt", "arn:aws:kms:eu-central-1:123456789012:key/other")) == EXPLICIT_DENY


def test_actions_match_case_insensitively_with_wildcards_and_not_action() -> None:
    doc = policy({"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"})
    assert evaluate([doc], Request("S3:GetObject")) == ALLOW
    assert evaluate([doc], Request("iam:CreateRole")) == IMPLICIT_DENY
    assert (
        evaluate([policy({"Effect": "Allow", "Action": "s3:Get*", "Resource": "*"})], Request("s3:getobject")) == ALLOW
    )


@pytest.mark.parametrize(
    "statement",
    [
        {"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s3:::b/${aws:username}/*"},
        {
            "Effect": "Allow",
            "Action": "s3:*",
            "Resource": "*",
            "Condition": {"DateGreaterThan": {"aws:CurrentTime": "2026-01-01T00:00:00Z"}},
        },
        {"Effect": "Allow", "NotPrincipal": {"AWS": "x"}, "Action": "s3:*"},
    ],
)
def test_what_is_not_implemented_is_refused_not_guessed(statement: dict[str, Any]) -> None:
    with pytest.raises(UnsupportedPolicy):
        evaluate(
            [policy(statement)], Request("s3:GetObject", "arn:aws:s3:::b/alice/k", context={"aws:CurrentTime": "x"})
        )
