output "primary_endpoint_address" {
  value = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "url_secret_arns" {
  value = { for name, secret in aws_secretsmanager_secret.url : name => secret.arn }
}

output "security_group_id" {
  value = aws_security_group.this.id
}
