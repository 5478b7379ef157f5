variable "name" {
  description = "Name prefix for every resource (e.g. rampart-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "ingest_zip_path" {
  description = "Path of dist/lambda/ingest.zip built by make package."
  type        = string

  validation {
    condition     = endswith(var.ingest_zip_path, ".zip")
    error_message = "ingest_zip_path must point to a .zip file."
  }
}

variable "api_zip_path" {
  description = "Path of dist/lambda/api.zip built by make package."
  type        = string

  validation {
    condition     = endswith(var.api_zip_path, ".zip")
    error_message = "api_zip_path must point to a .zip file."
  }
}

variable "subnet_ids" {
  description = "Private subnets the functions attach to."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "Attach the functions to subnets in at least two availability zones."
  }
}

variable "security_group_ids" {
  description = "Security groups of the functions (egress to PostgreSQL and the endpoints only)."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) >= 1
    error_message = "Give at least one security group."
  }
}

variable "db_host" {
  description = "PostgreSQL host name (RAMPART_DB_HOST)."
  type        = string
}

variable "db_port" {
  description = "PostgreSQL port (RAMPART_DB_PORT)."
  type        = number
  default     = 5432
}

variable "db_name" {
  description = "Database name (RAMPART_DB_NAME)."
  type        = string
  default     = "rampart"
}

variable "db_sslrootcert" {
  description = "Path of the RDS CA bundle inside the deployment package (RAMPART_DB_SSLROOTCERT)."
  type        = string
  default     = "/var/task/rampart/certs/rds-ca.pem"
}

variable "db_statement_timeout_ms" {
  description = "Statement timeout the functions set on their sessions."
  type        = number
  default     = 5000

  validation {
    condition     = var.db_statement_timeout_ms >= 100 && var.db_statement_timeout_ms <= 60000
    error_message = "db_statement_timeout_ms must be between 100 and 60000."
  }
}

variable "ingest_db_user" {
  description = "PostgreSQL role of the ingest function."
  type        = string
  default     = "rampart_ingest"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.ingest_db_user))
    error_message = "ingest_db_user must be a PostgreSQL role name."
  }
}

variable "api_db_user" {
  description = "PostgreSQL role of the API function."
  type        = string
  default     = "rampart_api"

  validation {
    condition     = can(regex("^[a-z_][a-z0-9_]{0,62}$", var.api_db_user))
    error_message = "api_db_user must be a PostgreSQL role name."
  }
}

variable "db_resource_id" {
  description = "DbiResourceId of the RDS instance; rds-db:connect is granted on exactly <id>/<user> for each function."
  type        = string

  validation {
    condition     = can(regex("^db-[A-Za-z0-9]+$", var.db_resource_id))
    error_message = "db_resource_id must be an RDS DbiResourceId (db-...)."
  }
}

variable "live_alias_name" {
  description = "Alias that serves traffic; the deploy workflow moves it to each signed release."
  type        = string
  default     = "live"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{0,63}$", var.live_alias_name))
    error_message = "live_alias_name must be a lowercase alias name."
  }
}

variable "queue_arn" {
  description = "ARN of the SQS queue the ingest function consumes."
  type        = string
}

variable "dlq_arn" {
  description = "ARN of the dead-letter queue."
  type        = string
}

variable "dlq_url" {
  description = "URL of the dead-letter queue (RAMPART_DLQ_URL)."
  type        = string
}

variable "queue_kms_key_arn" {
  description = "ARN of the CMK of the queue and DLQ."
  type        = string
}

variable "ingest_memory_mb" {
  description = "Memory of the ingest function."
  type        = number
  default     = 512

  validation {
    condition     = var.ingest_memory_mb >= 128 && var.ingest_memory_mb <= 10240
    error_message = "ingest_memory_mb must be between 128 and 10240."
  }
}

variable "api_memory_mb" {
  description = "Memory of the API function."
  type        = number
  default     = 512

  validation {
    condition     = var.api_memory_mb >= 128 && var.api_memory_mb <= 10240
    error_message = "api_memory_mb must be between 128 and 10240."
  }
}

variable "ingest_timeout_seconds" {
  description = "Timeout of the ingest function; the queue visibility timeout must be at least six times this."
  type        = number
  default     = 30

  validation {
    condition     = var.ingest_timeout_seconds >= 3 && var.ingest_timeout_seconds <= 900
    error_message = "ingest_timeout_seconds must be between 3 and 900."
  }
}

