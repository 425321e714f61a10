{{/*
Names and labels. Every object carries the recommended app.kubernetes.io/* labels; selectors use the
stable subset (name, instance, component).
*/}}

{{- define "mdstack.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "mdstack.fullname" -}}
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

{{- define "mdstack.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Name of one component's objects: (dict "root" $ "component" "api") */}}
{{- define "mdstack.componentName" -}}
{{- printf "%s-%s" (include "mdstack.fullname" .root) .component | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Selector labels of a component: (dict "root" $ "component" "api") */}}
{{- define "mdstack.selectorLabels" -}}
app.kubernetes.io/name: {{ include "mdstack.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{/* All recommended labels of a component: (dict "root" $ "component" "api") */}}
{{- define "mdstack.labels" -}}
helm.sh/chart: {{ include "mdstack.chart" .root }}
{{ include "mdstack.selectorLabels" . }}
app.kubernetes.io/version: {{ include "mdstack.imageTag" .root | quote }}
app.kubernetes.io/part-of: mdstack
app.kubernetes.io/managed-by: {{ .root.Release.Service }}
{{- end }}

{{- define "mdstack.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "mdstack.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "mdstack.imageTag" .) }}
{{- end }}

{{/* Name of the chart's Secret, or of the one the user manages. */}}
{{- define "mdstack.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-secrets" (include "mdstack.fullname" .)) }}
{{- end }}

{{- define "mdstack.configMapName" -}}
{{- printf "%s-config" (include "mdstack.fullname" .) }}
{{- end }}

{{/* In-cluster URL of the API Service (workers post views there, the feeder posts ticks there). */}}
{{- define "mdstack.apiUrl" -}}
{{- printf "http://%s:%v" (include "mdstack.componentName" (dict "root" . "component" "api")) .Values.api.port }}
{{- end }}

{{- define "mdstack.publicUrl" -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.ingress.host }}
{{- end }}

{{/*
Secret env of every container: credentials and the Redis/Postgres URLs. Every process needs the three
credentials because MDSTACK_ENV=production refuses their demo defaults; API_KEY is optional.
*/}}
{{- define "mdstack.secretEnv" -}}
{{- $secret := include "mdstack.secretName" . }}
{{- $keys := .Values.secrets.existingSecretKeys }}
{{- $external := ne .Values.secrets.existingSecret "" }}
{{- range $name := list "INGEST_USERNAME" "INGEST_PASSWORD" "INTERNAL_TOKEN" "API_KEY" }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ ternary (index $keys $name) $name $external }}
      {{- if eq $name "API_KEY" }}
      optional: true
      {{- end }}
{{- end }}
- name: REDIS_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.externalRedis.existingSecret }}
      name: {{ .Values.externalRedis.existingSecret }}
      key: {{ .Values.externalRedis.existingSecretKey }}
      {{- else }}
      name: {{ include "mdstack.fullname" . }}-urls
      key: REDIS_URL
      {{- end }}
- name: PG_URL
  valueFrom:
    secretKeyRef:
      {{- if .Values.externalPostgresql.existingSecret }}
      name: {{ .Values.externalPostgresql.existingSecret }}
      key: {{ .Values.externalPostgresql.existingSecretKey }}
      {{- else }}
      name: {{ include "mdstack.fullname" . }}-urls
      key: PG_URL
      {{- end }}
{{- end }}

{{/*
Hook annotations of the objects the migration Job reads: a pre-install hook runs before the release's
ordinary objects exist, so the ConfigMap and Secrets are created as earlier hooks themselves.
*/}}
{{- define "mdstack.preHookAnnotations" -}}
helm.sh/hook: pre-install,pre-upgrade
helm.sh/hook-weight: "-10"
helm.sh/hook-delete-policy: before-hook-creation
{{- end }}

{{/*
Pod spec shared by the Deployments and the migration Job:
(dict "root" $ "component" "api" "args" (list ...) "port" 8000 "portName" "http" "values" $.Values.api)
*/}}
{{- define "mdstack.podSpec" -}}
{{- $root := .root }}
{{- with $root.Values.imagePullSecrets }}
imagePullSecrets:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.serviceAccountName }}
serviceAccountName: {{ . }}
{{- end }}
automountServiceAccountToken: false
enableServiceLinks: false  # no <SERVICE>_PORT variables beside the settings
securityContext:
  {{- toYaml $root.Values.podSecurityContext | nindent 2 }}
{{- with .values.terminationGracePeriodSeconds }}
terminationGracePeriodSeconds: {{ . }}
{{- end }}
containers:
  - name: {{ .component }}
    image: {{ include "mdstack.image" $root }}
    imagePullPolicy: {{ $root.Values.image.pullPolicy }}
    command: ["mdstack"]
    args:
      {{- toYaml .args | nindent 6 }}
    {{- if .port }}
    ports:
      - name: {{ .portName }}
        containerPort: {{ .port }}
        protocol: TCP
    {{- end }}
    envFrom:
      - configMapRef:
          name: {{ include "mdstack.configMapName" $root }}
    env:
      {{- include "mdstack.secretEnv" $root | trim | nindent 6 }}
      {{- range $name, $value := .values.config }}
      - name: {{ $name }}
        value: {{ $value | quote }}
      {{- end }}
    {{- if .port }}
    startupProbe:
      httpGet: {path: /health/liveness, port: {{ .portName }}}
      {{- toYaml $root.Values.probes.startup | nindent 6 }}
    livenessProbe:
      httpGet: {path: /health/liveness, port: {{ .portName }}}
      {{- toYaml $root.Values.probes.liveness | nindent 6 }}
    readinessProbe:
      httpGet: {path: /health/readiness, port: {{ .portName }}}
      {{- toYaml $root.Values.probes.readiness | nindent 6 }}
    {{- end }}
    resources:
      {{- toYaml .values.resources | nindent 6 }}
    securityContext:
      {{- toYaml $root.Values.securityContext | nindent 6 }}
    volumeMounts:
      - name: tmp
        mountPath: /tmp
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
{{- with $root.Values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with $root.Values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end }}
