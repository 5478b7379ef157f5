variable "name" {
  description = "Name prefix for every resource (e.g. rampart-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "function_name" {
  description = "Name of the API Lambda function."
  type        = string
}

variable "function_alias" {
  description = "Alias of the API function that API Gateway invokes."
  type        = string
  default     = "live"
}

variable "function_invoke_arn" {
  description = "Invoke ARN of that alias of the API function."
  type        = string
}

variable "stage_name" {
  description = "Name of the API stage."
  type        = string
  default     = "v1"

  validation {
    condition     = can(regex("^[a-zA-Z0-9_]{1,64}$", var.stage_name))
    error_message = "stage_name must be 1-64 letters, digits or underscores."
  }
}

variable "api_client_tiers" {
  description = "Client tiers, each with its own usage plan (<name>-<tier>): per-key steady-state requests per second, burst, and requests per day. Keys are issued per client by rampart keys, not by Terraform."
  type = map(object({
    rate_limit    = number
    burst_limit   = number
    quota_per_day = number
  }))
  default = {
    standard = { rate_limit = 20, burst_limit = 40, quota_per_day = 100000 }
  }

  validation {
    condition     = length(var.api_client_tiers) >= 1 && alltrue([for tier in keys(var.api_client_tiers) : can(regex("^[a-z][a-z0-9-]{1,20}$", tier))])
    error_message = "Give at least one tier, named with lowercase letters, digits and hyphens."
  }

  validation {
    condition     = alltrue([for t in values(var.api_client_tiers) : t.rate_limit > 0 && t.burst_limit >= t.rate_limit && t.quota_per_day > 0])
    error_message = "Each tier needs rate_limit > 0, burst_limit >= rate_limit and quota_per_day > 0."
  }
}

variable "integration_timeout_ms" {
  description = "Integration timeout in milliseconds."
  type        = number
  default     = 10000

  validation {
    condition     = var.integration_timeout_ms >= 50 && var.integration_timeout_ms <= 29000
    error_message = "integration_timeout_ms must be between 50 and 29000."
  }
}

variable "execution_logging_level" {
  description = "API Gateway execution logging level."
  type        = string
  default     = "ERROR"

  validation {
    condition     = contains(["ERROR", "INFO"], var.execution_logging_level)
    error_message = "execution_logging_level must be ERROR or INFO."
  }
}

variable "stage_throttle_rate_limit" {
  description = "Stage-wide steady-state requests per second."
  type        = number
  default     = 100

  validation {
    condition     = var.stage_throttle_rate_limit > 0
    error_message = "stage_throttle_rate_limit must be positive."
  }
}

variable "stage_throttle_burst_limit" {
  description = "Stage-wide burst of requests."
  type        = number
  default     = 200

  validation {
    condition     = var.stage_throttle_burst_limit > 0
    error_message = "stage_throttle_burst_limit must be positive."
  }
}

variable "waf_rate_limit_per_5_minutes" {
  description = "Requests per source IP per 5 minutes above which WAF blocks."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit_per_5_minutes >= 10 && var.waf_rate_limit_per_5_minutes <= 2000000000
    error_message = "waf_rate_limit_per_5_minutes must be between 10 and 2000000000."
  }
}

variable "manage_account_cloudwatch_role" {
  description = "Set the account-wide API Gateway CloudWatch role (once per account and region; turn off if another stack owns it)."
  type        = bool
  default     = true
}

variable "log_retention_in_days" {
  description = "Retention of the access, execution and WAF log groups."
  type        = number
  default     = 365

  validation {
    condition     = var.log_retention_in_days >= 365
    error_message = "Keep API logs for at least one year."
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
