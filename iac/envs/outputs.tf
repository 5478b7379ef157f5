output "api_url" {
  description = "Base URL of the API (routes under /v1; send x-api-key)."
  value       = module.api.invoke_url
}

output "topic_arn" {
  description = "SNS topic producers publish events to."
  value       = module.pubsub.topic_arn
}

output "queue_url" {
  description = "URL of the events queue."
  value       = module.pubsub.queue_url
}

output "dlq_url" {
  description = "URL of the dead-letter queue."
  value       = module.pubsub.dlq_url
}

output "delivery_dlq_url" {
  description = "URL of the delivery DLQ: notifications SNS could not deliver into the events queue."
  value       = module.pubsub.delivery_dlq_url
}

output "ingest_function_name" {
  description = "Name of the ingest function."
  value       = module.functions.ingest_function_name
}

output "api_function_name" {
  description = "Name of the API function."
  value       = module.functions.api_function_name
}

output "artifact_bucket_name" {
  description = "Bucket for unsigned and signed deployment packages."
  value       = module.functions.artifact_bucket_name
}

output "signing_profile_name" {
  description = "AWS Signer profile for deployment packages."
  value       = module.functions.signing_profile_name
}

output "db_address" {
  description = "PostgreSQL host name."
  value       = module.database.address
}

output "db_instance_identifier" {
  description = "RDS instance identifier."
  value       = module.database.instance_identifier
}

output "db_master_user_secret_arn" {
  description = "RDS-managed master password secret (for migrations only)."
  value       = module.database.master_user_secret_arn
}

output "github_deploy_role_arn" {
  description = "Role for the deploy workflow (AWS_DEPLOY_ROLE_ARN)."
  value       = module.github_oidc.deploy_role_arn
}

output "github_plan_role_arn" {
  description = "Role of the plan jobs (AWS_PLAN_ROLE_ARN): pull requests and deploy.yml on main; reads the state and nothing secret."
  value       = module.github_oidc.plan_role_arn
}

output "web_acl_arn" {
  description = "WAFv2 web ACL protecting the API stage."
  value       = module.api.web_acl_arn
}

output "alarm_topic_arn" {
  description = "SNS topic receiving the alarms."
  value       = module.monitoring.alarm_topic_arn
}

output "dashboard_name" {
  description = "CloudWatch dashboard."
  value       = module.monitoring.dashboard_name
}

output "github_subjects" {
  description = "The exact OIDC sub claims each identity accepts (plan, deploy; apply: what the bootstrap's apply role must trust)."
  value       = module.github_oidc.subjects
}

output "api_usage_plan_ids" {
  description = "Usage plan ID by client tier (rampart keys create --tier <tier>)."
  value       = module.api.usage_plan_ids
}

output "api_keys_kms_key_arn" {
  description = "CMK of the client key secrets <name>-<environment>/api-keys/<client> (alias/<name>-<environment>-api-keys)."
  value       = module.api.api_keys_kms_key_arn
}
