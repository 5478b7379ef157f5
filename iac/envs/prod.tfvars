# prod: Multi-AZ database, three zones, artifacts kept on destroy.
environment        = "prod"
region             = "eu-central-1"
availability_zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
vpc_cidr           = "10.41.0.0/16"
# placeholder: the real owner/name, or owner@<owner_id>/name@<repo_id> with immutable OIDC subjects (docs/terraform.md)
github_repository        = "rampart-project/rampart"
github_environment       = "production"       # deploy.yml's deploy job: the deploy role
github_apply_environment = "production-infra" # deploy.yml's apply job: the bootstrap's apply role

db_instance_class       = "db.m7g.large"
db_multi_az             = true
artifacts_force_destroy = false
log_level               = "INFO"

ingest_reserved_concurrency = 20
ingest_maximum_concurrency  = 10
api_reserved_concurrency    = 50

api_client_tiers = {
  standard = { rate_limit = 20, burst_limit = 40, quota_per_day = 100000 }
  partner  = { rate_limit = 50, burst_limit = 100, quota_per_day = 500000 }
}

# Created by the bootstrap (docs/terraform.md) before the first apply: the apply role trusts the account's
# GitHub OIDC provider, so the provider cannot belong to the stack it applies; the boundary policy caps every
# role the apply role creates.
create_github_oidc_provider          = false
iam_permissions_boundary_policy_name = "rampart-prod-permissions-boundary"
