# prod: Multi-AZ database, three zones, artifacts kept on destroy.
environment        = "prod"
region             = "eu-central-1"
availability_zones = ["eu-central-1a", "eu-central-1b", "eu-central-1c"]
vpc_cidr           = "10.41.0.0/16"
github_repository  = "rampart-project/rampart" # placeholder: set to the real owner/name (docs/terraform.md)
github_environment = "production"              # the GitHub environment of deploy.yml and terraform.yml

db_instance_class       = "db.m7g.large"
db_multi_az             = true
artifacts_force_destroy = false
log_level               = "INFO"

ingest_reserved_concurrency = 20
ingest_maximum_concurrency  = 10
api_reserved_concurrency    = 50

api_clients = ["analytics", "partner-portal"]

# Created by the bootstrap (docs/terraform.md) before the first apply: the apply role trusts the account's
# GitHub OIDC provider, so the provider cannot belong to the stack it applies; the boundary policy caps every
# role the apply role creates.
create_github_oidc_provider          = false
iam_permissions_boundary_policy_name = "rampart-prod-permissions-boundary"
