variable "environment" {
  description = "staging or production; names every resource and selects the guarantees below."
  type        = string

  validation {
    condition     = contains(["staging", "production"], var.environment)
    error_message = "environment must be staging or production."
  }
}

variable "region" {
  type = string
}

variable "vpc_cidr" {
  type = string
}

variable "availability_zones" {
  type = list(string)
}

variable "single_nat_gateway" {
  type = bool
}

variable "kubernetes_version" {
  type = string
}

variable "cluster_endpoint_public_access" {
  type = bool
}

variable "cluster_public_access_cidrs" {
  type = list(string)
}

variable "node_instance_types" {
  type = list(string)
}

variable "node_min_size" {
  type = number
}

variable "node_max_size" {
  type = number
}

variable "node_desired_size" {
  type = number
}

variable "deployer_role_arn" {
  description = "IAM role the deploy workflow assumes (GitHub OIDC); null until it exists."
  type        = string
  default     = null
}

variable "database_instance_class" {
  type = string
}

variable "database_allocated_storage" {
  type = number
}

variable "database_max_allocated_storage" {
  type = number
}

variable "database_multi_az" {
  type = bool

  validation {
    condition     = var.environment != "production" || var.database_multi_az
    error_message = "Production runs PostgreSQL Multi-AZ."
  }
}

variable "database_deletion_protection" {
  type = bool

  validation {
    condition     = var.environment != "production" || var.database_deletion_protection
    error_message = "Production protects its database from deletion."
  }
}

variable "database_backup_retention_period" {
  type = number

  validation {
    condition     = var.database_backup_retention_period >= (var.environment == "production" ? 14 : 7)
    error_message = "Keep at least 7 days of backups, 14 in production."
  }
}

variable "cache_node_type" {
  type = string
}

variable "cache_num_cache_clusters" {
  type = number
}

variable "cache_automatic_failover" {
  type = bool

  validation {
    condition     = var.environment != "production" || var.cache_automatic_failover
    error_message = "Production fails Redis over automatically."
  }
}

variable "cache_multi_az" {
  type = bool

  validation {
    condition     = var.environment != "production" || var.cache_multi_az
    error_message = "Production keeps a Redis replica in another zone."
  }
}
