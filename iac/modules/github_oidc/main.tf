# GitHub Actions federation: no long-lived AWS keys. Tokens are accepted only for audience
# sts.amazonaws.com and for this exact repository (deploy: one GitHub environment; plan: pull requests).

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  issuer_host  = "token.actions.githubusercontent.com"
  provider_arn = var.create_oidc_provider ? aws_iam_openid_connect_provider.github[0].arn : data.aws_iam_openid_connect_provider.github[0].arn

  # One identity per purpose, each trusted by subjects no other role accepts (GitHub's default `sub`
  # template; `repo:` is followed by var.github_repository in the form the repository's tokens carry:
  # owner/name, or owner@<owner_id>/name@<repo_id> with immutable subject claims):
  #   plan   - pull requests, and the plan job of deploy.yml on the main branch (reads nothing secret)
  #   deploy - jobs in the deploy environment (deploy.yml's deploy job)
  #   apply  - jobs in the apply environment (deploy.yml's apply job); the role is the bootstrap's
  #            (docs/terraform.md), this module only names its subject so nothing here can accept it.
  # The trust documents below spell the same values out, so policy checks see them in the code; the
  # emulator proofs assert the applied trusts equal this map (output `subjects`).
  subject_prefix = "repo:${var.github_repository}"
  subjects = {
    plan   = ["${local.subject_prefix}:pull_request", "${local.subject_prefix}:ref:refs/heads/${var.github_main_branch}"]
    deploy = ["${local.subject_prefix}:environment:${var.github_environment}"]
    apply  = ["${local.subject_prefix}:environment:${var.github_apply_environment}"]
  }

  # Functions plus their published versions and aliases.
  function_resources = flatten([for arn in var.function_arns : [arn, "${arn}:*"]])

  # The smoke-test client's key secret (created by `rampart keys create --client smoke-test`): Secrets
  # Manager appends a dash and six random characters to the name in the ARN.
  smoke_test_key_arn_pattern = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${var.name}/api-keys/smoke-test-??????"

  state_bucket_arn = var.state_bucket_name == null ? null : "arn:${local.partition}:s3:::${var.state_bucket_name}"
}

resource "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 1 : 0

  url            = "https://${local.issuer_host}"
  client_id_list = ["sts.amazonaws.com"]
  # No thumbprint_list: IAM validates GitHub's certificate against its own trusted CAs.
}

data "aws_iam_openid_connect_provider" "github" {
  count = var.create_oidc_provider ? 0 : 1

  url = "https://${local.issuer_host}"
}

data "aws_iam_policy_document" "deploy_trust" {
  statement {
    sid     = "GitHubDeployEnvironmentOfThisRepository"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values   = ["repo:${var.github_repository}:environment:${var.github_environment}"] # = local.subjects.deploy
    }
  }
}

data "aws_iam_policy_document" "plan_trust" {
  statement {
    sid     = "GitHubPullRequestsAndMainPlansOfThisRepository"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "token.actions.githubusercontent.com:sub"
      values = [ # = local.subjects.plan
        "repo:${var.github_repository}:pull_request",
        "repo:${var.github_repository}:ref:refs/heads/${var.github_main_branch}",
      ]
    }
  }
}

################################################################################
# Deploy role: update, publish and alias the two functions; sign their code
################################################################################

resource "aws_iam_role" "deploy" {
  name                 = "${var.name}-github-deploy"
  description          = "GitHub Actions deploy of ${var.github_repository} (environment ${var.github_environment} only)"
  assume_role_policy   = data.aws_iam_policy_document.deploy_trust.json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600

  lifecycle {
    # No two identities share a subject: a job could otherwise pick the stronger role by asking for its ARN.
    precondition {
      condition     = length(distinct(flatten(values(local.subjects)))) == length(flatten(values(local.subjects)))
      error_message = "Two identities share an OIDC subject: github_environment and github_apply_environment must differ."
    }
  }
}

