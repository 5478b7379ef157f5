# One customer-managed key with rotation, an alias and a key policy: the account root statement
# (so IAM policies decide who uses the key, as in the AWS default key policy) plus the service
# statements the calling module passes in.

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

data "aws_iam_policy_document" "this" {
  #checkov:skip=CKV_AWS_109:key policy: Resource "*" means this key only; the account-root statement delegates to IAM policies (AWS default key policy)
  #checkov:skip=CKV_AWS_111:key policy: Resource "*" means this key only; the account-root statement delegates to IAM policies (AWS default key policy)
  #checkov:skip=CKV_AWS_356:key policy: Resource "*" means this key only; the account-root statement delegates to IAM policies (AWS default key policy)
  source_policy_documents = var.service_policy_documents

  statement {
    sid       = "AccountRootDelegatesToIam"
    actions   = ["kms:*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root"]
    }
  }
}

resource "aws_kms_key" "this" {
  description             = var.description
  enable_key_rotation     = true
  rotation_period_in_days = var.rotation_period_in_days
  deletion_window_in_days = var.deletion_window_in_days
  policy                  = data.aws_iam_policy_document.this.json
}

resource "aws_kms_alias" "this" {
  name          = "alias/${var.alias}"
  target_key_id = aws_kms_key.this.key_id
}
