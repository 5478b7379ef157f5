output "rest_api_id" {
  description = "ID of the REST API."
  value       = aws_api_gateway_rest_api.this.id
}

output "rest_api_name" {
  description = "Name of the REST API (the ApiName metric dimension)."
  value       = aws_api_gateway_rest_api.this.name
}

output "stage_name" {
  description = "Name of the stage."
  value       = aws_api_gateway_stage.this.stage_name
}

output "stage_arn" {
  description = "ARN of the stage (associated with the web ACL)."
  value       = aws_api_gateway_stage.this.arn
}

output "invoke_url" {
  description = "Base URL of the stage; routes live under /v1."
  value       = aws_api_gateway_stage.this.invoke_url
}

output "api_key_ids" {
  description = "API key IDs by client name, smoke-test included (IDs only; values are never output)."
  value = merge(
    { for client, key in aws_api_gateway_api_key.client : client => key.id },
    { (local.smoke_test_client) = aws_api_gateway_api_key.smoke_test.id },
  )
}

output "smoke_test_api_key_secret_arn" {
  description = "ARN of the Secrets Manager secret holding the smoke-test API key (RAMPART_API_KEY_SECRET_ID)."
  value       = aws_secretsmanager_secret.smoke_test_api_key.arn
}

output "secrets_kms_key_arn" {
  description = "ARN of the CMK encrypting the smoke-test API key secret."
  value       = module.secrets_key.arn
}

output "usage_plan_id" {
  description = "ID of the usage plan."
  value       = aws_api_gateway_usage_plan.this.id
}

output "web_acl_arn" {
  description = "ARN of the WAFv2 web ACL."
  value       = aws_wafv2_web_acl.this.arn
}

output "web_acl_name" {
  description = "Name of the WAFv2 web ACL (the WebACL metric dimension)."
  value       = aws_wafv2_web_acl.this.name
}

output "access_log_group_name" {
  description = "CloudWatch log group of the access logs."
  value       = aws_cloudwatch_log_group.access.name
}
