variable "name" {
  description = "Name prefix for every resource (e.g. rampart-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic (each must confirm)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for email in var.alarm_emails : can(regex("^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$", email))])
    error_message = "alarm_emails must be e-mail addresses."
  }
}

variable "queue_name" {
  description = "Name of the events queue."
  type        = string
}

variable "dlq_name" {
  description = "Name of the dead-letter queue."
  type        = string
}

variable "ingest_function_name" {
  description = "Name of the ingest function."
  type        = string
}

variable "api_function_name" {
  description = "Name of the API function."
  type        = string
}

variable "api_name" {
  description = "Name of the REST API (ApiName dimension)."
  type        = string
}

variable "api_stage_name" {
  description = "Name of the API stage."
  type        = string
}

variable "db_instance_identifier" {
  description = "RDS instance identifier."
  type        = string
}

variable "web_acl_name" {
  description = "Name of the WAFv2 web ACL."
  type        = string
}

variable "oldest_message_age_seconds" {
  description = "Alarm when the oldest queued event is older than this (SLO: 95 % stored within 5 minutes)."
  type        = number
  default     = 300

  validation {
    condition     = var.oldest_message_age_seconds >= 60
    error_message = "oldest_message_age_seconds must be at least 60."
  }
}

variable "api_5xx_rate_threshold" {
  description = "Alarm when the API's 5XX fraction over 5 minutes exceeds this (0.005 = 0.5 %)."
  type        = number
  default     = 0.005

  validation {
    condition     = var.api_5xx_rate_threshold > 0 && var.api_5xx_rate_threshold < 1
    error_message = "api_5xx_rate_threshold is a fraction between 0 and 1."
  }
}

variable "api_p99_latency_ms" {
  description = "Alarm when the API's p99 latency over 5 minutes exceeds this."
  type        = number
  default     = 300

  validation {
    condition     = var.api_p99_latency_ms > 0
    error_message = "api_p99_latency_ms must be positive."
  }
}

variable "db_cpu_percent" {
  description = "Alarm when PostgreSQL CPU stays above this for 15 minutes."
  type        = number
  default     = 80

  validation {
    condition     = var.db_cpu_percent > 0 && var.db_cpu_percent <= 100
    error_message = "db_cpu_percent must be between 0 and 100."
  }
}

variable "db_free_storage_bytes" {
  description = "Alarm when free storage drops below this many bytes."
  type        = number
  default     = 2147483648 # 2 GiB

  validation {
    condition     = var.db_free_storage_bytes > 0
    error_message = "db_free_storage_bytes must be positive."
  }
}

variable "db_max_connections" {
  description = "Alarm when connections exceed this (reserved concurrency of both functions plus headroom)."
  type        = number
  default     = 60

  validation {
    condition     = var.db_max_connections > 0
    error_message = "db_max_connections must be positive."
  }
}

variable "waf_blocked_requests_threshold" {
  description = "Alarm when WAF blocks more requests than this in 5 minutes."
  type        = number
  default     = 500

  validation {
    condition     = var.waf_blocked_requests_threshold > 0
    error_message = "waf_blocked_requests_threshold must be positive."
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
