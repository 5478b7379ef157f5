variable "name" {
  description = "Name prefix for every resource (e.g. rampart-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "github_repository" {
  description = "The one repository trusted, as its OIDC sub names it: owner/name, or owner@<owner_id>/name@<repo_id> for immutable subject claims (repositories created, renamed or transferred after 2026-06-18, or opted in). No wildcard."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}(@[0-9]{1,20})?/[A-Za-z0-9._-]{1,100}(@[0-9]{1,20})?$", var.github_repository)) && contains([0, 2], length(regexall("@", var.github_repository)))
    error_message = "github_repository must be owner/name or owner@<owner_id>/name@<repo_id> (both ids or neither), with no wildcard."
  }
}

variable "github_environment" {
  description = "GitHub environment of the deploy job (deploy.yml); its jobs, and only they, may assume the deploy role."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,255}$", var.github_environment))
    error_message = "github_environment must be a plain environment name (no wildcard)."
  }
}

variable "github_apply_environment" {
  description = "GitHub environment of the apply job (deploy.yml); the bootstrap's apply role trusts it. Must differ from github_environment, so no job can get both roles."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9._-]{1,255}$", var.github_apply_environment))
    error_message = "github_apply_environment must be a plain environment name (no wildcard)."
  }
}

variable "github_main_branch" {
  description = "Branch whose push runs (deploy.yml's plan job, no environment) may assume the plan role, besides pull requests."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]{1,200}$", var.github_main_branch)) && !strcontains(var.github_main_branch, "*")
    error_message = "github_main_branch must be a plain branch name (no wildcard)."
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

variable "api_keys_kms_key_arn" {
  description = "ARN of the CMK (alias/<name>-api-keys) encrypting the client key secrets; the deploy role may decrypt with it only through Secrets Manager and only the smoke-test client's secret (<name>/api-keys/smoke-test)."
  type        = string

  validation {
    condition     = can(regex("^arn:aws[a-z-]*:kms:[a-z0-9-]+:[0-9]{12}:key/[a-f0-9-]+$", var.api_keys_kms_key_arn))
    error_message = "api_keys_kms_key_arn must be a KMS key ARN (key/<id>, no alias, no wildcard)."
  }
}

variable "state_bucket_name" {
  description = "Terraform state bucket whose state_key the plan role may read (null: no state access granted)."
  type        = string
  default     = null
}

variable "state_key" {
  description = "Key of this environment's state object in the state bucket (the plan role reads exactly this object)."
  type        = string
  default     = "rampart/terraform.tfstate"

  validation {
    condition     = can(regex("^[A-Za-z0-9/._-]+$", var.state_key)) && !strcontains(var.state_key, "*")
    error_message = "state_key must be one object key (no wildcard)."
  }
}

variable "state_kms_key_arn" {
  description = "CMK of the state bucket, if any: the only key the plan role may decrypt with (through S3)."
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
