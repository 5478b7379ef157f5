variable "name" {
  description = "Name prefix for every resource (e.g. rampart-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "cidr_block" {
  description = "IPv4 CIDR of the VPC."
  type        = string
  default     = "10.40.0.0/16"

  validation {
    condition     = can(cidrhost(var.cidr_block, 0)) && tonumber(split("/", var.cidr_block)[1]) <= 24
    error_message = "cidr_block must be a valid IPv4 CIDR of /24 or larger."
  }
}

variable "availability_zones" {
  description = "Availability zones for the private subnets (one subnet per zone)."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2 && length(distinct(var.availability_zones)) == length(var.availability_zones)
    error_message = "Give at least two distinct availability zones (RDS subnet groups and Multi-AZ need two)."
  }
}

variable "subnet_newbits" {
  description = "Bits added to the VPC prefix for each private subnet (4 on a /16 gives /20 subnets)."
  type        = number
  default     = 4

  validation {
    condition     = var.subnet_newbits >= 1 && var.subnet_newbits <= 8
    error_message = "subnet_newbits must be between 1 and 8."
  }
}

variable "database_port" {
  description = "TCP port PostgreSQL listens on; the only port the Lambdas may reach inside the VPC besides 443."
  type        = number
  default     = 5432

  validation {
    condition     = var.database_port >= 1024 && var.database_port <= 65535
    error_message = "database_port must be an unprivileged TCP port."
  }
}

variable "interface_endpoints" {
  description = "AWS service short names that get an interface VPC endpoint (what the Lambdas call)."
  type        = list(string)
  default     = ["sqs", "secretsmanager", "kms", "sts", "logs"]

  validation {
    condition     = alltrue([for service in var.interface_endpoints : can(regex("^[a-z0-9.-]+$", service))])
    error_message = "interface_endpoints are service short names such as sqs or secretsmanager."
  }
}

variable "flow_log_retention_in_days" {
  description = "Retention of the VPC flow log group."
  type        = number
  default     = 365

  validation {
    condition     = contains([365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653], var.flow_log_retention_in_days)
    error_message = "Keep flow logs for at least one year (a CloudWatch Logs retention value >= 365)."
  }
}

variable "kms_deletion_window_in_days" {
  description = "Waiting period before the flow-log CMK is deleted."
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
