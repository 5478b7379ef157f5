variable "name" {
  description = "Name prefix for every resource (e.g. rampart-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "subnet_ids" {
  description = "Private subnet IDs for the DB subnet group (at least two availability zones)."
  type        = list(string)

  validation {
    condition     = length(var.subnet_ids) >= 2
    error_message = "An RDS subnet group needs subnets in at least two availability zones."
  }
}

variable "security_group_ids" {
  description = "Security groups of the instance (ingress 5432 from the Lambdas only)."
  type        = list(string)

  validation {
    condition     = length(var.security_group_ids) >= 1
    error_message = "Give at least one security group."
  }
}

variable "engine_major_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"

  validation {
    condition     = contains(["16", "17"], var.engine_major_version)
    error_message = "engine_major_version must be 16 or 17."
  }
}

variable "instance_class" {
  description = "RDS instance class (Graviton classes recommended)."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.instance_class))
    error_message = "instance_class must look like db.t4g.medium."
  }
}

variable "database_name" {
  description = "Name of the application database (RAMPART_DB_NAME)."
  type        = string
  default     = "rampart"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,62}$", var.database_name))
    error_message = "database_name must be a lowercase PostgreSQL identifier."
  }
}

variable "port" {
  description = "TCP port of PostgreSQL."
  type        = number
  default     = 5432

  validation {
    condition     = var.port >= 1150 && var.port <= 65535
    error_message = "port must be between 1150 and 65535 (RDS range)."
  }
}

variable "master_username" {
  description = "Master user name. Its password is generated and rotated by RDS in Secrets Manager."
  type        = string
  default     = "rampart_admin"

  validation {
    condition     = can(regex("^[a-z][a-z0-9_]{0,15}$", var.master_username)) && !contains(["postgres", "admin", "rdsadmin"], var.master_username)
    error_message = "master_username must be a lowercase identifier of at most 16 characters and not a reserved name."
  }
}

variable "iam_database_users" {
  description = "PostgreSQL roles that log in with IAM authentication; an rds-db:connect ARN is output for each."
  type        = list(string)
  default     = ["rampart_ingest", "rampart_api"]

  validation {
    condition     = alltrue([for user in var.iam_database_users : can(regex("^[a-z][a-z0-9_]{0,62}$", user))])
    error_message = "iam_database_users must be lowercase PostgreSQL role names."
  }
}

variable "ca_cert_identifier" {
  description = "RDS certificate authority for the server certificate."
  type        = string
  default     = "rds-ca-rsa2048-g1"

  validation {
    condition     = contains(["rds-ca-rsa2048-g1", "rds-ca-rsa4096-g1", "rds-ca-ecc384-g1"], var.ca_cert_identifier)
    error_message = "Use a current RDS CA (rds-ca-rsa2048-g1, rds-ca-rsa4096-g1 or rds-ca-ecc384-g1)."
  }
}

variable "allocated_storage_gb" {
  description = "Initial storage in GiB."
  type        = number
  default     = 20

  validation {
    condition     = var.allocated_storage_gb >= 20 && var.allocated_storage_gb <= 65536
    error_message = "allocated_storage_gb must be between 20 and 65536."
  }
}

variable "max_allocated_storage_gb" {
  description = "Upper bound for storage autoscaling in GiB."
  type        = number
  default     = 100

  validation {
    condition     = var.max_allocated_storage_gb >= 20 && var.max_allocated_storage_gb <= 65536
    error_message = "max_allocated_storage_gb must be between 20 and 65536."
  }
}

variable "multi_az" {
  description = "Run a synchronous standby in a second availability zone (on for prod)."
  type        = bool
  default     = true
}

variable "deletion_protection" {
  description = "Refuse to delete the instance until this is turned off."
  type        = bool
  default     = true
}

variable "backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 14

  validation {
    condition     = var.backup_retention_days >= 7 && var.backup_retention_days <= 35
    error_message = "backup_retention_days must be between 7 and 35."
  }
}

variable "backup_window" {
  description = "Daily UTC backup window (hh24:mi-hh24:mi)."
  type        = string
  default     = "02:00-03:00"

  validation {
    condition     = can(regex("^[0-2][0-9]:[0-5][0-9]-[0-2][0-9]:[0-5][0-9]$", var.backup_window))
    error_message = "backup_window must look like 02:00-03:00."
  }
}

variable "maintenance_window" {
  description = "Weekly UTC maintenance window (ddd:hh24:mi-ddd:hh24:mi), not overlapping the backup window."
  type        = string
  default     = "sun:04:00-sun:05:00"

  validation {
    condition     = can(regex("^(mon|tue|wed|thu|fri|sat|sun):[0-2][0-9]:[0-5][0-9]-(mon|tue|wed|thu|fri|sat|sun):[0-2][0-9]:[0-5][0-9]$", var.maintenance_window))
    error_message = "maintenance_window must look like sun:04:00-sun:05:00."
  }
}

variable "apply_immediately" {
  description = "Apply modifications now instead of in the next maintenance window."
  type        = bool
  default     = false
}

variable "performance_insights_retention_days" {
  description = "Performance Insights retention (7 is the free tier; otherwise a multiple of 31 up to 731)."
  type        = number
  default     = 7

  validation {
    condition     = var.performance_insights_retention_days == 7 || var.performance_insights_retention_days == 731 || (var.performance_insights_retention_days % 31 == 0 && var.performance_insights_retention_days <= 713)
    error_message = "performance_insights_retention_days must be 7, 731 or a multiple of 31."
  }
}

variable "monitoring_interval_seconds" {
  description = "Enhanced monitoring interval."
  type        = number
  default     = 60

  validation {
    condition     = contains([1, 5, 10, 15, 30, 60], var.monitoring_interval_seconds)
    error_message = "monitoring_interval_seconds must be one of 1, 5, 10, 15, 30, 60 (0 would disable it)."
  }
}

variable "log_retention_in_days" {
  description = "Retention of the exported PostgreSQL log groups."
  type        = number
  default     = 365

  validation {
    condition     = var.log_retention_in_days >= 365
    error_message = "Keep database logs for at least one year."
  }
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
