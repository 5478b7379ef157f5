variable "name" {
  description = "Name prefix for every resource (e.g. rampart-dev)."
  type        = string

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,30}[a-z0-9]$", var.name))
    error_message = "name must be 3-32 lowercase letters, digits or hyphens, starting with a letter."
  }
}

variable "alarm_subscribers" {
  description = "Who the alarm topic reaches (ALARM and OK): at least one. protocol: email, email-json, https, sqs, lambda or sms; endpoint: an address, an https URL, a queue or function ARN, a phone number (+E.164). E-mail subscribers must confirm; an sqs or lambda subscriber must let SNS deliver to it."
  type = list(object({
    protocol = string
    endpoint = string
  }))

  validation {
    condition     = length(var.alarm_subscribers) >= 1
    error_message = "alarm_subscribers must name at least one subscriber: an alarm that reaches no one is not an alarm."
  }

  validation {
    condition     = alltrue([for s in var.alarm_subscribers : contains(["email", "email-json", "https", "sqs", "lambda", "sms"], s.protocol)])
    error_message = "alarm_subscribers: protocol must be email, email-json, https, sqs, lambda or sms (plain http would send alarms in clear text)."
  }

  validation {
    condition = alltrue([
      for s in var.alarm_subscribers : can(regex(lookup({
        email        = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"
        "email-json" = "^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$"
        https        = "^https://[^\\s]+$"
        sqs          = "^arn:aws[a-z-]*:sqs:[a-z0-9-]+:[0-9]{12}:[A-Za-z0-9_-]+$"
        lambda       = "^arn:aws[a-z-]*:lambda:[a-z0-9-]+:[0-9]{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$"
        sms          = "^\\+[0-9]{6,15}$"
      }, s.protocol, "^$"), s.endpoint))
    ])
    error_message = "alarm_subscribers: each endpoint must fit its protocol (an e-mail address, an https:// URL, an SQS queue or Lambda function ARN, a +E.164 phone number)."
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

variable "delivery_dlq_name" {
  description = "Name of the delivery DLQ of the topic -> queue subscription (iac/modules/pubsub)."
  type        = string
}

variable "topic_name" {
  description = "Name of the events SNS topic (TopicName dimension)."
  type        = string
}

variable "metrics_namespace" {
  description = "CloudWatch namespace of the functions' own metrics (POWERTOOLS_METRICS_NAMESPACE; the ingest's EMF lines)."
  type        = string
  default     = "Rampart"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/#:-]{1,255}$", var.metrics_namespace)) && !startswith(var.metrics_namespace, "AWS/")
    error_message = "metrics_namespace must be a custom CloudWatch namespace (not AWS/...)."
  }
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

variable "latency_objective" {
  description = "SLO: fraction of API requests answered within latency_threshold_ms (over 28 days)."
  type        = number
  default     = 0.99

  validation {
    condition     = var.latency_objective > 0.5 && var.latency_objective < 1
    error_message = "latency_objective is a fraction between 0.5 and 1 (exclusive)."
  }
}

variable "latency_threshold_ms" {
  description = "SLO: a request answered within this many milliseconds (API Gateway Latency) is good."
  type        = number
  default     = 300

  validation {
    condition     = var.latency_threshold_ms > 0 && floor(var.latency_threshold_ms) == var.latency_threshold_ms
    error_message = "latency_threshold_ms must be a positive whole number."
  }
}

variable "availability_objective" {
  description = "SLO: fraction of API requests not answered 5xx (over 28 days)."
  type        = number
  default     = 0.995

  validation {
    condition     = var.availability_objective > 0.5 && var.availability_objective < 1
    error_message = "availability_objective is a fraction between 0.5 and 1 (exclusive)."
  }
}

variable "freshness_objective" {
  description = "SLO: fraction of events stored within freshness_threshold_seconds of publication (over 28 days)."
  type        = number
  default     = 0.95

  validation {
    condition     = var.freshness_objective > 0.5 && var.freshness_objective < 1
    error_message = "freshness_objective is a fraction between 0.5 and 1 (exclusive)."
  }
}

variable "freshness_threshold_seconds" {
  description = "SLO: an event stored within this many seconds of publication (SQS SentTimestamp) is fresh; also the p95 alarm's threshold."
  type        = number
  default     = 300

  validation {
    condition     = var.freshness_threshold_seconds >= 1 && floor(var.freshness_threshold_seconds) == var.freshness_threshold_seconds
    error_message = "freshness_threshold_seconds must be a whole number of seconds, at least 1."
  }
}

variable "burn_rate_alerts" {
  description = "Multi-window burn-rate tiers (SRE workbook): each pages when the burn rate exceeds burn_rate over both its long and its short window. Must name the tiers fast and slow (the dashboard draws the fast one)."
  type = map(object({
    long_window_seconds  = number
    short_window_seconds = number
    burn_rate            = number
  }))
  default = {
    fast = { long_window_seconds = 3600, short_window_seconds = 300, burn_rate = 14.4 }
    slow = { long_window_seconds = 21600, short_window_seconds = 1800, burn_rate = 6 }
  }

  validation {
    condition     = contains(keys(var.burn_rate_alerts), "fast") && contains(keys(var.burn_rate_alerts), "slow")
    error_message = "burn_rate_alerts must define the tiers fast and slow."
  }

  validation {
    condition = alltrue([
      for tier in values(var.burn_rate_alerts) :
      tier.short_window_seconds >= 60 && tier.short_window_seconds < tier.long_window_seconds &&
      tier.long_window_seconds <= 86400 && tier.short_window_seconds % 60 == 0 && tier.long_window_seconds % 60 == 0 &&
      tier.burn_rate > 1
    ])
    error_message = "Each tier needs whole-minute windows, short < long <= 1 day, and a burn rate above 1."
  }
}

variable "oldest_message_age_seconds" {
  description = "Alarm when the oldest queued event has waited longer than this (2 of 3 minutes): ingest stalled."
  type        = number
  default     = 300

  validation {
    condition     = var.oldest_message_age_seconds >= 60
    error_message = "oldest_message_age_seconds must be at least 60."
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
  description = "Alarm when connections exceed this (the root passes both reserved concurrencies + 10)."
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
