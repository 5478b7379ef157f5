# dev: single-AZ database and a disposable artifact bucket; everything else as in prod.
environment        = "dev"
region             = "eu-central-1"
availability_zones = ["eu-central-1a", "eu-central-1b"]
vpc_cidr           = "10.40.0.0/16"
github_repository  = "rampart-project/rampart"

db_instance_class       = "db.t4g.small"
db_multi_az             = false
artifacts_force_destroy = true
log_level               = "DEBUG"

api_clients = ["smoke-test", "analytics"]
