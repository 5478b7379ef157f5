# PostgreSQL in the private subnets: TLS forced, IAM database authentication for the application
# roles, the master password generated and kept by RDS in Secrets Manager (never in code or state).

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  identifier     = "${var.name}-postgres"
  log_group_base = "/aws/rds/instance/${local.identifier}"
  log_exports    = ["postgresql", "upgrade"]
}

################################################################################
# Customer-managed key: storage, Performance Insights, master secret, exported logs
################################################################################

data "aws_iam_policy_document" "key_services" {
  statement {
    sid       = "CloudWatchLogsExportedDatabaseLogs"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnEquals"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values   = [for log in local.log_exports : "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.log_group_base}/${log}"]
    }
  }
}

module "key" {
  source = "../kms_key"

  alias                    = "${var.name}-database"
  description              = "${var.name} PostgreSQL storage, Performance Insights, master secret and logs"
  deletion_window_in_days  = var.kms_deletion_window_in_days
  service_policy_documents = [data.aws_iam_policy_document.key_services.json]
}

# Created before the instance so RDS exports into encrypted groups with a finite retention.
resource "aws_cloudwatch_log_group" "exports" {
  for_each = toset(local.log_exports)

  name              = "${local.log_group_base}/${each.value}"
  retention_in_days = var.log_retention_in_days
  kms_key_id        = module.key.arn
}

################################################################################
# Placement and parameters
################################################################################

resource "aws_db_subnet_group" "this" {
  name        = local.identifier
  description = "Private subnets of ${var.name}"
  subnet_ids  = var.subnet_ids
}

resource "aws_db_parameter_group" "this" {
  name_prefix = "${local.identifier}-pg${var.engine_major_version}-"
  family      = "postgres${var.engine_major_version}"
  description = "${var.name}: TLS only, DDL logged, no statement values in logs"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  # No event payload may reach the log (exported to CloudWatch). psycopg2 writes every value into the statement
  # text, so any setting that logs statement text logs payloads. The same settings run in the local twin
  # (src/rampart/local/postgres.py NO_VALUES_IN_LOGS; tests/integration/test_database_logs.py keeps them equal).
  # DDL only: migrations hold no event data (application roles log in with IAM tokens, so no password DDL either).
  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  # Never log slow statements' text; slow queries are found with Performance Insights instead.
  parameter {
    name  = "log_min_duration_statement"
    value = "-1"
  }

  # A failing statement's text is logged only on a PANIC (a failing batch would otherwise be logged whole).
  parameter {
    name  = "log_min_error_statement"
    value = "panic"
  }

  # Errors without DETAIL/CONTEXT: "Failing row contains (...)", "Key (...) already exists" and JSON parse
  # contexts quote the values.
  parameter {
    name  = "log_error_verbosity"
    value = "terse"
  }

  # Bind parameters (extended protocol, should a driver ever use it) are never quoted either.
  parameter {
    name  = "log_parameter_max_length"
    value = "0"
  }

  parameter {
    name  = "log_parameter_max_length_on_error"
    value = "0"
  }

  parameter {
    name  = "log_connections"
    value = "1"
  }

  parameter {
    name  = "log_disconnections"
    value = "1"
  }

  lifecycle {
    create_before_destroy = true
  }
}

################################################################################
# Enhanced monitoring role
################################################################################

data "aws_iam_policy_document" "monitoring_assume" {
  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "monitoring" {
  name                 = "${local.identifier}-monitoring"
  assume_role_policy   = data.aws_iam_policy_document.monitoring_assume.json
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "monitoring" {
  role       = aws_iam_role.monitoring.name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

################################################################################
# The instance
################################################################################

resource "aws_db_instance" "this" {
  identifier     = local.identifier
  engine         = "postgres"
  engine_version = var.engine_major_version # latest minor; auto_minor_version_upgrade keeps it current
  instance_class = var.instance_class
  db_name        = var.database_name
  port           = var.port

  username                      = var.master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = module.key.arn

  iam_database_authentication_enabled = true
  publicly_accessible                 = false
  db_subnet_group_name                = aws_db_subnet_group.this.name
  vpc_security_group_ids              = var.security_group_ids
  parameter_group_name                = aws_db_parameter_group.this.name
  ca_cert_identifier                  = var.ca_cert_identifier
  network_type                        = "IPV4"

  storage_type          = "gp3"
  allocated_storage     = var.allocated_storage_gb
  max_allocated_storage = var.max_allocated_storage_gb
  storage_encrypted     = true
  kms_key_id            = module.key.arn

  multi_az                   = var.multi_az
  backup_retention_period    = var.backup_retention_days
  backup_window              = var.backup_window
  maintenance_window         = var.maintenance_window
  copy_tags_to_snapshot      = true
  delete_automated_backups   = false
  deletion_protection        = var.deletion_protection
  skip_final_snapshot        = false
  final_snapshot_identifier  = "${local.identifier}-final"
  auto_minor_version_upgrade = true
  apply_immediately          = var.apply_immediately

  performance_insights_enabled          = true
  performance_insights_kms_key_id       = module.key.arn
  performance_insights_retention_period = var.performance_insights_retention_days

  monitoring_interval = var.monitoring_interval_seconds
  monitoring_role_arn = aws_iam_role.monitoring.arn

  enabled_cloudwatch_logs_exports = local.log_exports

  depends_on = [aws_cloudwatch_log_group.exports, aws_iam_role_policy_attachment.monitoring]
}
