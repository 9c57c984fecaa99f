# Production: three zones, a NAT gateway per zone, a Multi-AZ database that cannot be deleted by accident
# with 30 days of point-in-time recovery, and Redis with a replica in another zone and automatic failover.
environment = "production"
region      = "eu-west-1"

vpc_cidr           = "10.30.0.0/16"
availability_zones = ["eu-west-1a", "eu-west-1b", "eu-west-1c"]
single_nat_gateway = false

kubernetes_version             = "1.32"
cluster_endpoint_public_access = true
cluster_public_access_cidrs    = ["203.0.113.0/24"]
node_instance_types            = ["m6i.large"]
node_min_size                  = 3
node_max_size                  = 9
node_desired_size              = 3

database_instance_class          = "db.m6g.large"
database_allocated_storage       = 100
database_max_allocated_storage   = 500
database_multi_az                = true
database_deletion_protection     = true
database_backup_retention_period = 30

cache_node_type          = "cache.m6g.large"
cache_num_cache_clusters = 2
cache_automatic_failover = true
cache_multi_az           = true
