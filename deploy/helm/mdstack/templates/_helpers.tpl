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

{{/*
The Deployments: values key -> the `mdstack` command it runs, which also names the component (object names,
the component label). `urls`: the server URLs the process gets (default both; the Kafka consumer hands its
batches to Redis and never opens Postgres). `kafka`: it gets the Kafka settings (ConfigMap, SASL password,
private CA); the feeder too when feeder.transport=kafka (mdstack.enabledComponents).
*/}}
{{- define "mdstack.components" -}}
- {key: api, command: api}
- {key: gateway, command: gateway}
- {key: worker, command: worker}
- {key: flusher, command: flusher}
- {key: feeder, command: feeder}
- {key: kafkaConsumer, command: kafka-consumer, urls: [REDIS_URL], kafka: true}
{{- end }}

{{/*
The components that run (YAML list of the entries above). kafkaConsumer has no enabled flag: it runs exactly
when kafka.bootstrapServers names a broker (without one it could only exit and be restarted).
*/}}
{{- define "mdstack.enabledComponents" -}}
{{- $out := list }}
{{- range $c := include "mdstack.components" . | fromYamlArray }}
{{- $values := index $.Values $c.key }}
{{- if ternary (include "mdstack.kafkaEnabled" $) $values.enabled (eq $c.key "kafkaConsumer") }}
{{- if and (eq $c.key "feeder") (include "mdstack.feederToKafka" $) }}
{{- $c = merge (dict "kafka" true "args" (list "--transport" "kafka")) $c }}
{{- end }}
{{- $out = append $out $c }}
{{- end }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{- define "mdstack.feederToKafka" -}}
{{- if eq .Values.feeder.transport "kafka" }}true{{ end }}
{{- end }}

{{/* Where the private CA of the brokers is mounted (kafka.caSecret). */}}
{{- define "mdstack.kafkaCaDir" -}}
/etc/mdstack/kafka-ca
{{- end }}

{{- define "mdstack.kafkaEnabled" -}}
{{- if .Values.kafka.bootstrapServers }}true{{ end }}
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

{{/* Kafka connection settings (KAFKA_*), read by the Kafka consumer alone. */}}
{{- define "mdstack.kafkaConfigMapName" -}}
{{- printf "%s-kafka" (include "mdstack.fullname" .) }}
{{- end }}

{{/* Broker ports of the consumer's egress (YAML list): networkPolicy.kafka.ports, else those of the bootstrap servers. */}}
{{- define "mdstack.kafkaPorts" -}}
{{- $ports := .Values.networkPolicy.kafka.ports | default list }}
{{- if not $ports }}
{{- range $server := splitList "," .Values.kafka.bootstrapServers }}
{{- $port := regexFind ":[0-9]+$" (trim $server) | trimPrefix ":" | default "9092" }}
{{- $ports = append $ports (atoi $port) }}
{{- end }}
{{- end }}
{{- toYaml (uniq $ports) }}
{{- end }}

{{- define "mdstack.kafkaSasl" -}}
{{- if hasPrefix "SASL_" .Values.kafka.securityProtocol }}true{{ end }}
{{- end }}

{{/* In-cluster URL of the API Service (workers post views there, the feeder posts ticks there). */}}
{{- define "mdstack.apiUrl" -}}
{{- printf "http://%s:%v" (include "mdstack.componentName" (dict "root" . "component" "api")) .Values.api.port }}
{{- end }}

{{- define "mdstack.publicUrl" -}}
{{- printf "%s://%s" (ternary "https" "http" .Values.ingress.tls.enabled) .Values.ingress.host }}
{{- end }}

{{/* The credentials every process gets: the reads' (API key, viewer login) only while reads are private. */}}
{{- define "mdstack.credentialNames" -}}
{{- $names := list "INGEST_USERNAME" "INGEST_PASSWORD" "INTERNAL_TOKEN" }}
{{- if not .Values.publicReads }}
{{- $names = concat $names (list "API_KEY" "VIEWER_USERNAME" "VIEWER_PASSWORD") }}
{{- end }}
{{- toYaml $names }}
{{- end }}

