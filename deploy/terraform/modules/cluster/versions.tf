terraform {
  required_version = ">= 1.9.0"

  required_providers {
    # 5.81: thumbprint_list of aws_iam_openid_connect_provider became optional (modules/cluster/main.tf).
    aws = {
      source  = "hashicorp/aws"
      version = ">= 5.81, < 6.0"
    }
  }
}
