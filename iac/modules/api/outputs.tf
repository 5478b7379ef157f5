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

output "usage_plan_ids" {
  description = "Usage plan ID by client tier (rampart keys attaches each client's key to its tier's plan)."
  value       = { for tier, plan in aws_api_gateway_usage_plan.tier : tier => plan.id }
}

output "api_keys_kms_key_arn" {
  description = "ARN of the CMK (alias/<name>-api-keys) encrypting the client key secrets <name>/api-keys/<client>."
  value       = module.api_keys_key.arn
}
