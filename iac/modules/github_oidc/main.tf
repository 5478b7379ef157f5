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

  deploy_subject = "repo:${var.github_repository}:environment:${var.github_environment}"

  # Functions plus their published versions and aliases.
  function_resources = flatten([for arn in var.function_arns : [arn, "${arn}:*"]])
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
      values   = ["repo:${var.github_repository}:environment:${var.github_environment}"]
    }
  }
}

data "aws_iam_policy_document" "plan_trust" {
  statement {
    sid     = "GitHubPullRequestsOfThisRepository"
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
      values   = ["repo:${var.github_repository}:pull_request"]
    }
  }
}

################################################################################
# Deploy role: update, publish and alias the two functions; sign their code
################################################################################

resource "aws_iam_role" "deploy" {
  name                 = "${var.name}-github-deploy"
  description          = "GitHub Actions deploy of ${var.github_repository} (environment ${var.github_environment})"
  assume_role_policy   = data.aws_iam_policy_document.deploy_trust.json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
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

  # make smoke-test reads the smoke-test API key: this one secret, decrypted only through Secrets Manager
  # and only for it (Secrets Manager puts the secret's ARN in the encryption context).
  statement {
    sid       = "ReadTheSmokeTestApiKey"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.smoke_test_api_key_secret_arn]
  }

  statement {
    sid       = "DecryptTheSmokeTestApiKeyThroughSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [var.smoke_test_api_key_kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:SecretARN"
      values   = [var.smoke_test_api_key_secret_arn]
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
# Plan role: read-only, for terraform plan on pull requests
################################################################################

resource "aws_iam_role" "plan" {
  name                 = "${var.name}-github-plan"
  description          = "GitHub Actions terraform plan for pull requests of ${var.github_repository} (read-only)"
  assume_role_policy   = data.aws_iam_policy_document.plan_trust.json
  permissions_boundary = var.permissions_boundary_arn
  max_session_duration = 3600
}

resource "aws_iam_role_policy_attachment" "plan_read_only" {
  role       = aws_iam_role.plan.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/ReadOnlyAccess"
}

data "aws_iam_policy_document" "plan_state" {
  count = var.state_bucket_name == null ? 0 : 1

  statement {
    sid       = "ReadState"
    actions   = ["s3:GetObject"]
    resources = ["arn:${local.partition}:s3:::${var.state_bucket_name}/${var.state_key_prefix}*"]
  }

  statement {
    sid       = "ListState"
    actions   = ["s3:ListBucket"]
    resources = ["arn:${local.partition}:s3:::${var.state_bucket_name}"]
  }

  # S3-native state locking writes and removes <key>.tflock even for a plan.
  statement {
    sid       = "LockState"
    actions   = ["s3:PutObject", "s3:DeleteObject"]
    resources = ["arn:${local.partition}:s3:::${var.state_bucket_name}/${var.state_key_prefix}*.tflock"]
  }

  dynamic "statement" {
    for_each = var.state_kms_key_arn == null ? [] : [var.state_kms_key_arn]

    content {
      sid       = "DecryptState"
      actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
      resources = [statement.value]
    }
  }
}

resource "aws_iam_role_policy" "plan_state" {
  count = var.state_bucket_name == null ? 0 : 1

  name   = "terraform-state-read-and-lock"
  role   = aws_iam_role.plan.id
  policy = data.aws_iam_policy_document.plan_state[0].json
}
