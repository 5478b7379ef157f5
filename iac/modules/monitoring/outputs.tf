output "alarm_topic_arn" {
  description = "SNS topic that receives every alarm."
  value       = aws_sns_topic.alarms.arn
}

output "alarm_names" {
  description = "Names of the alarms that notify (ALARM and OK): the burn-rate composites and the threshold alarms."
  value = concat(
    [for alarm in aws_cloudwatch_composite_alarm.burn : alarm.alarm_name],
    [for alarm in aws_cloudwatch_metric_alarm.threshold : alarm.alarm_name],
  )
}

output "burn_window_alarm_names" {
  description = "Names of the per-window burn-rate alarms (no actions of their own; the composites combine them)."
  value       = [for alarm in aws_cloudwatch_metric_alarm.burn_window : alarm.alarm_name]
}

output "dashboard_name" {
  description = "Name of the CloudWatch dashboard."
  value       = aws_cloudwatch_dashboard.this.dashboard_name
}
