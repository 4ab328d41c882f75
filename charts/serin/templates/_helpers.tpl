{{- define "serin.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "serin.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "serin.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: controller
{{- end -}}

{{- define "serin.serviceAccountName" -}}
{{- default (include "serin.fullname" .) .Values.serviceAccount.name -}}
{{- end -}}

{{- define "serin.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) -}}
{{- end -}}

{{/* The controller's permissions: the rules of config/rbac.yaml (files/rbac.yaml); with
secretsAccess by-name, without list and watch on Secrets. */}}
{{- define "serin.rules" -}}
{{- $rules := list -}}
{{- range (.Files.Get "files/rbac.yaml" | fromYaml).rules -}}
{{- if and (eq $.Values.secretsAccess "by-name") (has "secrets" .resources) -}}
{{- $rules = append $rules (dict "apiGroups" .apiGroups "resources" .resources "verbs" (without .verbs "list" "watch")) -}}
{{- else -}}
{{- $rules = append $rules . -}}
{{- end -}}
{{- end -}}
{{- /* The kinds the Canaries' route templates write, named by the operator (docs/routing.md). */ -}}
{{- range .Values.rbac.routeTemplateRules -}}
{{- $rules = append $rules (dict "apiGroups" .apiGroups "resources" .resources "verbs" .verbs) -}}
{{- end -}}
{{- $rules | toYaml -}}
{{- end -}}
