output "instance_identifier" {
  description = "RDS instance identifier."
  value       = aws_db_instance.this.identifier
}

output "instance_arn" {
  description = "RDS instance ARN."
  value       = aws_db_instance.this.arn
}

output "resource_id" {
  description = "RDS DbiResourceId (the stable ID in rds-db:connect ARNs)."
  value       = aws_db_instance.this.resource_id
}

output "address" {
  description = "Host name of the instance (RAMPART_DB_HOST)."
  value       = aws_db_instance.this.address
}

output "port" {
  description = "Port of the instance (RAMPART_DB_PORT)."
  value       = aws_db_instance.this.port
}

output "database_name" {
  description = "Application database name (RAMPART_DB_NAME)."
  value       = aws_db_instance.this.db_name
}

output "iam_db_user_arns" {
  description = "rds-db:connect resource ARN for each IAM database user, by user name."
  value = {
    for user in var.iam_database_users :
    user => "arn:${local.partition}:rds-db:${local.region}:${local.account_id}:dbuser:${aws_db_instance.this.resource_id}/${user}"
  }
}

output "master_user_secret_arn" {
  description = "Secrets Manager secret holding the RDS-managed master password (for the migrator only)."
  value       = try(aws_db_instance.this.master_user_secret[0].secret_arn, null)
}

output "kms_key_arn" {
  description = "ARN of the database CMK."
  value       = module.key.arn
}
