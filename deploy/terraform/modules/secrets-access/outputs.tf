# The eks.amazonaws.com/role-arn annotation of the ServiceAccount the SecretStore uses.
output "role_arn" {
  value = aws_iam_role.this.arn
}

output "role_name" {
  value = aws_iam_role.this.name
}
