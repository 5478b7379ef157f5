variable "name" {
  description = "Name prefix for every resource (e.g. rampart-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "github_repository" {
  description = "The one repository trusted, as owner/name (no wildcards)."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/[A-Za-z0-9._-]{1,100}$", var.github_repository))
    error_message = "github_repository must be owner/name with no wildcard."
  }
}

variable "github_environment" {
  description = "GitHub environment whose jobs may assume the deploy role."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,255}$", var.github_environment))
    error_message = "github_environment must be a plain environment name (no wildcard)."
  }
}

variable "create_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (false if it already exists; it is looked up)."
  type        = bool
  default     = true
}

variable "function_arns" {
  description = "ARNs of the functions the deploy role may update, publish and alias."
  type        = list(string)

  validation {
    condition     = length(var.function_arns) >= 1 && alltrue([for arn in var.function_arns : can(regex("^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+$", arn))])
    error_message = "function_arns must be unqualified Lambda function ARNs."
  }
}

variable "signing_profile_arn" {
  description = "ARN of the AWS Signer profile the deploy role may start signing jobs with."
  type        = string
}

variable "artifact_bucket_arn" {
  description = "ARN of the bucket holding unsigned and signed deployment packages."
  type        = string
}

variable "artifact_kms_key_arn" {
  description = "ARN of the CMK encrypting the artifact bucket."
  type        = string
}

variable "smoke_test_api_key_secret_arn" {
  description = "ARN of the Secrets Manager secret with the smoke-test API key; the deploy role may read exactly this secret."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:[0-9]{12}:secret:[A-Za-z0-9/_+=.@-]+$", var.smoke_test_api_key_secret_arn))
    error_message = "smoke_test_api_key_secret_arn must be one full secret ARN (no wildcard)."
  }
}

variable "smoke_test_api_key_kms_key_arn" {
  description = "ARN of the CMK encrypting that secret (decrypt allowed only through Secrets Manager, for that secret)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+$", var.smoke_test_api_key_kms_key_arn))
    error_message = "smoke_test_api_key_kms_key_arn must be a KMS key ARN (key/<id>, no alias, no wildcard)."
  }
}

variable "state_bucket_name" {
  description = "Terraform state bucket the plan role may read (null: no state access granted)."
  type        = string
  default     = null
}

variable "state_key_prefix" {
  description = "Key prefix of this project's state objects in the state bucket."
  type        = string
  default     = "rampart/"
}

variable "state_kms_key_arn" {
  description = "CMK of the state bucket, if any."
  type        = string
  default     = null
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