data "aws_iam_policy_document" "deploy" {
  statement {
    sid = "UpdatePublishAliasTheFunctions"
    actions = [
      "lambda:UpdateFunctionCode",
      "lambda:PublishVersion",
      "lambda:CreateAlias",
      "lambda:UpdateAlias",
      "lambda:GetAlias",
      "lambda:GetFunction",
      "lambda:GetFunctionConfiguration",
    ]
    resources = local.function_resources
  }

  statement {
    sid       = "StartSigningJobsWithTheProfile"
    actions   = ["signer:StartSigningJob", "signer:GetSigningProfile"]
    resources = [var.signing_profile_arn]
  }

  statement {
    sid       = "FollowSigningJobs"
    actions   = ["signer:DescribeSigningJob"]
    resources = ["arn:${local.partition}:signer:${local.region}:${local.account_id}:/signing-jobs/*"]
  }

  # Signer reads the unsigned package and writes the signed one with the caller's permissions;
  # Lambda fetches the signed package with them too.
  statement {
    sid       = "WritePackages"
    actions   = ["s3:PutObject"]
    resources = ["${var.artifact_bucket_arn}/unsigned/*", "${var.artifact_bucket_arn}/signed/*"]
  }

  statement {
    sid       = "ReadPackages"
    actions   = ["s3:GetObject", "s3:GetObjectVersion"]
    resources = ["${var.artifact_bucket_arn}/unsigned/*", "${var.artifact_bucket_arn}/signed/*"]
  }

  statement {
    sid       = "ListArtifactBucket"
    actions   = ["s3:ListBucket", "s3:GetBucketVersioning"]
    resources = [var.artifact_bucket_arn]
  }

  # make smoke-test reads the smoke-test client's API key: this one secret, decrypted only through Secrets
  # Manager and only for it (Secrets Manager puts the secret's ARN in the encryption context).
  statement {
    sid       = "ReadTheSmokeTestApiKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [local.smoke_test_key_arn_pattern]
  }

  statement {
    sid       = "DecryptTheSmokeTestApiKeyThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [var.api_keys_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }

    # Encryption-context keys are strings (Secrets Manager's documentation compares this one with String
    # operators; parliament flags an ARN operator on it as a type mismatch).
    condition {
      test     = "StringLike"
      variable = "kms:EncryptionContext:SecretARN"
      values   = [local.smoke_test_key_arn_pattern]
    }
  }

  statement {
    sid       = "UseTheArtifactKeyThroughS3"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.artifact_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "deploy" {
  name   = "deploy-functions"
  role   = aws_iam_role.deploy.id
  policy = data.aws_iam_policy_document.deploy.json
}

################################################################################
# Plan role: terraform plan of pull requests and of main, reading nothing secret
################################################################################

resource "aws_iam_role" "plan" {
  name                 = "${var.name}-github-plan"
  description          = "GitHub Actions terraform plan of ${var.github_repository} (pull requests and main; reads nothing secret)"
  assume_role_policy   = data.aws_iam_policy_document.plan_trust.json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
}

# `make terraform-plan` runs `terraform plan -refresh=false -lock=false`: it computes the change from the
# recorded state and the code, reading no live resource (the refresh of the cursor key's secret version
# would call secretsmanager:GetSecretValue) and writing no lock. What it reads: this environment's state
# object (no secret is in it: API keys live outside Terraform, the RDS master password is RDS-managed, the
# cursor key is write-only) and the data sources of the root (caller identity, region, partition, and the
# account's GitHub OIDC provider when the bootstrap owns it).
data "aws_iam_policy_document" "plan" {
  statement {
    sid       = "FindTheGitHubOidcProvider"
    actions   = ["iam:GetOpenIDConnectProvider"]
    resources = ["arn:${local.partition}:iam::${local.account_id}:oidc-provider/${local.issuer_host}"]
  }

  statement {
    sid       = "ListOidcProvidersNoResourceLevel"
    actions   = ["iam:ListOpenIDConnectProviders"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.state_bucket_name == null ? [] : [1]

    content {
      sid       = "ReadThisEnvironmentsState"
      actions   = ["s3:GetObject"]
      resources = ["${local.state_bucket_arn}/${var.state_key}"]
    }
  }

  dynamic "statement" {
    for_each = var.state_bucket_name == null ? [] : [1]

    content {
      sid       = "ListThisEnvironmentsStateKey"
      actions   = ["s3:ListBucket"]
      resources = [local.state_bucket_arn]

      condition {
        test     = "StringEquals"
        variable = "s3:prefix"
        values   = [var.state_key]
      }
    }
  }

  dynamic "statement" {
    for_each = var.state_kms_key_arn == null ? [] : [var.state_kms_key_arn]

    content {
      sid       = "DecryptTheStateThroughS3"
      actions   = ["kms:Decrypt"]
      resources = [statement.value]

      condition {
        test     = "StringEquals"
        variable = "kms:ViaService"
        values   = ["s3.${local.region}.amazonaws.com"]
      }
    }
  }

  # Explicit denies: whatever another policy (or a widened boundary) might grant, this role never reads a
  # key value, a secret value or anything a key other than the state's protects, and never writes state
  # or its lock.
  statement {
    sid       = "NeverReadApiKeyValues"
    effect    = "Deny"
    actions   = ["apigateway:GET"]
    resources = ["arn:${local.partition}:apigateway:${local.region}::/apikeys", "arn:${local.partition}:apigateway:${local.region}::/apikeys/*"]
  }

  statement {
    sid       = "NeverReadSecretValues"
    effect    = "Deny"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:BatchGetSecretValue"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.state_kms_key_arn == null ? [] : [var.state_kms_key_arn]

    content {
      sid           = "NeverDecryptWithAnyKeyButTheStates"
      effect        = "Deny"
      actions       = ["kms:Decrypt", "kms:ReEncryptFrom"]
      not_resources = [statement.value]
    }
  }

  dynamic "statement" {
    for_each = var.state_kms_key_arn == null ? [1] : []

    content {
      sid       = "NeverDecryptWithAnyKey"
      effect    = "Deny"
      actions   = ["kms:Decrypt", "kms:ReEncryptFrom"]
      resources = ["*"]
    }
  }

  statement {
    sid       = "NeverWriteStateOrItsLock"
    effect    = "Deny"
    actions   = ["s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:PutObjectAcl"]
    resources = ["*"]
  }
}

resource "aws_iam_role_policy" "plan" {
  name   = "terraform-plan-read-nothing-secret"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan.json
}
