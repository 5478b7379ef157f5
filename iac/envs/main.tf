# The Rampart stack: one root, one state per environment (dev.tfvars / prod.tfvars with their
# own backend key). Only wiring lives here; every resource is in a module.

data "aws_partition" "current" {}
data "aws_caller_identity" "current" {}

locals {
  name = "${var.name}-${var.environment}"

  # GitHub environment of the deploy job; the apply job's is its own (default: <that>-infra).
  github_environment = coalesce(var.github_environment, var.environment)

  # Boundary of every IAM role of the stack: a managed policy the bootstrap creates (docs/terraform.md);
  # the apply role may create and change <name>-<environment>-* roles only with it attached.
  permissions_boundary_arn = var.iam_permissions_boundary_policy_name == null ? null : "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:policy/${var.iam_permissions_boundary_policy_name}"

  ingest_zip_path = coalesce(var.ingest_zip_path, "${path.root}/../../dist/lambda/ingest.zip")
  api_zip_path    = coalesce(var.api_zip_path, "${path.root}/../../dist/lambda/api.zip")

  # AWS: queue visibility >= 6 x function timeout + batching window.
  queue_visibility_timeout = 6 * var.ingest_timeout_seconds + var.ingest_batching_window_seconds
}

module "network" {
  source = "../modules/network"

  name                     = local.name
  cidr_block               = var.vpc_cidr
  availability_zones       = var.availability_zones
  permissions_boundary_arn = local.permissions_boundary_arn
}

module "pubsub" {
  source = "../modules/pubsub"

  name                       = local.name
  publisher_arns             = var.publisher_arns
  visibility_timeout_seconds = local.queue_visibility_timeout
  max_receive_count          = var.max_receive_count
}

module "database" {
  source = "../modules/database"

  name                     = local.name
  subnet_ids               = module.network.private_subnet_ids
  security_group_ids       = [module.network.database_security_group_id]
  engine_major_version     = var.db_engine_major_version
  instance_class           = var.db_instance_class
  multi_az                 = var.db_multi_az
  deletion_protection      = var.db_deletion_protection
  iam_database_users       = ["rampart_ingest", "rampart_api"]
  permissions_boundary_arn = local.permissions_boundary_arn
}

module "functions" {
  source = "../modules/functions"

  name               = local.name
  ingest_zip_path    = local.ingest_zip_path
  api_zip_path       = local.api_zip_path
  subnet_ids         = module.network.private_subnet_ids
  security_group_ids = [module.network.lambda_security_group_id]

  db_host        = module.database.address
  db_port        = module.database.port
  db_name        = module.database.database_name
  ingest_db_user = "rampart_ingest"
  api_db_user    = "rampart_api"
  db_resource_id = module.database.resource_id

  queue_arn         = module.pubsub.queue_arn
  dlq_arn           = module.pubsub.dlq_arn
  dlq_url           = module.pubsub.dlq_url
  queue_kms_key_arn = module.pubsub.kms_key_arn

  ingest_timeout_seconds             = var.ingest_timeout_seconds
  maximum_batching_window_in_seconds = var.ingest_batching_window_seconds
  batch_size                         = var.ingest_batch_size
  maximum_concurrency                = var.ingest_maximum_concurrency
  ingest_reserved_concurrency        = var.ingest_reserved_concurrency
  api_reserved_concurrency           = var.api_reserved_concurrency
  log_level                          = var.log_level
  artifacts_force_destroy            = var.artifacts_force_destroy
  permissions_boundary_arn           = local.permissions_boundary_arn
}

module "api" {
  source = "../modules/api"

  name                           = local.name
  function_name                  = module.functions.api_function_name
  function_alias                 = module.functions.live_alias_name
  function_invoke_arn            = module.functions.api_live_invoke_arn
  api_client_tiers               = var.api_client_tiers
  waf_rate_limit_per_5_minutes   = var.waf_rate_limit_per_5_minutes
  manage_account_cloudwatch_role = var.manage_apigateway_account_role
  permissions_boundary_arn       = local.permissions_boundary_arn
}

module "github_oidc" {
  source = "../modules/github_oidc"

  name                     = local.name
  github_repository        = var.github_repository
  github_environment       = local.github_environment
  github_apply_environment = coalesce(var.github_apply_environment, "${local.github_environment}-infra")
  create_oidc_provider     = var.create_github_oidc_provider
  function_arns            = [module.functions.ingest_function_arn, module.functions.api_function_arn]
  signing_profile_arn      = module.functions.signing_profile_arn
  artifact_bucket_arn      = module.functions.artifact_bucket_arn
  artifact_kms_key_arn     = module.functions.kms_key_arn
  api_keys_kms_key_arn     = module.api.api_keys_kms_key_arn
  state_bucket_name        = var.state_bucket_name
  state_key                = "rampart/${var.environment}/terraform.tfstate"
  state_kms_key_arn        = var.state_kms_key_arn
  permissions_boundary_arn = local.permissions_boundary_arn
}

module "monitoring" {
  source = "../modules/monitoring"

  name                   = local.name
  alarm_subscribers      = var.alarm_subscribers
  topic_name             = module.pubsub.topic_name
  queue_name             = module.pubsub.queue_name
  dlq_name               = module.pubsub.dlq_name
  delivery_dlq_name      = module.pubsub.delivery_dlq_name
  ingest_function_name   = module.functions.ingest_function_name
  api_function_name      = module.functions.api_function_name
  api_name               = module.api.rest_api_name
  api_stage_name         = module.api.stage_name
  db_instance_identifier = module.database.instance_identifier
  web_acl_name           = module.api.web_acl_name
  # Each warm Lambda environment holds one connection: both reserved concurrencies, plus headroom.
  db_max_connections = var.ingest_reserved_concurrency + var.api_reserved_concurrency + 10
}
