output "ingest_function_name" {
  description = "Name of the ingest function."
  value       = aws_lambda_function.ingest.function_name
}

output "ingest_function_arn" {
  description = "ARN of the ingest function."
  value       = aws_lambda_function.ingest.arn
}

output "api_function_name" {
  description = "Name of the API function."
  value       = aws_lambda_function.api.function_name
}

output "api_function_arn" {
  description = "ARN of the API function."
  value       = aws_lambda_function.api.arn
}

output "api_live_invoke_arn" {
  description = "Invoke ARN of the API function's live alias (for the API Gateway integration)."
  value       = aws_lambda_alias.api_live.invoke_arn
}

output "live_alias_name" {
  description = "Name of the alias serving traffic on both functions."
  value       = var.live_alias_name
}

output "ingest_role_arn" {
  description = "Execution role of the ingest function."
  value       = aws_iam_role.this["ingest"].arn
}

output "api_role_arn" {
  description = "Execution role of the API function."
  value       = aws_iam_role.this["api"].arn
}

output "event_source_mapping_uuid" {
  description = "UUID of the SQS event source mapping."
  value       = aws_lambda_event_source_mapping.ingest.uuid
}

output "cursor_key_secret_arn" {
  description = "Secrets Manager secret holding the API cursor key (RAMPART_CURSOR_KEY_SECRET_ARN)."
  value       = aws_secretsmanager_secret.cursor_key.arn
}

output "artifact_bucket_name" {
  description = "Bucket holding unsigned and signed deployment packages."
  value       = aws_s3_bucket.artifacts.id
}

output "artifact_access_log_bucket_name" {
  description = "Bucket receiving the artifact bucket's S3 server access logs (prefix s3-access/)."
  value       = aws_s3_bucket.artifact_logs.id
}

output "artifact_bucket_arn" {
  description = "ARN of the artifact bucket."
  value       = aws_s3_bucket.artifacts.arn
}

output "signing_profile_name" {
  description = "AWS Signer profile that signs the deployment packages."
  value       = aws_signer_signing_profile.this.name
}

output "signing_profile_arn" {
  description = "ARN of the AWS Signer profile."
  value       = aws_signer_signing_profile.this.arn
}

output "code_signing_config_arn" {
  description = "ARN of the enforced Lambda code-signing config."
  value       = aws_lambda_code_signing_config.this.arn
}

output "kms_key_arn" {
  description = "ARN of the functions CMK (environment, logs, artifacts, cursor key)."
  value       = module.key.arn
}
