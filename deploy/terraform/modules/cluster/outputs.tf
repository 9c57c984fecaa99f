output "cluster_name" {
  value = aws_eks_cluster.this.name
}

output "cluster_endpoint" {
  value = aws_eks_cluster.this.endpoint
}

output "cluster_certificate_authority" {
  value = aws_eks_cluster.this.certificate_authority[0].data
}

# The security group EKS attaches to the control plane and the managed nodes: the database and the cache
# admit connections from it.
output "cluster_security_group_id" {
  value = aws_eks_cluster.this.vpc_config[0].cluster_security_group_id
}

# The issuer URL (https://oidc.eks.<region>.amazonaws.com/id/<id>).
output "oidc_issuer" {
  value = aws_eks_cluster.this.identity[0].oidc[0].issuer
}

# The IAM OIDC provider of the cluster: the Federated principal of every IRSA trust policy.
output "oidc_provider_arn" {
  value = aws_iam_openid_connect_provider.this.arn
}

# The issuer without its scheme: the prefix of the condition keys of those trust policies
# (<url>:sub, <url>:aud).
output "oidc_provider_url" {
  value = trimprefix(aws_iam_openid_connect_provider.this.url, "https://")
}
