variable "name" {
  description = "The EKS cluster's name, e.g. reliability-api-production."
  type        = string
}

variable "kubernetes_version" {
  description = "EKS Kubernetes version; 1.30 or later (native preStop sleep, matchLabelKeys; docs/kubernetes.md)."
  type        = string

  validation {
    condition     = can(regex("^1\\.(3[0-9]|[4-9][0-9])$", var.kubernetes_version))
    error_message = "kubernetes_version must be 1.30 or later, as MAJOR.MINOR."
  }
}

variable "subnet_ids" {
  description = "Private subnets for the control plane's interfaces and the nodes."
  type        = list(string)
}

variable "endpoint_public_access" {
  description = "Whether the API server endpoint is reachable from the internet (from public_access_cidrs only)."
  type        = bool
}

variable "public_access_cidrs" {
  description = "Addresses allowed to reach a public API server endpoint (CI runners, the VPN)."
  type        = list(string)

  validation {
    condition     = !contains(var.public_access_cidrs, "0.0.0.0/0")
    error_message = "Do not open the API server endpoint to the whole internet."
  }
}

variable "node_instance_types" {
  description = "Instance types of the managed node group."
  type        = list(string)
}

variable "node_min_size" {
  type = number
}

variable "node_max_size" {
  type = number
}

variable "node_desired_size" {
  description = "Initial size; the cluster autoscaler owns it afterwards."
  type        = number
}

variable "deployer_role_arn" {
  description = "IAM role of the deploy workflow (assumed through GitHub OIDC); null for none."
  type        = string
  default     = null
}

variable "deployer_namespace" {
  description = "The only namespace the deployer role may change."
  type        = string
}

variable "log_retention_days" {
  description = "How long control plane logs are kept."
  type        = number
  default     = 90
}
