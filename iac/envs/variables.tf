variable "environment" {
  description = "Environment this state describes; must match the tfvars and backend key used."
  type        = string

  validation {
    condition     = contains(["dev", "prod"], var.environment)
    error_message = "environment must be dev or prod."
  }
}

variable "region" {
  description = "AWS region of the stack."
  type        = string

  validation {
    condition     = can(regex("^[a-z]{2}(-gov)?-[a-z]+-[0-9]$", var.region))
    error_message = "region must be an AWS region code (geo-area-number)."
  }
}

variable "allowed_account_ids" {
  description = "If set, the provider refuses to run against any other AWS account."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for id in var.allowed_account_ids : can(regex("^[0-9]{12}$", id))])
    error_message = "allowed_account_ids must be 12-digit account IDs."
  }
}

variable "name" {
  description = "Project prefix; resources are named <name>-<environment>-<part>."
  type        = string
  default     = "rampart"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name))
    error_message = "name must be lowercase letters, digits and hyphens, at most 21 characters."
  }
}

variable "availability_zones" {
  description = "Availability zones of the private subnets, listed explicitly so a new zone never reshapes the network."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "Give at least two availability zones."
  }
}

variable "vpc_cidr" {
  description = "IPv4 CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0))
    error_message = "vpc_cidr must be a valid IPv4 CIDR."
  }
}

variable "github_repository" {
  description = "The GitHub repository whose workflows may assume the plan and deploy roles, as its OIDC sub names it: owner/name, or owner@<owner_id>/name@<repo_id> for immutable subject claims (repositories created, renamed or transferred after 2026-06-18, or opted in). The bootstrap's apply role trusts the same value."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9][A-Za-z0-9-]{0,38}(@[0-9]{1,20})?/[A-Za-z0-9._-]{1,100}(@[0-9]{1,20})?$", var.github_repository)) && contains([0, 2], length(regexall("@", var.github_repository)))
    error_message = "github_repository must be owner/name or owner@<owner_id>/name@<repo_id> (both ids or neither), with no wildcard."
  }
}

variable "github_environment" {
  description = "GitHub environment of the deploy job, the only one the deploy role trusts (defaults to the environment name)."
  type        = string
  default     = null
}

variable "github_apply_environment" {
  description = "GitHub environment of the apply job, which the bootstrap's apply role trusts (defaults to <github_environment>-infra); never the deploy job's."
  type        = string
  default     = null
}

variable "create_github_oidc_provider" {
  description = "Create the account's GitHub OIDC provider (only one may exist per account)."
  type        = bool
  default     = true
}

variable "publisher_arns" {
  description = "IAM principals allowed to publish events to the topic (empty: this account, as IAM allows)."
  type        = list(string)
  default     = []
}

variable "max_receive_count" {
  description = "Deliveries of a message before SQS moves it to the DLQ."
  type        = number
  default     = 5

  validation {
    condition     = var.max_receive_count >= 2 && var.max_receive_count <= 20
    error_message = "max_receive_count must be between 2 and 20."
  }
}

variable "db_engine_major_version" {
  description = "PostgreSQL major version."
  type        = string
  default     = "16"

  validation {
    condition     = contains(["16", "17"], var.db_engine_major_version)
    error_message = "db_engine_major_version must be 16 or 17."
  }
}

variable "db_instance_class" {
  description = "RDS instance class."
  type        = string
  default     = "db.t4g.medium"

  validation {
    condition     = can(regex("^db\\.[a-z0-9]+\\.[a-z0-9]+$", var.db_instance_class))
    error_message = "db_instance_class must look like db.t4g.medium."
  }
}

variable "db_multi_az" {
  description = "Multi-AZ standby for PostgreSQL (true for prod)."
  type        = bool
  default     = true
}

variable "db_deletion_protection" {
  description = "Deletion protection on the PostgreSQL instance."
  type        = bool
  default     = true
}

variable "ingest_zip_path" {
  description = "Path of the ingest package (default: dist/lambda/ingest.zip of this repository)."
  type        = string
  default     = null
}

variable "api_zip_path" {
  description = "Path of the API package (default: dist/lambda/api.zip of this repository)."
  type        = string
  default     = null
}

variable "ingest_timeout_seconds" {
  description = "Timeout of the ingest function (drives the queue visibility timeout)."
  type        = number
  default     = 30

  validation {
    condition     = var.ingest_timeout_seconds >= 3 && var.ingest_timeout_seconds <= 900
    error_message = "ingest_timeout_seconds must be between 3 and 900."
  }
}

