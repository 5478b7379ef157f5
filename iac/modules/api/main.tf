# Regional REST API: one resource and GET method per route, every method behind an API key and a
# request validator, Lambda proxy integration; stage with access logs, X-Ray and throttling; a usage
# plan per client tier (keys are issued outside Terraform by rampart keys); WAFv2 in front.

data "aws_region" "current" {}
data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  region     = data.aws_region.current.name
  partition  = data.aws_partition.current.partition

  access_log_group_name    = "/aws/apigateway/${var.name}/access"
  execution_log_group_name = "API-Gateway-Execution-Logs_${aws_api_gateway_rest_api.this.id}/${var.stage_name}"
  waf_log_group_name       = "aws-waf-logs-${var.name}" # WAF requires the aws-waf-logs- prefix

  # Route -> resource it is attached to and the request parameters the validator enforces.
  routes = {
    "/v1/events" = {
      resource_id = aws_api_gateway_resource.events.id
      parameters  = {}
    }
    "/v1/events/{event_id}" = {
      resource_id = aws_api_gateway_resource.event_id.id
      parameters  = { "method.request.path.event_id" = true }
    }
    "/v1/stats" = {
      resource_id = aws_api_gateway_resource.stats.id
      parameters  = {}
    }
    "/v1/health" = {
      resource_id = aws_api_gateway_resource.health.id
      parameters  = {}
    }
  }
}

################################################################################
# Customer-managed key for the API's log groups
################################################################################

data "aws_iam_policy_document" "key_services" {
  statement {
    sid       = "CloudWatchLogsApiLogGroups"
    actions   = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
    resources = ["*"]

    principals {
      type        = "Service"
      identifiers = ["logs.${local.region}.amazonaws.com"]
    }

    condition {
      test     = "ArnLike"
      variable = "kms:EncryptionContext:aws:logs:arn"
      values = [
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.access_log_group_name}",
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:API-Gateway-Execution-Logs_*/${var.stage_name}",
        "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.waf_log_group_name}",
      ]
    }
  }
}

module "key" {
  source = "../kms_key"

  alias                    = "${var.name}-api-logs"
  description              = "${var.name} API access, execution and WAF logs"
  deletion_window_in_days  = var.kms_deletion_window_in_days
  service_policy_documents = [data.aws_iam_policy_document.key_services.json]
}

resource "aws_cloudwatch_log_group" "access" {
  name              = local.access_log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = module.key.arn
}

# Pre-created so API Gateway's execution logs are encrypted and expire too.
resource "aws_cloudwatch_log_group" "execution" {
  name              = local.execution_log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = module.key.arn
}

resource "aws_cloudwatch_log_group" "waf" {
  name              = local.waf_log_group_name
  retention_in_days = var.log_retention_in_days
  kms_key_id        = module.key.arn
}

################################################################################
# Account-level CloudWatch role for execution logging (one per account and region)
################################################################################

data "aws_iam_policy_document" "apigateway_assume" {
  count = var.manage_account_cloudwatch_role ? 1 : 0

  statement {
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["apigateway.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }
  }
}

resource "aws_iam_role" "apigateway_cloudwatch" {
  count = var.manage_account_cloudwatch_role ? 1 : 0

  name                 = "${var.name}-apigateway-cloudwatch"
  assume_role_policy   = data.aws_iam_policy_document.apigateway_assume[0].json
  permissions_boundary = var.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "apigateway_cloudwatch" {
  count = var.manage_account_cloudwatch_role ? 1 : 0

  role       = aws_iam_role.apigateway_cloudwatch[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
}

resource "aws_api_gateway_account" "this" {
  count = var.manage_account_cloudwatch_role ? 1 : 0

  cloudwatch_role_arn = aws_iam_role.apigateway_cloudwatch[0].arn

  depends_on = [aws_iam_role_policy_attachment.apigateway_cloudwatch]
}

################################################################################
# REST API, resources, methods, integrations
################################################################################

resource "aws_api_gateway_rest_api" "this" {
  name                         = var.name
  description                  = "Rampart read API (API key required on every method)"
  api_key_source               = "HEADER"
  disable_execute_api_endpoint = false

  endpoint_configuration {
    types = ["REGIONAL"]
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_request_validator" "this" {
  rest_api_id                 = aws_api_gateway_rest_api.this.id
  name                        = "parameters"
  validate_request_parameters = true
  validate_request_body       = false # every route is a GET without a body
}

resource "aws_api_gateway_resource" "v1" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_rest_api.this.root_resource_id
  path_part   = "v1"
}

resource "aws_api_gateway_resource" "events" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "events"
}

resource "aws_api_gateway_resource" "event_id" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.events.id
  path_part   = "{event_id}"
}

resource "aws_api_gateway_resource" "stats" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "stats"
}

