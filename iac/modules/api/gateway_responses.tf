# API Gateway answers some requests itself, before the Lambda runs: a missing or unknown key (403), throttling
# and quota (429), a failed or timed-out integration (5xx), WAF blocks. Those answers never pass through the
# handler's security headers, so every gateway response carries the same headers here (issue 12). Values are
# static: API Gateway strips the outer single quotes and keeps the inner ones ('none' in the CSP).

locals {
  # The same values as SECURITY_HEADERS in src/rampart/api/handler.py (tests/iac/test_static_controls.py
  # compares them).
  gateway_security_headers = {
    "Strict-Transport-Security"    = "max-age=63072000; includeSubDomains; preload"
    "X-Content-Type-Options"       = "nosniff"
    "Cache-Control"                = "no-store"
    "Content-Security-Policy"      = "default-src 'none'; frame-ancestors 'none'"
    "X-Frame-Options"              = "DENY"
    "Referrer-Policy"              = "no-referrer"
    "Cross-Origin-Resource-Policy" = "same-origin"
    "Permissions-Policy"           = "camera=(), microphone=(), geolocation=()"
  }

  # DEFAULT_4XX / DEFAULT_5XX cover every type not listed; the types a client of this API can actually meet are
  # set explicitly, so none of them depends on inheritance from the defaults.
  gateway_response_types = toset([
    "DEFAULT_4XX",
    "DEFAULT_5XX",
    "ACCESS_DENIED",
    "API_CONFIGURATION_ERROR",
    "BAD_REQUEST_PARAMETERS",
    "BAD_REQUEST_BODY",
    "EXPIRED_TOKEN",
    "INTEGRATION_FAILURE",
    "INTEGRATION_TIMEOUT",
    "INVALID_API_KEY",
    "INVALID_SIGNATURE",
    "MISSING_AUTHENTICATION_TOKEN",
    "QUOTA_EXCEEDED",
    "REQUEST_TOO_LARGE",
    "RESOURCE_NOT_FOUND",
    "THROTTLED",
    "UNAUTHORIZED",
    "UNSUPPORTED_MEDIA_TYPE",
    "WAF_FILTERED",
  ])
}

resource "aws_api_gateway_gateway_response" "security_headers" {
  for_each = local.gateway_response_types

  rest_api_id   = aws_api_gateway_rest_api.this.id
  response_type = each.value

  response_parameters = {
    for name, value in local.gateway_security_headers : "gatewayresponse.header.${name}" => "'${value}'"
  }

  # API Gateway's own message, as JSON (the default template, stated so it cannot drift).
  response_templates = {
    "application/json" = "{\"message\":$context.error.messageString}"
  }
}
