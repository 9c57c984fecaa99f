# Staging: production's shape at the smallest size that still spreads over two zones. Cheaper where a
# failure costs only time: one NAT gateway, a single-AZ database, no Redis replica.
environment = "staging"
region      = "eu-west-1"

vpc_cidr           = "10.20.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b"]
single_nat_gateway = true

kubernetes_version             = "1.32"
cluster_endpoint_public_access = true
cluster_public_access_cidrs    = ["203.0.113.0/24"]
node_instance_types            = ["t3.large"]
node_min_size                  = 2
node_max_size                  = 4
node_desired_size              = 2

database_instance_class          = "db.t4g.medium"
database_allocated_storage       = 20
database_max_allocated_storage   = 100
database_multi_az                = false
database_deletion_protection     = false
database_backup_retention_period = 7

cache_node_type          = "cache.t4g.small"
cache_num_cache_clusters = 1
cache_automatic_failover = false
cache_multi_az           = false