resource "aws_api_gateway_resource" "health" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  parent_id   = aws_api_gateway_resource.v1.id
  path_part   = "health"
}

resource "aws_api_gateway_method" "get" {
  for_each = local.routes

  rest_api_id          = aws_api_gateway_rest_api.this.id
  resource_id          = each.value.resource_id
  http_method          = "GET"
  authorization        = "NONE" # callers are identified by their API key and usage plan
  api_key_required     = true
  request_validator_id = aws_api_gateway_request_validator.this.id
  request_parameters   = merge({ "method.request.header.x-api-key" = true }, each.value.parameters)
}

resource "aws_api_gateway_integration" "get" {
  for_each = local.routes

  rest_api_id             = aws_api_gateway_rest_api.this.id
  resource_id             = each.value.resource_id
  http_method             = aws_api_gateway_method.get[each.key].http_method
  type                    = "AWS_PROXY"
  integration_http_method = "POST"
  uri                     = var.function_invoke_arn
  timeout_milliseconds    = var.integration_timeout_ms
}

resource "aws_lambda_permission" "api" {
  statement_id  = "AllowApiGatewayGetRoutes"
  action        = "lambda:InvokeFunction"
  function_name = var.function_name
  qualifier     = var.function_alias
  principal     = "apigateway.amazonaws.com"
  source_arn    = "${aws_api_gateway_rest_api.this.execution_arn}/${var.stage_name}/GET/v1/*"
}

resource "aws_api_gateway_deployment" "this" {
  rest_api_id = aws_api_gateway_rest_api.this.id
  description = "Rampart ${var.stage_name}"

  triggers = {
    redeployment = sha1(jsonencode([
      aws_api_gateway_resource.v1.id,
      aws_api_gateway_resource.events.id,
      aws_api_gateway_resource.event_id.id,
      aws_api_gateway_resource.stats.id,
      aws_api_gateway_resource.health.id,
      [for route, method in aws_api_gateway_method.get : [route, method.id, method.api_key_required, method.request_parameters]],
      [for route, integration in aws_api_gateway_integration.get : [route, integration.id, integration.uri]],
      [for type, response in aws_api_gateway_gateway_response.security_headers : [type, response.id, response.response_parameters]],
    ]))
  }

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_api_gateway_stage" "this" {
  #checkov:skip=CKV_AWS_120:responses are per-key live data and small; a cache cluster costs from ~$14/month per stage and would serve stale events
  #checkov:skip=CKV2_AWS_51:client certificates authenticate API Gateway to HTTP backends; the only backend is a Lambda proxy integration invoked through IAM
  rest_api_id          = aws_api_gateway_rest_api.this.id
  deployment_id        = aws_api_gateway_deployment.this.id
  stage_name           = var.stage_name
  xray_tracing_enabled = true

  access_log_settings {
    destination_arn = aws_cloudwatch_log_group.access.arn
    # apiKeyId, never the key value.
    format = jsonencode({
      requestId      = "$context.requestId"
      extendedId     = "$context.extendedRequestId"
      ip             = "$context.identity.sourceIp"
      userAgent      = "$context.identity.userAgent"
      apiKeyId       = "$context.identity.apiKeyId"
      requestTime    = "$context.requestTime"
      httpMethod     = "$context.httpMethod"
      resourcePath   = "$context.resourcePath"
      status         = "$context.status"
      responseLength = "$context.responseLength"
      latencyMs      = "$context.responseLatency"
      integrationMs  = "$context.integration.latency"
      wafStatus      = "$context.waf.status"
      errorMessage   = "$context.error.message"
    })
  }

  depends_on = [aws_cloudwatch_log_group.execution, aws_api_gateway_account.this]
}

resource "aws_api_gateway_method_settings" "all" {
  #checkov:skip=CKV_AWS_225:caching is off on purpose (see the stage: live per-key data, cost); cache_data_encrypted stays on should it ever be enabled
  rest_api_id = aws_api_gateway_rest_api.this.id
  stage_name  = aws_api_gateway_stage.this.stage_name
  method_path = "*/*"

  settings {
    metrics_enabled        = true
    logging_level          = var.execution_logging_level
    data_trace_enabled     = false # full request logging would write x-api-key values into the logs
    throttling_burst_limit = var.stage_throttle_burst_limit
    throttling_rate_limit  = var.stage_throttle_rate_limit
    caching_enabled        = false
    cache_data_encrypted   = true
  }
}

