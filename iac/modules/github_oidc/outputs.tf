output "oidc_provider_arn" {
  description = "ARN of the GitHub OIDC provider."
  value       = local.provider_arn
}

output "deploy_role_arn" {
  description = "Role the deploy workflow assumes (environment-scoped)."
  value       = aws_iam_role.deploy.arn
}

output "plan_role_arn" {
  description = "Role the plan jobs assume (pull requests; deploy.yml on main): reads the state and nothing secret."
  value       = aws_iam_role.plan.arn
}

output "subjects" {
  description = "The exact sub claims each identity accepts: plan and deploy (roles of this module) and apply (the bootstrap's role must trust exactly these)."
  value       = local.subjects
}
