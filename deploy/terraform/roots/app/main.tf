# One environment of reliability-api. environments/staging and environments/production link to this
# file and to variables.tf, outputs.tf and versions.tf beside it, so there is one copy of the code; each
# environment has its own backend.tf (its state) and terraform.tfvars (its sizes and guarantees). Module
# sources are relative to the environment directory, which is the same depth as this one.

locals {
  name      = "reliability-api-${var.environment}"
  namespace = "reliability-api-${var.environment}"
  # The remote keys the ExternalSecret of deploy/kubernetes/overlays/<environment> reads Redis URLs from.
  redis_url_secrets = [
    for key in ["redis-url", "rate-limit-storage-uri", "circuit-breaker-cache-url"] :
    "reliability-api/${var.environment}/${key}"
  ]
  # Every remote key of that ExternalSecret lives under this prefix, and nothing else the role below reads.
  secret_prefix = "reliability-api/${var.environment}"
}

module "network" {
  source = "../../modules/network"

  name               = local.name
  cidr_block         = var.vpc_cidr
  availability_zones = var.availability_zones
  single_nat_gateway = var.single_nat_gateway
  cluster_name       = local.name
}

module "cluster" {
  source = "../../modules/cluster"

  name                   = local.name
  kubernetes_version     = var.kubernetes_version
  subnet_ids             = module.network.private_subnet_ids
  endpoint_public_access = var.cluster_endpoint_public_access
  public_access_cidrs    = var.cluster_public_access_cidrs
  node_instance_types    = var.node_instance_types
  node_min_size          = var.node_min_size
  node_max_size          = var.node_max_size
  node_desired_size      = var.node_desired_size
  deployer_role_arn      = var.deployer_role_arn
  deployer_namespace     = local.namespace
}

module "database" {
  source = "../../modules/database"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.cluster.cluster_security_group_id]
  instance_class             = var.database_instance_class
  allocated_storage          = var.database_allocated_storage
  max_allocated_storage      = var.database_max_allocated_storage
  multi_az                   = var.database_multi_az
  deletion_protection        = var.database_deletion_protection
  backup_retention_period    = var.database_backup_retention_period
}

module "cache" {
  source = "../../modules/cache"

  name                       = local.name
  vpc_id                     = module.network.vpc_id
  subnet_ids                 = module.network.private_subnet_ids
  allowed_security_group_ids = [module.cluster.cluster_security_group_id]
  node_type                  = var.cache_node_type
  num_cache_clusters         = var.cache_num_cache_clusters
  automatic_failover_enabled = var.cache_automatic_failover
  multi_az_enabled           = var.cache_multi_az
  url_secret_names           = local.redis_url_secrets
}

module "registry" {
  source = "../../modules/registry"

  name = "reliability-api"
}

# The role the External Secrets Operator assumes for the SecretStore of deploy/kubernetes/aws: the
# ServiceAccount reliability-api-external-secrets of this environment's namespace, reading
# reliability-api/<environment>/* and nothing else (docs/aws.md).
module "secrets_access" {
  source = "../../modules/secrets-access"

  name              = local.name
  oidc_provider_arn = module.cluster.oidc_provider_arn
  oidc_provider_url = module.cluster.oidc_provider_url
  namespace         = local.namespace
  service_account   = "reliability-api-external-secrets"
  secret_prefix     = local.secret_prefix
}
