variable "alias" {
  description = "Alias name without the alias/ prefix (e.g. rampart-dev-pubsub)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9/_-]{1,250}$", var.alias)) && !startswith(var.alias, "aws/")
    error_message = "alias must be letters, digits, /, _ or - and must not start with aws/."
  }
}

variable "description" {
  description = "What the key protects."
  type        = string
}

variable "service_policy_documents" {
  description = "JSON policy documents with the service statements of the key (merged into the key policy)."
  type        = list(string)
  default     = []
}

variable "rotation_period_in_days" {
  description = "Automatic rotation period of the key material."
  type        = number
  default     = 365

  validation {
    condition     = var.rotation_period_in_days >= 90 && var.rotation_period_in_days <= 2560
    error_message = "rotation_period_in_days must be between 90 and 2560."
  }
}

variable "deletion_window_in_days" {
  description = "Waiting period before the key is deleted."
  type        = number
  default     = 30

  validation {
    condition     = var.deletion_window_in_days >= 7 && var.deletion_window_in_days <= 30
    error_message = "deletion_window_in_days must be between 7 and 30."
  }
}
