terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 5.100"
    }
  }

  # Partial configuration: bucket and region come from CI at init time, the rest from
  # <env>.s3.tfbackend (encrypted state, S3-native locking). See iac/README.md.
  backend "s3" {}
}
