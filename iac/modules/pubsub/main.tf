# SNS topic -> SQS queue -> DLQ, all on one customer-managed key. The queue accepts messages only
# from this topic (aws:SourceArn) and only over TLS. What SNS cannot deliver into the queue (a KMS or
# policy mistake, the queue gone) goes to a delivery DLQ on the same key instead of being dropped.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  topic_name = "${var.name}-events"
  queue_name = "${var.name}-events"
  dlq_name   = "${var.name}-events-dlq"
  # Where SNS puts a notification it could not deliver into the queue (the subscription's redrive policy).
  delivery_dlq_name = "${var.name}-events-delivery-dlq"

  # Built from names so the key policy, the DLQ's redrive-allow policy and the queue can refer to
  # each other without a dependency cycle.
  topic_arn = "arn:${local.partition}:sns:${local.region}:${local.account_id}:${local.topic_name}"
  queue_arn = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.queue_name}"

  publisher_arns = length(var.publisher_arns) > 0 ? var.publisher_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]
}

################################################################################
# Customer-managed key for SNS and SQS
################################################################################

data "aws_iam_policy_document" "key_services" {
  # SNS must generate a data key and decrypt to deliver into the encrypted queue.
  statement {
    sid       = "SnsDeliveryToEncryptedQueue"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [local.topic_arn]
    }
  }

}

module "key" {
  source = "../kms_key"

  alias                    = "${var.name}-pubsub"
  description              = "${var.name} SNS topic and SQS queues"
  deletion_window_in_days  = var.kms_deletion_window_in_days
  service_policy_documents = [data.aws_iam_policy_document.key_services.json]
}

################################################################################
# SNS topic
################################################################################

resource "aws_sns_topic" "this" {
  name              = local.topic_name
  kms_master_key_id = module.key.arn
}

data "aws_iam_policy_document" "topic" {
  statement {
    sid       = "PublishByAllowedPrincipals"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "AWS"
      identifiers = local.publisher_arns
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.this.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sns_topic_policy" "this" {
  arn    = aws_sns_topic.this.arn
  policy = data.aws_iam_policy_document.topic.json
}

################################################################################
# SQS queue and dead-letter queue
################################################################################

resource "aws_sqs_queue" "dlq" {
  name                              = local.dlq_name
  message_retention_seconds         = 1209600 # 14 days, the SQS maximum
  kms_master_key_id                 = module.key.arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds

  redrive_allow_policy = jsonencode({
    redrivePermission = "byQueue"
    sourceQueueArns   = [local.queue_arn]
  })
}

resource "aws_sqs_queue" "this" {
  name                              = local.queue_name
  visibility_timeout_seconds        = var.visibility_timeout_seconds
  message_retention_seconds         = var.message_retention_seconds
  receive_wait_time_seconds         = 20
  kms_master_key_id                 = module.key.arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds

  redrive_policy = jsonencode({
    deadLetterTargetArn = aws_sqs_queue.dlq.arn
    maxReceiveCount     = var.max_receive_count
  })
}

data "aws_iam_policy_document" "queue" {
  statement {
    sid       = "SendFromThisTopicOnly"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.this.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.this.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "this" {
  queue_url = aws_sqs_queue.this.id
  policy    = data.aws_iam_policy_document.queue.json
}

data "aws_iam_policy_document" "dlq" {
  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.dlq.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "dlq" {
  queue_url = aws_sqs_queue.dlq.id
  policy    = data.aws_iam_policy_document.dlq.json
}

################################################################################
# Delivery DLQ: what SNS could not deliver into the queue, instead of a silent drop
################################################################################

# SNS retries a failed delivery to SQS, then moves the notification here (subscription redrive policy). It is
# encrypted with the same CMK: the key policy already lets SNS use the key for this topic only.
resource "aws_sqs_queue" "delivery_dlq" {
  #checkov:skip=CKV2_RAMPART_10:the dead-letter queue of the SNS subscription (its redrive_policy), consumed by no one, so nothing can loop; the policy recognises only DLQs of SQS queues
  name                              = local.delivery_dlq_name
  message_retention_seconds         = 1209600 # 14 days, the SQS maximum
  kms_master_key_id                 = module.key.arn
  kms_data_key_reuse_period_seconds = var.kms_data_key_reuse_period_seconds
}

data "aws_iam_policy_document" "delivery_dlq" {
  statement {
    sid       = "SnsRedriveFromThisTopicOnly"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.delivery_dlq.arn]

    principals {
      type        = "Service"
      identifiers = ["sns.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "aws:SourceArn"
      values   = [aws_sns_topic.this.arn]
    }
  }

  statement {
    sid       = "DenyInsecureTransport"
    effect    = "Deny"
    actions   = ["sqs:*"]
    resources = [aws_sqs_queue.delivery_dlq.arn]

    principals {
      type        = "*"
      identifiers = ["*"]
    }

    condition {
      test     = "Bool"
      variable = "aws:SecureTransport"
      values   = ["false"]
    }
  }
}

resource "aws_sqs_queue_policy" "delivery_dlq" {
  queue_url = aws_sqs_queue.delivery_dlq.id
  policy    = data.aws_iam_policy_document.delivery_dlq.json
}

resource "aws_sns_topic_subscription" "queue" {
  topic_arn            = aws_sns_topic.this.arn
  protocol             = "sqs"
  endpoint             = aws_sqs_queue.this.arn
  raw_message_delivery = true # the SQS body is the event JSON itself (docs/contracts.md)

  # A notification SNS could not deliver into the queue (after its retries) goes to the delivery DLQ, where an
  # alarm sees it (iac/modules/monitoring), instead of being dropped.
  redrive_policy = jsonencode({ deadLetterTargetArn = aws_sqs_queue.delivery_dlq.arn })

  depends_on = [aws_sqs_queue_policy.this, aws_sqs_queue_policy.delivery_dlq]
}
