{{/* The chart's name, overridable. */}}
{{- define "zenmodel-operator.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* The release's object name prefix: the release name, unless it already contains the chart's name. */}}
{{- define "zenmodel-operator.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "zenmodel-operator.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "zenmodel-operator.selectorLabels" -}}
app.kubernetes.io/name: {{ include "zenmodel-operator.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "zenmodel-operator.labels" -}}
helm.sh/chart: {{ include "zenmodel-operator.chart" . }}
{{ include "zenmodel-operator.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/component: operator
app.kubernetes.io/part-of: zenmodel-operator
app.kubernetes.io/managed-by: {{ .Release.Service }}
{{- end }}

{{- define "zenmodel-operator.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "zenmodel-operator.fullname" .) .Values.serviceAccount.name }}
{{- else if .Values.serviceAccount.name }}
{{- .Values.serviceAccount.name }}
{{- else }}
{{- fail "serviceAccount.name is required when serviceAccount.create is false" }}
{{- end }}
{{- end }}

{{- define "zenmodel-operator.subjects" -}}
- kind: ServiceAccount
  name: {{ include "zenmodel-operator.serviceAccountName" . }}
  namespace: {{ .Release.Namespace }}
{{- end }}

{{- define "zenmodel-operator.image" -}}
{{- printf "%s:%s" .Values.image.repository (default .Chart.AppVersion .Values.image.tag) }}
{{- end }}

{{/*
What kopf reads cluster-wide in either scope, to find what it serves: the CRDs (it watches them to notice
served resources appearing or changing, e.g. Seldon's CRD installed or upgraded after the operator) and,
when the operator serves a list of namespaces rather than all of them, the namespaces (kopf matches the
list, or its glob patterns, against the namespaces that exist, and notices new ones). Without either, kopf
retries the forbidden request for about a minute, logging errors; without the namespaces, it serves nothing
meanwhile.
*/}}
{{- define "zenmodel-operator.discoveryRules" -}}
- apiGroups: ["apiextensions.k8s.io"]
  resources: ["customresourcedefinitions"]
  verbs: ["list", "watch"]
{{- if .Values.watchNamespaces }}
- apiGroups: [""]
  resources: ["namespaces"]
  verbs: ["list", "watch"]
{{- end }}
{{- end }}

{{/*
What the operator does in a namespace it serves. Every verb is used; nothing here deletes (the garbage
collector removes the children through their ownerReferences) and nothing writes a ZenModelDeployment's
spec or metadata.
*/}}
{{- define "zenmodel-operator.workloadRules" -}}
# Watch the parents (kopf lists and watches; the reconcile reads the current object).
- apiGroups: ["zenml.io"]
  resources: ["zenmodeldeployments"]
  verbs: ["get", "list", "watch"]
# Write status only, with server-side apply (a PATCH of the status subresource).
- apiGroups: ["zenml.io"]
  resources: ["zenmodeldeployments/status"]
  verbs: ["patch"]
# The children's ownerReferences set blockOwnerDeletion, which the OwnerReferencesPermissionEnforcement
# admission plugin allows only to who may update the owner's finalizers.
- apiGroups: ["zenml.io"]
  resources: ["zenmodeldeployments/finalizers"]
  verbs: ["update"]
# The SeldonDeployment child: watched (drift, status to mirror), read, written with server-side apply
# (create when absent, patch otherwise).
- apiGroups: ["machinelearning.seldon.io"]
  resources: ["seldondeployments"]
  verbs: ["get", "list", "watch", "create", "patch"]
# The rclone Secret child, and the credential Secrets it is derived from (with requireCredentialsLabel the
# list and watch carry a label selector, so only labelled Secrets ever reach the operator).
- apiGroups: [""]
  resources: ["secrets"]
  verbs: ["get", "list", "watch", "create", "patch"]
# Events on the parent (Created, Available, Failed, credential and conflict warnings).
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
# Seldon's model pods (a label selector: seldon-deployment-id), watched for why they never become ready.
- apiGroups: [""]
  resources: ["pods"]
  verbs: ["list", "watch"]
# The last line of a failed run of a model pod's container, read once per run: the storage initializer
# writes no termination message, so its output is the only place its error is.
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- end }}

{{/* The leader-election Lease's name: leaderElection.id, else the release's full name. */}}
{{- define "zenmodel-operator.leaseName" -}}
{{- .Values.leaderElection.id | default (include "zenmodel-operator.fullname" .) }}
{{- end }}
