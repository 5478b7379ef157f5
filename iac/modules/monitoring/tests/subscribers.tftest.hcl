# Alarms must reach someone (docs/operations.md): the module refuses no subscriber, a protocol that is not
# allowed, or an endpoint that does not fit its protocol. Run by tests/iac/test_alarm_subscribers.py
# (terraform test, a mocked provider: no AWS call).

mock_provider "aws" {
  mock_data "aws_region" {
    defaults = { name = "eu-central-1" }
  }
  mock_data "aws_caller_identity" {
    defaults = { account_id = "000000000000" }
  }
  mock_data "aws_iam_policy_document" {
    defaults = { json = "{}" }
  }
}

variables {
  name                   = "rampart-test"
  topic_name             = "rampart-test-events"
  queue_name             = "rampart-test-events"
  dlq_name               = "rampart-test-events-dlq"
  delivery_dlq_name      = "rampart-test-events-delivery-dlq"
  ingest_function_name   = "rampart-test-ingest"
  api_function_name      = "rampart-test-api"
  api_name               = "rampart-test-api"
  api_stage_name         = "v1"
  db_instance_identifier = "rampart-test-db"
  web_acl_name           = "rampart-test-api"
}

run "every_allowed_kind_of_subscriber" {
  command = plan

  variables {
    alarm_subscribers = [
      { protocol = "email", endpoint = "oncall@example.com" },
      { protocol = "email-json", endpoint = "robot@example.com" },
      { protocol = "https", endpoint = "https://events.pagerduty.example/integration/abc/enqueue" },
      { protocol = "sqs", endpoint = "arn:aws:sqs:eu-central-1:000000000000:oncall" },
      { protocol = "lambda", endpoint = "arn:aws:lambda:eu-central-1:000000000000:function:notify:live" },
      { protocol = "sms", endpoint = "+4930123456" },
    ]
  }

  assert {
    condition     = length(aws_sns_topic_subscription.alarms) == 6
    error_message = "every subscriber gets a subscription"
  }
}

run "no_subscriber" {
  command = plan

  variables {
    alarm_subscribers = []
  }

  expect_failures = [var.alarm_subscribers]
}

run "plain_http" {
  command = plan

  variables {
    alarm_subscribers = [{ protocol = "http", endpoint = "http://hooks.example.com/alarm" }]
  }

  expect_failures = [var.alarm_subscribers]
}

run "endpoint_not_fitting_its_protocol" {
  command = plan

  variables {
    alarm_subscribers = [{ protocol = "https", endpoint = "oncall@example.com" }]
  }

  expect_failures = [var.alarm_subscribers]
}

run "dashboard_rows_are_metric_arrays" {
  command = plan

  variables {
    alarm_subscribers = [{ protocol = "email", endpoint = "oncall@example.com" }]
  }

  # CloudWatch wants every row of a widget's metrics as an array (an expression or namespace, name, dimensions).
  assert {
    condition = alltrue([
      for widget in jsondecode(aws_cloudwatch_dashboard.this.dashboard_body).widgets :
      alltrue([for row in widget.properties.metrics : can(row[0])])
    ])
    error_message = "a dashboard widget has a metrics row that is not an array"
  }
}
