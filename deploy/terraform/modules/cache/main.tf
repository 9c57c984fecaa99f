# ElastiCache for Redis: TLS and an AUTH token, encrypted at rest, private, and with a replica in another
# zone and automatic failover as the environment asks. The connection URL, token included, is written to
# Secrets Manager, where the ExternalSecret of deploy/kubernetes reads it; the token is also in the
# Terraform state, which is why the state bucket is encrypted and access-controlled.

# ElastiCache tokens are 16 to 128 printable characters without @, " or /: letters and digits only here,
# so the URL needs no escaping.
resource "random_password" "auth_token" {
  length  = 64
  special = false
}

resource "aws_elasticache_subnet_group" "this" {
  name       = var.name
  subnet_ids = var.subnet_ids
}

resource "aws_security_group" "this" {
  name_prefix = "${var.name}-redis-"
  description = "Redis for ${var.name}"
  vpc_id      = var.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

resource "aws_vpc_security_group_ingress_rule" "redis" {
  count = length(var.allowed_security_group_ids)

  security_group_id            = aws_security_group.this.id
  referenced_security_group_id = var.allowed_security_group_ids[count.index]
  ip_protocol                  = "tcp"
  from_port                    = 6379
  to_port                      = 6379
}

resource "aws_elasticache_replication_group" "this" {
  replication_group_id = var.name
  description          = "Redis for ${var.name}"
  engine               = "redis"
  engine_version       = var.engine_version
  node_type            = var.node_type
  port                 = 6379
  parameter_group_name = "default.redis${split(".", var.engine_version)[0]}"

  num_cache_clusters         = var.num_cache_clusters
  automatic_failover_enabled = var.automatic_failover_enabled
  multi_az_enabled           = var.multi_az_enabled

  subnet_group_name  = aws_elasticache_subnet_group.this.name
  security_group_ids = [aws_security_group.this.id]

  at_rest_encryption_enabled = true
  transit_encryption_enabled = true
  auth_token                 = random_password.auth_token.result
  auth_token_update_strategy = "ROTATE"

  snapshot_retention_limit   = var.snapshot_retention_limit
  snapshot_window            = "03:00-04:00"
  maintenance_window         = "sun:05:00-sun:06:00"
  auto_minor_version_upgrade = true
  apply_immediately          = false

  lifecycle {
    precondition {
      condition     = !var.automatic_failover_enabled || var.num_cache_clusters >= 2
      error_message = "Automatic failover needs a replica: num_cache_clusters >= 2."
    }

    precondition {
      condition     = !var.multi_az_enabled || var.automatic_failover_enabled
      error_message = "Multi-AZ needs automatic failover."
    }
  }
}

resource "aws_secretsmanager_secret" "url" {
  for_each = toset(var.url_secret_names)

  name                    = each.value
  description             = "Redis URL of ${var.name}, with its AUTH token"
  recovery_window_in_days = 7
}

resource "aws_secretsmanager_secret_version" "url" {
  for_each = aws_secretsmanager_secret.url

  secret_id     = each.value.id
  secret_string = "rediss://:${random_password.auth_token.result}@${aws_elasticache_replication_group.this.primary_endpoint_address}:6379"
}
