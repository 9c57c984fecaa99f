variable "name" {
  description = "Replication group id, e.g. reliability-api-production (40 characters at most)."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  type = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups admitted on 6379 (the EKS cluster's)."
  type        = list(string)
}

variable "engine_version" {
  type    = string
  default = "7.1"
}

variable "node_type" {
  type = string
}

variable "num_cache_clusters" {
  description = "Nodes: one primary and num_cache_clusters - 1 replicas."
  type        = number

  validation {
    condition     = var.num_cache_clusters >= 1 && var.num_cache_clusters <= 6
    error_message = "num_cache_clusters must be 1 to 6."
  }
}

variable "automatic_failover_enabled" {
  description = "Promote a replica when the primary fails (needs a replica). Required in production."
  type        = bool
}

variable "multi_az_enabled" {
  description = "Keep the replicas in other zones than the primary (needs automatic failover)."
  type        = bool
}

variable "snapshot_retention_limit" {
  description = "Days of daily snapshots (0 for none: Redis holds nothing that needs a backup, docs/backups.md)."
  type        = number
  default     = 1
}

variable "url_secret_names" {
  description = "Secrets Manager secrets that receive the connection URL (rediss://:token@host:6379), one per setting the app reads it from."
  type        = list(string)
}
