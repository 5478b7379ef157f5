output "topic_arn" {
  description = "ARN of the SNS topic producers publish events to."
  value       = aws_sns_topic.this.arn
}

output "topic_name" {
  description = "Name of the SNS topic (TopicName dimension of its metrics)."
  value       = aws_sns_topic.this.name
}

output "queue_arn" {
  description = "ARN of the SQS queue the ingest Lambda consumes."
  value       = aws_sqs_queue.this.arn
}

output "queue_url" {
  description = "URL of the SQS queue."
  value       = aws_sqs_queue.this.id
}

output "queue_name" {
  description = "Name of the SQS queue."
  value       = aws_sqs_queue.this.name
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "dlq_url" {
  description = "URL of the dead-letter queue (RAMPART_DLQ_URL)."
  value       = aws_sqs_queue.dlq.id
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "delivery_dlq_arn" {
  description = "ARN of the delivery DLQ (notifications SNS could not deliver into the queue)."
  value       = aws_sqs_queue.delivery_dlq.arn
}

output "delivery_dlq_url" {
  description = "URL of the delivery DLQ."
  value       = aws_sqs_queue.delivery_dlq.id
}

output "delivery_dlq_name" {
  description = "Name of the delivery DLQ."
  value       = aws_sqs_queue.delivery_dlq.name
}

output "kms_key_arn" {
  description = "ARN of the CMK encrypting the topic and the three queues."
  value       = module.key.arn
}

output "subscription_arn" {
  description = "ARN of the topic -> queue subscription."
  value       = aws_sns_topic_subscription.queue.arn
}