{{/* Name -> value of the chart-made Secret (YAML), from secrets.* */}}
{{- define "mdstack.chartSecrets" -}}
{{- $s := .Values.secrets }}
{{- $all := dict
  "INGEST_USERNAME" $s.ingestUsername
  "INGEST_PASSWORD" $s.ingestPassword
  "INTERNAL_TOKEN" $s.internalToken
  "API_KEY" $s.apiKey
  "VIEWER_USERNAME" $s.viewerUsername
  "VIEWER_PASSWORD" $s.viewerPassword
}}
{{- $out := dict }}
{{- range $name := include "mdstack.credentialNames" . | fromYamlArray }}
{{- $_ := set $out $name (index $all $name) }}
{{- end }}
{{- toYaml $out }}
{{- end }}

{{/*
Refuse to render what would not be secure: missing or short credentials (the services refuse them too, but only
once the pods start), a Redis URL without a password, a missing server URL.
*/}}
{{- define "mdstack.checkValues" -}}
{{- if not (or .Values.externalRedis.url .Values.externalRedis.existingSecret) }}
{{- fail "externalRedis.url or externalRedis.existingSecret is required (the chart does not run Redis)" }}
{{- end }}
{{- if not (or .Values.externalPostgresql.url .Values.externalPostgresql.existingSecret) }}
{{- fail "externalPostgresql.url or externalPostgresql.existingSecret is required (the chart does not run Postgres)" }}
{{- end }}
{{- if and (not .Values.externalRedis.existingSecret) (not (regexMatch "^rediss?://[^@/]*:[^@/]+@" .Values.externalRedis.url)) }}
{{- fail "externalRedis.url must carry a password (redis://:PASSWORD@host:6379/0): Redis without AUTH lets anyone who reaches it run jobs on the workers" }}
{{- end }}
{{- include "mdstack.checkKafka" . }}
{{- if not .Values.secrets.existingSecret }}
{{- $values := dict "INGEST_USERNAME" "ingestUsername" "INGEST_PASSWORD" "ingestPassword" "INTERNAL_TOKEN" "internalToken" "API_KEY" "apiKey" "VIEWER_USERNAME" "viewerUsername" "VIEWER_PASSWORD" "viewerPassword" }}
{{- range $name, $value := include "mdstack.chartSecrets" . | fromYaml }}
{{- $field := printf "secrets.%s" (index $values $name) }}
{{- if not $value }}
{{- fail (printf "%s is required (%s; or set secrets.existingSecret)%s" $field $name (ternary "" ", unless publicReads=true" (has $name (list "INGEST_USERNAME" "INGEST_PASSWORD" "INTERNAL_TOKEN")))) }}
{{- end }}
{{- if and (has $name (list "INGEST_PASSWORD" "INTERNAL_TOKEN" "API_KEY" "VIEWER_PASSWORD")) (lt (len (toString $value)) 12) }}
{{- fail (printf "%s is shorter than 12 characters" $field) }}
{{- end }}
{{- end }}
{{- end }}
{{- end }}

{{/* The Kafka settings: what librdkafka and Settings would refuse only once the pod starts; no password in a ConfigMap. */}}
{{- define "mdstack.checkKafka" -}}
{{- range $where, $config := dict "config" .Values.config "kafka.config" .Values.kafka.config "kafkaConsumer.config" .Values.kafkaConsumer.config }}
{{- if hasKey ($config | default dict) "KAFKA_SASL_PASSWORD" }}
{{- fail (printf "%s.KAFKA_SASL_PASSWORD: the password goes into a Secret (kafka.sasl.password or kafka.sasl.existingSecret)" $where) }}
{{- end }}
{{- end }}
{{- if not (has .Values.feeder.transport (list "http" "kafka")) }}
{{- fail (printf "feeder.transport must be http or kafka, got %q" .Values.feeder.transport) }}
{{- end }}
{{- if and .Values.feeder.enabled (include "mdstack.feederToKafka" .) (not (include "mdstack.kafkaEnabled" .)) }}
{{- fail "feeder.transport=kafka needs kafka.bootstrapServers (the brokers it produces to)" }}
{{- end }}
{{- if include "mdstack.kafkaEnabled" . }}
{{- $k := .Values.kafka }}
{{- if and $k.caSecret (not (hasSuffix "SSL" $k.securityProtocol)) }}
{{- fail (printf "kafka.caSecret is for TLS: set kafka.securityProtocol to SSL or SASL_SSL (got %s)" $k.securityProtocol) }}
{{- end }}
{{- if not (has $k.securityProtocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) }}
{{- fail (printf "kafka.securityProtocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL, got %q" $k.securityProtocol) }}
{{- end }}
{{- if include "mdstack.kafkaSasl" . }}
{{- if not (has $k.sasl.mechanism (list "PLAIN" "SCRAM-SHA-256" "SCRAM-SHA-512")) }}
{{- fail (printf "kafka.sasl.mechanism must be PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512 with kafka.securityProtocol=%s" $k.securityProtocol) }}
{{- end }}
{{- if not $k.sasl.username }}
{{- fail (printf "kafka.sasl.username is required with kafka.securityProtocol=%s" $k.securityProtocol) }}
{{- end }}
{{- if not (or $k.sasl.password $k.sasl.existingSecret) }}
{{- fail (printf "kafka.sasl.password or kafka.sasl.existingSecret is required with kafka.securityProtocol=%s" $k.securityProtocol) }}
{{- end }}
{{- else if $k.sasl.mechanism }}
{{- fail "kafka.sasl.mechanism goes with kafka.securityProtocol=SASL_SSL or SASL_PLAINTEXT" }}
{{- end }}
{{- end }}
{{- end }}

