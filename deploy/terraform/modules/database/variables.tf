variable "name" {
  description = "Instance identifier, e.g. reliability-api-production."
  type        = string
}

variable "vpc_id" {
  type = string
}

variable "subnet_ids" {
  description = "Private subnets in at least two zones (a Multi-AZ standby lives in another one)."
  type        = list(string)
}

variable "allowed_security_group_ids" {
  description = "Security groups admitted on 5432 (the EKS cluster's)."
  type        = list(string)
}

variable "engine_version" {
  description = "PostgreSQL version. A major version only: minor versions are applied in the maintenance window."
  type        = string
  default     = "16"
}

variable "instance_class" {
  type = string
}

variable "allocated_storage" {
  description = "Initial storage in GiB."
  type        = number
}

variable "max_allocated_storage" {
  description = "Storage autoscaling ceiling in GiB."
  type        = number
}

variable "multi_az" {
  description = "A synchronous standby in another zone, failed over to automatically. Required in production."
  type        = bool
}

variable "deletion_protection" {
  description = "Refuse to delete the instance (a destroy must turn this off first). Required in production."
  type        = bool
}

variable "backup_retention_period" {
  description = "Days of automated backups and point-in-time recovery."
  type        = number

  validation {
    condition     = var.backup_retention_period >= 7 && var.backup_retention_period <= 35
    error_message = "backup_retention_period must be 7 to 35 days."
  }
}

variable "database_name" {
  type    = string
  default = "reliability"
}

variable "master_username" {
  description = "The administrator; the application gets its own user (docs/deployment.md, \"Secrets\")."
  type        = string
  default     = "reliability_admin"
}