variable "ingest_batch_size" {
  description = "Records per ingest invocation."
  type        = number
  default     = 100

  validation {
    condition     = var.ingest_batch_size >= 1 && var.ingest_batch_size <= 10000
    error_message = "ingest_batch_size must be between 1 and 10000."
  }
}

variable "ingest_batching_window_seconds" {
  description = "Batching window of the SQS event source."
  type        = number
  default     = 5

  validation {
    condition     = var.ingest_batching_window_seconds >= 0 && var.ingest_batching_window_seconds <= 300
    error_message = "ingest_batching_window_seconds must be between 0 and 300."
  }
}

variable "ingest_maximum_concurrency" {
  description = "Maximum concurrent ingest invocations from the queue."
  type        = number
  default     = 5

  validation {
    condition     = var.ingest_maximum_concurrency >= 2
    error_message = "ingest_maximum_concurrency must be at least 2."
  }
}

variable "ingest_reserved_concurrency" {
  description = "Reserved concurrency of the ingest function."
  type        = number
  default     = 10

  validation {
    condition     = var.ingest_reserved_concurrency >= 2
    error_message = "ingest_reserved_concurrency must be at least 2."
  }
}

variable "api_reserved_concurrency" {
  description = "Reserved concurrency of the API function."
  type        = number
  default     = 20

  validation {
    condition     = var.api_reserved_concurrency >= 1
    error_message = "api_reserved_concurrency must be at least 1."
  }
}

variable "log_level" {
  description = "Powertools log level of both functions."
  type        = string
  default     = "INFO"

  validation {
    condition     = contains(["DEBUG", "INFO", "WARNING", "ERROR"], var.log_level)
    error_message = "log_level must be DEBUG, INFO, WARNING or ERROR."
  }
}

variable "artifacts_force_destroy" {
  description = "Let terraform destroy remove the artifact bucket with its signed packages (dev only)."
  type        = bool
  default     = false
}

variable "api_client_tiers" {
  description = "API client tiers, one usage plan each (<name>-<environment>-<tier>); keys are issued per client by rampart keys."
  type = map(object({
    rate_limit    = number
    burst_limit   = number
    quota_per_day = number
  }))
  default = {
    standard = { rate_limit = 20, burst_limit = 40, quota_per_day = 100000 }
  }
}

variable "waf_rate_limit_per_5_minutes" {
  description = "Requests per source IP per 5 minutes above which WAF blocks."
  type        = number
  default     = 2000

  validation {
    condition     = var.waf_rate_limit_per_5_minutes >= 10
    error_message = "waf_rate_limit_per_5_minutes must be at least 10."
  }
}

variable "manage_apigateway_account_role" {
  description = "Manage the account-wide API Gateway CloudWatch role (false if another stack in the account/region owns it)."
  type        = bool
  default     = true
}

# No default, on purpose: a plan without subscribers fails ("No value for required variable"), and an empty list
# fails the validation. prod.tfvars does not set it: terraform.yml passes the repository variable
# ALARM_SUBSCRIBERS as TF_VAR_alarm_subscribers (docs/terraform.md, bootstrap step 5).
variable "alarm_subscribers" {
  description = "Who the alarms reach (ALARM and OK): at least one {protocol, endpoint}; protocol email, email-json, https, sqs, lambda or sms (iac/modules/monitoring)."
  type = list(object({
    protocol = string
    endpoint = string
  }))

  validation {
    condition     = length(var.alarm_subscribers) >= 1
    error_message = "alarm_subscribers must name at least one subscriber (e.g. [{protocol = \"email\", endpoint = \"oncall@<your domain>\"}]): production alarms must reach someone."
  }
}

variable "state_bucket_name" {
  description = "Terraform state bucket (lets the plan role read this environment's state object, rampart/<environment>/terraform.tfstate)."
  type        = string
  default     = null
}

variable "state_kms_key_arn" {
  description = "CMK of the state bucket, if any: the only key the plan role may decrypt with (through S3)."
  type        = string
  default     = null
}

variable "iam_permissions_boundary_policy_name" {
  description = "Name of the managed policy (created by the bootstrap, docs/terraform.md) set as permissions boundary on every IAM role of the stack; null: none."
  type        = string
  default     = null

  validation {
    condition     = var.iam_permissions_boundary_policy_name == null || can(regex("^[A-Za-z0-9+=,.@_-]{1,128}$", var.iam_permissions_boundary_policy_name))
    error_message = "iam_permissions_boundary_policy_name must be a plain IAM policy name (no path, no wildcard)."
  }
}