################################################################################
# Usage plans, one per client tier. No API key is a Terraform resource: `rampart keys create|rotate|revoke`
# issues each client's key (named <name>-<client>-<n>, attached to its tier's plan) and keeps its value in
# the Secrets Manager secret <name>/api-keys/<client>, encrypted with the CMK below. So no key value is ever
# in the Terraform state or plan, and a pull request's plan reads none.
################################################################################

resource "aws_api_gateway_usage_plan" "tier" {
  for_each = var.api_client_tiers

  name        = "${var.name}-${each.key}"
  description = "Throttle and daily quota of every ${each.key}-tier Rampart API client"

  api_stages {
    api_id = aws_api_gateway_rest_api.this.id
    stage  = aws_api_gateway_stage.this.stage_name
  }

  throttle_settings {
    rate_limit  = each.value.rate_limit
    burst_limit = each.value.burst_limit
  }

  quota_settings {
    limit  = each.value.quota_per_day
    period = "DAY"
  }

  tags = {
    "rampart:tier" = each.key
  }
}

# The CMK of the client key secrets: rotating, and usable for encryption and decryption only through Secrets
# Manager in this account and region (the key policy denies any direct use, whoever the caller); IAM policies
# decide who may read which secret (the deploy role: the smoke-test client's only).
data "aws_iam_policy_document" "api_keys_key" {
  statement {
    sid       = "OnlyThroughSecretsManager"
    effect    = "Deny"
    actions   = ["kms:Encrypt", "kms:Decrypt", "kms:ReEncrypt*", "kms:GenerateDataKey*"]
    resources = ["*"]

    principals {
      type        = "AWS"
      identifiers = ["*"]
    }

    condition {
      test     = "StringNotEquals"
      variable = "kms:ViaService"
      values   = ["secretsmanager.${local.region}.amazonaws.com"]
    }
  }
}

module "api_keys_key" {
  source = "../kms_key"

  alias                    = "${var.name}-api-keys"
  description              = "${var.name} API client key secrets (<name>/api-keys/<client>, written by rampart keys)"
  deletion_window_in_days  = var.kms_deletion_window_in_days
  service_policy_documents = [data.aws_iam_policy_document.api_keys_key.json]
}

################################################################################
# WAFv2: AWS managed rule groups + per-IP rate limit, logged with x-api-key redacted
################################################################################

resource "aws_wafv2_web_acl" "this" {
  name        = var.name
  description = "Rampart API: AWS managed rules and a per-IP rate limit"
  scope       = "REGIONAL"

  default_action {
    allow {}
  }

  rule {
    name     = "rate-limit-per-ip"
    priority = 0

    action {
      block {}
    }

    statement {
      rate_based_statement {
        limit                 = var.waf_rate_limit_per_5_minutes
        aggregate_key_type    = "IP"
        evaluation_window_sec = 300
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-rate-limit"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-ip-reputation"
    priority = 10

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAmazonIpReputationList"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-ip-reputation"
      sampled_requests_enabled   = true
    }
  }

  # Tor exit nodes and anonymising VPNs are blocked; the hosting-provider list only counts,
  # because legitimate server-side clients run in clouds.
  rule {
    name     = "aws-anonymous-ip"
    priority = 15

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesAnonymousIpList"

        rule_action_override {
          name = "HostingProviderIPList"

          action_to_use {
            count {}
          }
        }
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-anonymous-ip"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-common"
    priority = 20

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesCommonRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-common"
      sampled_requests_enabled   = true
    }
  }

  # Includes Log4JRCE (CVE-2021-44228).
  rule {
    name     = "aws-known-bad-inputs"
    priority = 30

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesKnownBadInputsRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-known-bad-inputs"
      sampled_requests_enabled   = true
    }
  }

  rule {
    name     = "aws-sqli"
    priority = 40

    override_action {
      none {}
    }

    statement {
      managed_rule_group_statement {
        vendor_name = "AWS"
        name        = "AWSManagedRulesSQLiRuleSet"
      }
    }

    visibility_config {
      cloudwatch_metrics_enabled = true
      metric_name                = "${var.name}-sqli"
      sampled_requests_enabled   = true
    }
  }

  visibility_config {
    cloudwatch_metrics_enabled = true
    metric_name                = var.name
    sampled_requests_enabled   = true
  }
}

resource "aws_wafv2_web_acl_association" "stage" {
  resource_arn = aws_api_gateway_stage.this.arn
  web_acl_arn  = aws_wafv2_web_acl.this.arn
}

resource "aws_wafv2_web_acl_logging_configuration" "this" {
  resource_arn            = aws_wafv2_web_acl.this.arn
  log_destination_configs = [aws_cloudwatch_log_group.waf.arn]

  redacted_fields {
    single_header {
      name = "x-api-key"
    }
  }
}
