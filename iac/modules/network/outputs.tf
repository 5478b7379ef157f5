output "vpc_id" {
  description = "ID of the VPC."
  value       = aws_vpc.this.id
}

output "private_subnet_ids" {
  description = "IDs of the private subnets, in availability-zone order."
  value       = [for az in var.availability_zones : aws_subnet.private[az].id]
}

output "private_subnet_arns" {
  description = "ARNs of the private subnets."
  value       = [for az in var.availability_zones : aws_subnet.private[az].arn]
}

output "lambda_security_group_id" {
  description = "Security group for the Lambdas (egress to PostgreSQL and the endpoints only)."
  value       = aws_security_group.lambda.id
}

output "lambda_security_group_arn" {
  description = "ARN of the Lambda security group."
  value       = aws_security_group.lambda.arn
}

output "database_security_group_id" {
  description = "Security group for PostgreSQL (ingress from the Lambdas only)."
  value       = aws_security_group.database.id
}

output "vpc_endpoint_ids" {
  description = "Interface endpoint IDs by service short name."
  value       = { for service, endpoint in aws_vpc_endpoint.interface : service => endpoint.id }
}

output "flow_log_group_name" {
  description = "CloudWatch log group receiving the VPC flow logs."
  value       = aws_cloudwatch_log_group.flow_logs.name
}
