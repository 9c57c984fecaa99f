terraform {
  # 1.9: variable validations that refer to other variables.
  required_version = ">= 1.9.0"

  required_providers {
    # 5.81: thumbprint_list of aws_iam_openid_connect_provider became optional (modules/cluster/main.tf).
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.81, < 6.0"
    }
    random = {
      source  = "hashicorp/random"
      version = ">= 3.6, < 4.0"
    }
  }
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project     = "reliability-api"
      Environment = var.environment
      ManagedBy   = "terraform"
    }
  }
}
