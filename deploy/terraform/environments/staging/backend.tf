# This environment's state: its own bucket and key, locked in DynamoDB. The bucket and the table are
# created once per AWS account by deploy/terraform/bootstrap.
terraform {
  backend "s3" {
    bucket         = "reliability-api-terraform-state-staging"
    key            = "reliability-api/staging/terraform.tfstate"
    region         = "eu-west-1"
    dynamodb_table = "reliability-api-terraform-locks"
    encrypt        = true
  }
}
