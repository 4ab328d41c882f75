{{/* Objects' names: fullnameOverride, else the release's name followed by the chart's (or
nameOverride), once when the release's name already holds it. */}}
{{- define "serin.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "serin.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{/* app.kubernetes.io/name stays the chart's name whatever nameOverride says: `serin version`
finds the controller by it, and a Deployment's selector cannot change on upgrade. */}}
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

{{/* A pod's anti-affinity: the values' affinity, else with more than one replica a preference
for different nodes, so one node's loss does not take every replica. */}}
{{- define "serin.affinity" -}}
{{- if .Values.affinity -}}
{{- toYaml .Values.affinity -}}
{{- else if gt (int .Values.replicas) 1 -}}
podAntiAffinity:
  preferredDuringSchedulingIgnoredDuringExecution:
    - weight: 100
      podAffinityTerm:
        topologyKey: kubernetes.io/hostname
        labelSelector:
          matchLabels:
            {{- include "serin.selectorLabels" . | nindent 12 }}
{{- end -}}
{{- end -}}
