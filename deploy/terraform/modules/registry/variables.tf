variable "name" {
  description = "Repository name; the image the release workflow copies here (vars.ECR_REPOSITORY)."
  type        = string
}

variable "untagged_expiry_days" {
  description = "Untagged images (replaced index manifests, interrupted pushes) are deleted after this many days."
  type        = number
  default     = 14
}
