variable "name" {
  description = "Prefix of the role's name, e.g. reliability-api-production."
  type        = string
}

variable "oidc_provider_arn" {
  description = "The cluster's IAM OIDC provider (modules/cluster, oidc_provider_arn)."
  type        = string
}

variable "oidc_provider_url" {
  description = "The cluster's OIDC issuer without https:// (modules/cluster, oidc_provider_url)."
  type        = string

  validation {
    condition     = !startswith(var.oidc_provider_url, "https://")
    error_message = "oidc_provider_url is the issuer without its scheme, as IAM condition keys name it."
  }
}

variable "namespace" {
  description = "Namespace of the ServiceAccount allowed to assume the role, e.g. reliability-api-production."
  type        = string
}

variable "service_account" {
  description = "The only ServiceAccount (in namespace) allowed to assume the role."
  type        = string
}

variable "secret_prefix" {
  description = "The role reads the secrets named <secret_prefix>/..., e.g. reliability-api/production."
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_+=.@-]+(/[A-Za-z0-9_+=.@-]+)*$", var.secret_prefix))
    error_message = "secret_prefix is a literal secret name prefix without wildcards or a trailing slash."
  }
}
