output "vpc_id" {
  value = module.network.vpc_id
}

# The deploy workflow's EKS_CLUSTER_NAME.
output "cluster_name" {
  value = module.cluster.cluster_name
}

output "cluster_endpoint" {
  value = module.cluster.cluster_endpoint
}

# The release workflow's ECR_REPOSITORY.
output "ecr_repository_url" {
  value = module.registry.repository_url
}

output "database_address" {
  value = module.database.address
}

output "database_master_user_secret_arn" {
  value = module.database.master_user_secret_arn
}

output "redis_primary_endpoint" {
  value = module.cache.primary_endpoint_address
}

output "redis_url_secret_arns" {
  value = module.cache.url_secret_arns
}

# The eks.amazonaws.com/role-arn annotation of the ServiceAccount reliability-api-external-secrets
# (set in deploy/kubernetes/aws/production/kustomization.yaml).
output "external_secrets_role_arn" {
  value = module.secrets_access.role_arn
}

output "cluster_oidc_provider_arn" {
  value = module.cluster.oidc_provider_arn
}