{{/*
Secret env of every container: credentials and the Redis/Postgres URLs. Every process gets the credentials
because MDSTACK_ENV=production refuses missing or demo ones.
*/}}
{{- define "mdstack.secretEnv" -}}
{{- $urls := .urls | default (list "REDIS_URL" "PG_URL") }}
{{- with .root }}
{{- $secret := include "mdstack.secretName" . }}
{{- $keys := .Values.secrets.existingSecretKeys }}
{{- $external := ne .Values.secrets.existingSecret "" }}
{{- range $name := include "mdstack.credentialNames" . | fromYamlArray }}
- name: {{ $name }}
  valueFrom:
    secretKeyRef:
      name: {{ $secret }}
      key: {{ ternary (index $keys $name) $name $external }}
{{- end }}
{{- if has "REDIS_URL" $urls }}
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
{{- end }}
{{- if has "PG_URL" $urls }}
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
{{- if and $.kafka (include "mdstack.kafkaSasl" .) }}
- name: KAFKA_SASL_PASSWORD
  valueFrom:
    secretKeyRef:
      {{- if .Values.kafka.sasl.existingSecret }}
      name: {{ .Values.kafka.sasl.existingSecret }}
      key: {{ .Values.kafka.sasl.existingSecretKey }}
      {{- else }}
      name: {{ include "mdstack.kafkaConfigMapName" . }}
      key: KAFKA_SASL_PASSWORD
      {{- end }}
{{- end }}
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
(dict "root" $ "component" "api" "args" (list ...) "port" 8000 "portName" "http" "metricsPort" 9100
 "values" $.Values.api "urls" (list ...) "kafka" false); metricsPort only for the API and the gateway (the
 others serve health and metrics on "port", their --metrics-port); urls and kafka as in mdstack.components
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
      {{- with .metricsPort }}
      - name: metrics
        containerPort: {{ . }}
        protocol: TCP
      {{- end }}
    {{- end }}
    envFrom:
      - configMapRef:
          name: {{ include "mdstack.configMapName" $root }}
      {{- if .kafka }}
      - configMapRef:
          name: {{ include "mdstack.kafkaConfigMapName" $root }}
      {{- end }}
    env:
      {{- include "mdstack.secretEnv" (dict "root" $root "urls" .urls "kafka" .kafka) | trim | nindent 6 }}
      {{- with .metricsPort }}
      # /metrics, /docs and /openapi.json on this port only, off the public one.
      - name: METRICS_PORT
        value: {{ . | quote }}
      {{- end }}
      {{- if and .kafka $root.Values.kafka.caSecret }}
      - name: KAFKA_SSL_CA_LOCATION
        value: {{ printf "%s/%s" (include "mdstack.kafkaCaDir" $root) $root.Values.kafka.caSecretKey | quote }}
      {{- end }}
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
      {{- if and .kafka $root.Values.kafka.caSecret }}
      - name: kafka-ca
        mountPath: {{ include "mdstack.kafkaCaDir" $root }}
        readOnly: true
      {{- end }}
volumes:
  - name: tmp
    emptyDir:
      sizeLimit: 64Mi
  {{- if and .kafka $root.Values.kafka.caSecret }}
  - name: kafka-ca
    secret:
      secretName: {{ $root.Values.kafka.caSecret }}
      items:
        - {key: {{ $root.Values.kafka.caSecretKey }}, path: {{ $root.Values.kafka.caSecretKey }}}
  {{- end }}
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