variable "api_timeout_seconds" {
  description = "Timeout of the API function (API Gateway gives up after 29 s)."
  type        = number
  default     = 10

  validation {
    condition     = var.api_timeout_seconds >= 3 && var.api_timeout_seconds <= 29
    error_message = "api_timeout_seconds must be between 3 and 29."
  }
}

variable "ingest_reserved_concurrency" {
  description = "Reserved concurrency of the ingest function (caps database connections)."
  type        = number
  default     = 10

  validation {
    condition     = var.ingest_reserved_concurrency >= 2
    error_message = "ingest_reserved_concurrency must be at least 2 (the SQS event source minimum concurrency)."
  }
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrency of the API function (caps database connections)."
  type        = number
  default     = 20

  validation {
    condition     = var.api_reserved_concurrency >= 1
    error_message = "api_reserved_concurrency must be at least 1."
  }
}

variable "batch_size" {
  description = "Records per ingest invocation."
  type        = number
  default     = 100

  validation {
    condition     = var.batch_size >= 1 && var.batch_size <= 10000
    error_message = "batch_size must be between 1 and 10000."
  }
}

variable "maximum_batching_window_in_seconds" {
  description = "How long the event source waits to fill a batch (needed when batch_size > 10)."
  type        = number
  default     = 5

  validation {
    condition     = var.maximum_batching_window_in_seconds >= 0 && var.maximum_batching_window_in_seconds <= 300
    error_message = "maximum_batching_window_in_seconds must be between 0 and 300."
  }
}

variable "maximum_concurrency" {
  description = "Maximum concurrent ingest invocations from the queue (keep below the reserved concurrency)."
  type        = number
  default     = 5

  validation {
    condition     = var.maximum_concurrency >= 2 && var.maximum_concurrency <= 1000
    error_message = "maximum_concurrency must be between 2 and 1000."
  }
}

variable "log_level" {
  description = "Powertools log level."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the function log groups."
  type        = number
  default     = 365

  validation {
    condition     = var.log_retention_in_days >= 365
    error_message = "Keep function logs for at least one year."
  }
}

variable "cursor_key_version" {
  description = "Bump to rotate the API cursor key: a new key becomes current, the replaced one stays valid as AWSPREVIOUS."
  type        = number
  default     = 1

  validation {
    condition     = var.cursor_key_version >= 1 && floor(var.cursor_key_version) == var.cursor_key_version
    error_message = "cursor_key_version must be a positive integer."
  }
}

variable "secret_recovery_window_in_days" {
  description = "Days a deleted secret can still be restored."
  type        = number
  default     = 30

  validation {
    condition     = var.secret_recovery_window_in_days >= 7 && var.secret_recovery_window_in_days <= 30
    error_message = "secret_recovery_window_in_days must be between 7 and 30."
  }
}

variable "signature_validity_months" {
  description = "How long a code signature made with the Signer profile stays valid."
  type        = number
  default     = 60

  validation {
    condition     = var.signature_validity_months >= 1 && var.signature_validity_months <= 135
    error_message = "signature_validity_months must be between 1 and 135."
  }
}

variable "artifact_noncurrent_days" {
  description = "Days superseded artifact versions are kept (rollback window)."
  type        = number
  default     = 90

  validation {
    condition     = var.artifact_noncurrent_days >= 7
    error_message = "Keep superseded artifacts at least 7 days."
  }
}

variable "artifact_access_log_retention_days" {
  description = "Days the artifact bucket's server access logs are kept (who read or replaced a deployment package)."
  type        = number
  default     = 400

  validation {
    condition     = var.artifact_access_log_retention_days >= 90
    error_message = "Keep the artifact bucket's access logs at least 90 days."
  }
}

variable "artifacts_force_destroy" {
  description = "Allow destroying the artifact bucket with its objects (never for prod)."
  type        = bool
  default     = false
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the CMK is deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.kms_deletion_window_in_days >= 7 && var.kms_deletion_window_in_days <= 30
    error_message = "kms_deletion_window_in_days must be between 7 and 30."
  }
}

variable "permissions_boundary_arn" {
  description = "Managed policy set as the permissions boundary of every IAM role this module creates (null: none)."
  type        = string
  default     = null

  validation {
    condition     = var.permissions_boundary_arn == null || can(regex("^arn:aws[a-z-]*:iam::[0-9]{12}:policy/[A-Za-z0-9+=,.@_/-]+$", var.permissions_boundary_arn))
    error_message = "permissions_boundary_arn must be an IAM managed policy ARN."
  }
}
