{{/* Labels of every object: the Kustomize base's, with Helm's managed-by and the release as instance. */}}
{{- define "reliability-api.labels" -}}
app.kubernetes.io/name: reliability-api
app.kubernetes.io/part-of: reliability-api
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* Labels of every pod template (no chart version: a chart bump alone must not roll the pods). */}}
{{- define "reliability-api.podLabels" -}}
app.kubernetes.io/name: reliability-api
app.kubernetes.io/part-of: reliability-api
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "reliability-api.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/* The secret settings, read from the Secret the ExternalSecret produces. */}}
{{- define "reliability-api.secretSettings" -}}
- DATABASE_URL
- REDIS_URL
- RATE_LIMIT_STORAGE_URI
- CIRCUIT_BREAKER_CACHE_URL
- SECRET_KEY
{{- end -}}

{{- define "reliability-api.secretEnv" -}}
{{- range (include "reliability-api.secretSettings" . | fromYamlArray) }}
- name: {{ . }}
  valueFrom:
    secretKeyRef:
      name: reliability-api-secrets
      key: {{ . }}
{{- end }}
{{- end -}}

{{/* What every pod runs as: uid, gid and fsGroup 10001, RuntimeDefault seccomp. */}}
{{- define "reliability-api.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: 10001
runAsGroup: 10001
fsGroup: 10001
seccompProfile:
  type: RuntimeDefault
{{- end -}}

{{- define "reliability-api.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
privileged: false
capabilities:
  drop:
    - ALL
{{- end -}}

{{/*
The objects the migration hook needs exist before it runs, on the first install too: they are hooks
themselves, created first (a lower weight) and replaced on every upgrade.
*/}}
{{- define "reliability-api.configHook" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: '-10'
helm.sh/hook-delete-policy: before-hook-creation
{{- end -}}
