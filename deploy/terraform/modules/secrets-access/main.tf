# The IAM role the External Secrets Operator assumes to read this environment's secrets from Secrets
# Manager (IAM roles for service accounts). Only the token of one Kubernetes ServiceAccount, in one
# namespace, issued by this cluster for STS, may assume it; it may read, and only read, the secrets under
# the environment's prefix. The SecretStore of deploy/kubernetes/aws names that ServiceAccount, whose
# eks.amazonaws.com/role-arn annotation is this role's ARN (docs/aws.md).
#
# No kms:Decrypt: the secrets under the prefix are encrypted with the account's AWS managed key
# aws/secretsmanager (modules/cache sets no kms_key_id), whose key policy lets Secrets Manager decrypt for
# any principal of the account allowed to read the secret. A secret moved to a customer managed key needs
# kms:Decrypt on that key here, scoped with kms:ViaService.

data "aws_partition" "current" {}

# The provider's region and account: the role reads the secrets of the environment it belongs to only.
# (`name` is the region attribute of the AWS provider 5.x that versions.tf allows.)
data "aws_region" "current" {}

data "aws_caller_identity" "current" {}

locals {
  subject     = "system:serviceaccount:${var.namespace}:${var.service_account}"
  secrets_arn = "arn:${data.aws_partition.current.partition}:secretsmanager:${data.aws_region.current.name}:${data.aws_caller_identity.current.account_id}:secret:${var.secret_prefix}/*"
}

data "aws_iam_policy_document" "assume" {
  statement {
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [var.oidc_provider_arn]
    }

    # Exactly this ServiceAccount: StringEquals, never StringLike with a wildcard.
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:sub"
      values   = [local.subject]
    }

    # A token issued for STS, not one the cluster issued for another audience.
    condition {
      test     = "StringEquals"
      variable = "${var.oidc_provider_url}:aud"
      values   = ["sts.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name                 = "${var.name}-external-secrets"
  description          = "External Secrets Operator: reads ${var.secret_prefix}/* for ${local.subject}"
  assume_role_policy   = data.aws_iam_policy_document.assume.json
  max_session_duration = 3600
}

# Secrets Manager ARNs end in a random six-character suffix, hence the trailing wildcard after the prefix.
data "aws_iam_policy_document" "read" {
  statement {
    sid = "ReadEnvironmentSecrets"
    actions = [
      "secretsmanager:GetSecretValue",
      "secretsmanager:DescribeSecret",
    ]
    resources = [local.secrets_arn]
  }
}

resource "aws_iam_role_policy" "read" {
  name   = "read-secrets"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.read.json
}
