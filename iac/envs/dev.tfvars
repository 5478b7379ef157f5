# dev: single-AZ database and a disposable artifact bucket; everything else as in prod.
environment        = "dev"
region             = "eu-central-1"
availability_zones = ["eu-central-1a", "eu-central-1b"]
vpc_cidr           = "10.40.0.0/16"
# placeholder: the real owner/name, or owner@<owner_id>/name@<repo_id> with immutable OIDC subjects (docs/terraform.md)
github_repository = "rampart-project/rampart"

db_instance_class       = "db.t4g.small"
db_multi_az             = false
artifacts_force_destroy = true
log_level               = "DEBUG"

# Created by the bootstrap (docs/terraform.md) before the first apply.
iam_permissions_boundary_policy_name = "rampart-dev-permissions-boundary"

# Who the alarms reach (at least one; prod takes them from the ALARM_SUBSCRIBERS repository variable). An example
# address: set your team's.
alarm_subscribers = [{ protocol = "email", endpoint = "rampart-oncall@example.com" }]
