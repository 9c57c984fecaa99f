variable "name" {
  description = "Prefix of every resource name, e.g. reliability-api-production."
  type        = string
}

variable "cidr_block" {
  description = "The VPC's address range; a /16 leaves room for /20 private and /24 public subnets."
  type        = string

  validation {
    condition     = can(cidrnetmask(var.cidr_block)) && tonumber(split("/", var.cidr_block)[1]) <= 16
    error_message = "cidr_block must be an IPv4 CIDR of /16 or larger."
  }
}

variable "availability_zones" {
  description = "One public and one private subnet per zone."
  type        = list(string)

  validation {
    condition     = length(var.availability_zones) >= 2
    error_message = "EKS and Multi-AZ databases need subnets in at least two availability zones."
  }
}

variable "single_nat_gateway" {
  description = "One NAT gateway for every zone (cheaper; a zone outage cuts egress) instead of one per zone."
  type        = bool
}

variable "cluster_name" {
  description = "EKS cluster whose load balancers may use these subnets (subnet discovery tags)."
  type        = string
}

variable "flow_log_retention_days" {
  description = "How long VPC flow logs are kept."
  type        = number
  default     = 90
}
