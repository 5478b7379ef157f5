output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider."
  value       = local.provider_arn
}

output "deploy_role_arn" {
  description = "Role the deploy workflow assumes (environment-scoped)."
  value       = aws_iam_role.deploy.arn
}

output "plan_role_arn" {
  description = "Read-only role the pull-request plan workflow assumes."
  value       = aws_iam_role.plan.arn
}

output "deploy_subject" {
  description = "The exact sub claim the deploy role trusts."
  value       = local.deploy_subject
}
