# What pages someone, and the dashboard that shows the same: multi-window, multi-burn-rate alarms for the three
# SLOs (SRE workbook, chapter "Alerting on SLOs"), threshold alarms only for what burn rates cannot see, all to
# one encrypted SNS topic with at least one subscriber, ALARM and OK both notified.
# docs/operations.md holds the arithmetic, the alarm table (checked against the applied alarms by
# tests/iac/test_emulate_alerts.py) and a runbook per alarm.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name

  notify   = [aws_sns_topic.alarms.arn]
  runbooks = "docs/operations.md"

  api_dimensions    = { ApiName = var.api_name, Stage = var.api_stage_name }
  ingest_dimensions = { FunctionName = var.ingest_function_name }
  waf_dimensions    = { WebACL = var.web_acl_name, Region = local.region, Rule = "ALL" }

  # The three SLOs. Each names one metric whose statistic over any period gives either the fraction of bad events
  # (5XXError: each request counts 0 or 1, so its Average is the 5xx ratio) or the percentage of good ones
  # (PR(:t), the percentile rank of t: the share of values at or below t); `bad_fraction` is the metric math
  # that turns it into the fraction of bad events, `m` being the metric.
  slos = {
    api-latency = {
      title        = "API requests answered within ${var.latency_threshold_ms} ms"
      objective    = var.latency_objective
      namespace    = "AWS/ApiGateway"
      metric_name  = "Latency"
      dimensions   = local.api_dimensions
      stat         = "PR(:${var.latency_threshold_ms})"
      bad_fraction = "(100 - m) / 100"
    }
    api-availability = {
      title        = "API requests not answered 5xx"
      objective    = var.availability_objective
      namespace    = "AWS/ApiGateway"
      metric_name  = "5XXError"
      dimensions   = local.api_dimensions
      stat         = "Average"
      bad_fraction = "m"
    }
    ingest-freshness = {
      title        = "events stored within ${var.freshness_threshold_seconds} s of publication"
      objective    = var.freshness_objective
      namespace    = var.metrics_namespace
      metric_name  = "PublishToStoredSeconds" # src/rampart/ingest/metrics.py, one value per stored event
      dimensions   = local.ingest_dimensions
      stat         = "PR(:${var.freshness_threshold_seconds})"
      bad_fraction = "(100 - m) / 100"
    }
  }

  # Burn rate = (bad fraction over a window) / (error budget = 1 - objective). Each tier pages when both its long
  # and its short window burn faster than its rate: the long window proves the budget is really going, the short
  # one that it is still going (so the page stops soon after the cause does).
  windows = merge([
    for tier, alert in var.burn_rate_alerts : {
      for length, seconds in { long = alert.long_window_seconds, short = alert.short_window_seconds } :
      "${tier}-${length}" => {
        tier      = tier
        seconds   = seconds
        label     = seconds % 3600 == 0 ? "${seconds / 3600}h" : "${seconds / 60}m"
        burn_rate = alert.burn_rate
      }
    }
  ]...)

  burn_windows = merge([
    for slo_key, slo in local.slos : {
      for window in values(local.windows) : "${slo_key}-burn-${window.label}" => merge(slo, window, { slo = slo_key })
    }
  ]...)

  burn_tiers = merge([
    for slo_key, slo in local.slos : {
      for tier, alert in var.burn_rate_alerts : "${slo_key}-${tier}-burn" => {
        slo       = slo_key
        title     = slo.title
        objective = slo.objective
        burn_rate = alert.burn_rate
        long      = "${slo_key}-burn-${local.windows["${tier}-long"].label}"
        short     = "${slo_key}-burn-${local.windows["${tier}-short"].label}"
      }
    }
  ]...)

  # Threshold alarms, each for something the burn rates cannot see: the SLO metrics only count events that were
  # stored or requests that were answered, so nothing there moves when events are lost, stuck or never delivered.
  threshold_alarms = {
    dlq-not-empty = {
      description        = "Events in the DLQ: rejected as poison or not stored after maxReceiveCount deliveries (not an SLO: the event is not late, it is not stored)."
      namespace          = "AWS/SQS"
      metric_name        = "ApproximateNumberOfMessagesVisible"
      dimensions         = { QueueName = var.dlq_name }
      statistic          = "Maximum"
      period             = 60
      evaluation_periods = 1
      datapoints         = 1
      threshold          = 0
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
    delivery-dlq-not-empty = {
      description        = "Notifications SNS could not deliver into the events queue (subscription redrive policy): those events never reached ingest."
      namespace          = "AWS/SQS"
      metric_name        = "ApproximateNumberOfMessagesVisible"
      dimensions         = { QueueName = var.delivery_dlq_name }
      statistic          = "Maximum"
      period             = 60
      evaluation_periods = 1
      datapoints         = 1
      threshold          = 0
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
    sns-delivery-failed = {
      description        = "SNS failed to deliver notifications of the events topic (a KMS or queue policy mistake): events are not reaching the queue."
      namespace          = "AWS/SNS"
      metric_name        = "NumberOfNotificationsFailed"
      dimensions         = { TopicName = var.topic_name }
      statistic          = "Sum"
      period             = 60
      evaluation_periods = 1
      datapoints         = 1
      threshold          = 0
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
    oldest-message-age = {
      description        = "The oldest queued event waited more than ${var.oldest_message_age_seconds} s in 2 of the last 3 minutes: ingest is stalled (stored events alone, which the freshness SLO counts, cannot show a stall)."
      namespace          = "AWS/SQS"
      metric_name        = "ApproximateAgeOfOldestMessage"
      dimensions         = { QueueName = var.queue_name }
      statistic          = "Maximum"
      period             = 60
      evaluation_periods = 3
      datapoints         = 2
      threshold          = var.oldest_message_age_seconds
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
    ingest-freshness-p95 = {
      description        = "p95 of publish -> stored above ${var.freshness_threshold_seconds} s in 2 of the last 3 five-minute periods: the freshness SLO's own statement, measured per 5 minutes."
      namespace          = var.metrics_namespace
      metric_name        = "PublishToStoredSeconds"
      dimensions         = local.ingest_dimensions
      statistic          = "p95"
      period             = 300
      evaluation_periods = 3
      datapoints         = 2
      threshold          = var.freshness_threshold_seconds
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
    ingest-batch-item-failures = {
      description        = "Ingest returned records to the queue (batchItemFailures) in 3 of the last 5 minutes: the database is unavailable or failing; these never show in Lambda Errors."
      namespace          = var.metrics_namespace
      metric_name        = "BatchItemFailures"
      dimensions         = local.ingest_dimensions
      statistic          = "Sum"
      period             = 60
      evaluation_periods = 5
      datapoints         = 3
      threshold          = 0
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
    ingest-dead-lettered = {
      description        = "Ingest sent records to the DLQ (poison: not JSON, schema violation, refused by PostgreSQL). Fires on each new burst, while dlq-not-empty stays in ALARM until the DLQ is emptied."
      namespace          = var.metrics_namespace
      metric_name        = "RecordsDeadLettered"
      dimensions         = local.ingest_dimensions
      statistic          = "Sum"
      period             = 60
      evaluation_periods = 1
      datapoints         = 1
      threshold          = 0
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
    ingest-errors = {
      description        = "The ingest function failed invocations in 2 of the last 5 minutes: it never raises, so this is a timeout, an out-of-memory or a crash."
      namespace          = "AWS/Lambda"
      metric_name        = "Errors"
      dimensions         = { FunctionName = var.ingest_function_name }
      statistic          = "Sum"
      period             = 60
      evaluation_periods = 5
      datapoints         = 2
      threshold          = 0
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
    db-cpu = {
      description        = "PostgreSQL CPU above ${var.db_cpu_percent} % for 15 minutes: capacity runs out before users feel it."
      namespace          = "AWS/RDS"
      metric_name        = "CPUUtilization"
      dimensions         = { DBInstanceIdentifier = var.db_instance_identifier }
      statistic          = "Average"
      period             = 300
      evaluation_periods = 3
      datapoints         = 3
      threshold          = var.db_cpu_percent
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "breaching"
    }
    db-free-storage = {
      description        = "PostgreSQL free storage below ${var.db_free_storage_bytes} bytes: the storage autoscaling limit is near."
      namespace          = "AWS/RDS"
      metric_name        = "FreeStorageSpace"
      dimensions         = { DBInstanceIdentifier = var.db_instance_identifier }
      statistic          = "Minimum"
      period             = 300
      evaluation_periods = 1
      datapoints         = 1
      threshold          = var.db_free_storage_bytes
      comparison         = "LessThanThreshold"
      treat_missing_data = "breaching"
    }
    db-connections = {
      description        = "PostgreSQL connections above ${var.db_max_connections} (the root sets both functions' reserved concurrency + 10) for 10 minutes: a connection leak or runaway concurrency."
      namespace          = "AWS/RDS"
      metric_name        = "DatabaseConnections"
      dimensions         = { DBInstanceIdentifier = var.db_instance_identifier }
      statistic          = "Maximum"
      period             = 300
      evaluation_periods = 2
      datapoints         = 2
      threshold          = var.db_max_connections
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
    waf-blocked-spike = {
      description        = "WAF blocked more than ${var.waf_blocked_requests_threshold} requests in 5 minutes: an attack or a client gone wrong (blocked requests never reach the API, so no SLO sees them)."
      namespace          = "AWS/WAFV2"
      metric_name        = "BlockedRequests"
      dimensions         = local.waf_dimensions
      statistic          = "Sum"
      period             = 300
      evaluation_periods = 1
      datapoints         = 1
      threshold          = var.waf_blocked_requests_threshold
      comparison         = "GreaterThanThreshold"
      treat_missing_data = "notBreaching"
    }
  }
}

################################################################################
# Alarm topic on its own CMK, and who it reaches
################################################################################

data "aws_iam_policy_document" "key_services" {
  statement {
    sid       = "CloudWatchAlarmsPublishEncrypted"
    actions   = ["kms:GenerateDataKey*", "kms:Decrypt"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

module "key" {
  source = "../kms_key"

  alias                    = "${var.name}-alarms"
  description              = "${var.name} alarm notifications"
  deletion_window_in_days  = var.kms_deletion_window_in_days
  service_policy_documents = [data.aws_iam_policy_document.key_services.json]
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name}-alarms"
  kms_master_key_id = module.key.arn
}

data "aws_iam_policy_document" "alarms" {
  statement {
    sid       = "CloudWatchAlarmsOfThisAccount"
    actions   = ["sns:Publish"]
    resources = [aws_sns_topic.alarms.arn]

    principals {
      type        = "Service"
      identifiers = ["cloudwatch.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_sns_topic_policy" "alarms" {
  arn    = aws_sns_topic.alarms.arn
  policy = data.aws_iam_policy_document.alarms.json
}

# At least one (variable validation): an alarm that reaches no one is not an alarm.
resource "aws_sns_topic_subscription" "alarms" {
  for_each = { for s in var.alarm_subscribers : "${s.protocol}:${s.endpoint}" => s }

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = each.value.protocol
  endpoint  = each.value.endpoint
}

################################################################################
# SLOs: multi-window, multi-burn-rate alarms
################################################################################

# One alarm per SLO and window: the burn rate over the window, as metric math. These do not notify by
# themselves; the composite alarms below combine a long and a short window and notify.
resource "aws_cloudwatch_metric_alarm" "burn_window" {
  for_each = local.burn_windows

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "Burn rate of the error budget of '${each.value.title}' (SLO ${each.value.objective * 100} %) over ${each.value.label} above ${each.value.burn_rate}x. A window of the ${each.value.tier} burn alarm ${var.name}-${each.value.slo}-${each.value.tier}-burn, which notifies. Runbook: ${local.runbooks}#${each.value.slo}-burn"
  comparison_operator = "GreaterThanThreshold"
  threshold           = each.value.burn_rate
  evaluation_periods  = 1
  datapoints_to_alarm = 1
  treat_missing_data  = "notBreaching" # no traffic burns no budget

  metric_query {
    id = "m"

    metric {
      namespace   = each.value.namespace
      metric_name = each.value.metric_name
      dimensions  = each.value.dimensions
      stat        = each.value.stat
      period      = each.value.seconds
    }
  }

  metric_query {
    id          = "burn"
    expression  = "(${each.value.bad_fraction}) / (1 - ${each.value.objective})"
    label       = "${each.value.slo} burn rate over ${each.value.label}"
    return_data = true
  }
}

resource "aws_cloudwatch_composite_alarm" "burn" {
  for_each = local.burn_tiers

  alarm_name        = "${var.name}-${each.key}"
  alarm_description = "The error budget of '${each.value.title}' (SLO ${each.value.objective * 100} % over 28 days) burns more than ${each.value.burn_rate}x too fast over both windows of ${var.name}-${each.value.long} and ${var.name}-${each.value.short}. Runbook: ${local.runbooks}#${each.value.slo}-burn"
  alarm_rule        = "ALARM(\"${aws_cloudwatch_metric_alarm.burn_window[each.value.long].alarm_name}\") AND ALARM(\"${aws_cloudwatch_metric_alarm.burn_window[each.value.short].alarm_name}\")"
  alarm_actions     = local.notify
  ok_actions        = local.notify
}

################################################################################
# Threshold alarms: what the burn rates cannot see
################################################################################

resource "aws_cloudwatch_metric_alarm" "threshold" {
  for_each = local.threshold_alarms

  alarm_name          = "${var.name}-${each.key}"
  alarm_description   = "${each.value.description} Runbook: ${local.runbooks}#${each.key}"
  namespace           = each.value.namespace
  metric_name         = each.value.metric_name
  dimensions          = each.value.dimensions
  statistic           = startswith(each.value.statistic, "p") ? null : each.value.statistic
  extended_statistic  = startswith(each.value.statistic, "p") ? each.value.statistic : null
  period              = each.value.period
  evaluation_periods  = each.value.evaluation_periods
  datapoints_to_alarm = each.value.datapoints
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  treat_missing_data  = each.value.treat_missing_data
  alarm_actions       = local.notify
  ok_actions          = local.notify
}

################################################################################
# Dashboard: the SLOs and their budgets first, then the raw signals
################################################################################

locals {
  slo_keys = keys(local.slos)

  fast_windows = [local.windows["fast-short"], local.windows["fast-long"]]

  # A dashboard metric names its dimensions as a flat list: name, value, name, value...
  dimension_pairs = { for key, slo in local.slos : key => flatten([for name, value in slo.dimensions : [name, value]]) }

  # Error budget left over the last 28 days, as one number per SLO: 100 % = nothing spent, 0 % = spent, below 0 =
  # overspent. The widget's own time range is 28 days and its period that whole range.
  budget_widgets = [
    for index, key in local.slo_keys : {
      type = "metric", x = 8 * index, y = 0, width = 8, height = 4
      properties = {
        title                = "${key}: error budget left (28 days, SLO ${local.slos[key].objective * 100} %)"
        region               = local.region
        view                 = "singleValue"
        start                = "-P28D"
        end                  = "P0D"
        setPeriodToTimeRange = true
        metrics = [
          [{ id = "budget", label = "budget left %", expression = "100 * (1 - (${local.slos[key].bad_fraction}) / (1 - ${local.slos[key].objective}))" }],
          concat([local.slos[key].namespace, local.slos[key].metric_name], local.dimension_pairs[key], [{ id = "m", stat = local.slos[key].stat, visible = false }]),
        ]
      }
    }
  ]

  # Burn rate over the short and the long window of the fast tier, with both tiers' thresholds drawn.
  burn_widgets = [
    for index, key in local.slo_keys : {
      type = "metric", x = 8 * index, y = 4, width = 8, height = 6
      properties = {
        title  = "${key}: burn rate (1 = budget spent in exactly 28 days)"
        region = local.region
        view   = "timeSeries"
        period = 300
        # One row per expression, then one per metric (a row is a list: not flatten(), which would merge them).
        metrics = concat(
          [
            for window in local.fast_windows :
            [{ id = "burn_${window.label}", label = "burn rate ${window.label}", expression = "(${replace(local.slos[key].bad_fraction, "/\\bm\\b/", "m_${window.label}")}) / (1 - ${local.slos[key].objective})" }]
          ],
          [
            for window in local.fast_windows :
            concat([local.slos[key].namespace, local.slos[key].metric_name], local.dimension_pairs[key], [{ id = "m_${window.label}", stat = local.slos[key].stat, period = window.seconds, visible = false }])
          ],
        )
        annotations = {
          horizontal = [for tier, alert in var.burn_rate_alerts : { label = "${tier} burn", value = alert.burn_rate }]
        }
      }
    }
  ]
}

resource "aws_cloudwatch_dashboard" "this" {
  dashboard_name = var.name

  dashboard_body = jsonencode({
    widgets = concat(local.budget_widgets, local.burn_widgets, [
      {
        type = "metric", x = 0, y = 10, width = 12, height = 6
        properties = {
          title = "Freshness: publish -> stored seconds (p50, p95, p99)", region = local.region, period = 300
          metrics = [
            for stat in ["p50", "p95", "p99"] :
            [var.metrics_namespace, "PublishToStoredSeconds", "FunctionName", var.ingest_function_name, { stat = stat }]
          ]
          annotations = { horizontal = [{ label = "SLO ${var.freshness_threshold_seconds} s", value = var.freshness_threshold_seconds }] }
        }
      },
      {
        type = "metric", x = 12, y = 10, width = 12, height = 6
        properties = {
          title = "Ingest: records retried, dead-lettered; Lambda errors", region = local.region, stat = "Sum", period = 60
          metrics = [
            [var.metrics_namespace, "BatchItemFailures", "FunctionName", var.ingest_function_name],
            [var.metrics_namespace, "RecordsDeadLettered", "FunctionName", var.ingest_function_name],
            ["AWS/Lambda", "Errors", "FunctionName", var.ingest_function_name],
            ["AWS/Lambda", "Errors", "FunctionName", var.api_function_name],
          ]
        }
      },
      {
        type = "metric", x = 0, y = 16, width = 12, height = 6
        properties = {
          title = "Delivery: queue age (s); DLQ, delivery DLQ, SNS failures", region = local.region, period = 60
          metrics = [
            ["AWS/SQS", "ApproximateAgeOfOldestMessage", "QueueName", var.queue_name, { stat = "Maximum" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.dlq_name, { stat = "Maximum", yAxis = "right" }],
            ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", var.delivery_dlq_name, { stat = "Maximum", yAxis = "right" }],
            ["AWS/SNS", "NumberOfNotificationsFailed", "TopicName", var.topic_name, { stat = "Sum", yAxis = "right" }],
          ]
          annotations = { horizontal = [{ label = "oldest age alarm", value = var.oldest_message_age_seconds }] }
        }
      },
      {
        type = "metric", x = 12, y = 16, width = 12, height = 6
        properties = {
          title = "API: p99 latency ms, 5xx rate", region = local.region, period = 300
          metrics = [
            ["AWS/ApiGateway", "Latency", "ApiName", var.api_name, "Stage", var.api_stage_name, { stat = "p99" }],
            ["AWS/ApiGateway", "5XXError", "ApiName", var.api_name, "Stage", var.api_stage_name, { stat = "Average", yAxis = "right" }],
          ]
          annotations = { horizontal = [{ label = "${var.latency_threshold_ms} ms", value = var.latency_threshold_ms }] }
        }
      },
      {
        type = "metric", x = 0, y = 22, width = 12, height = 6
        properties = {
          title = "PostgreSQL CPU %, connections, free storage", region = local.region, period = 300
          metrics = [
            ["AWS/RDS", "CPUUtilization", "DBInstanceIdentifier", var.db_instance_identifier, { stat = "Average" }],
            ["AWS/RDS", "DatabaseConnections", "DBInstanceIdentifier", var.db_instance_identifier, { stat = "Maximum" }],
            ["AWS/RDS", "FreeStorageSpace", "DBInstanceIdentifier", var.db_instance_identifier, { stat = "Minimum", yAxis = "right" }],
          ]
        }
      },
      {
        type = "metric", x = 12, y = 22, width = 12, height = 6
        properties = {
          title = "WAF blocked vs. allowed requests", region = local.region, stat = "Sum", period = 300
          metrics = [
            ["AWS/WAFV2", "BlockedRequests", "WebACL", var.web_acl_name, "Region", local.region, "Rule", "ALL"],
            ["AWS/WAFV2", "AllowedRequests", "WebACL", var.web_acl_name, "Region", local.region, "Rule", "ALL"],
          ]
        }
      },
    ])
  })
}
