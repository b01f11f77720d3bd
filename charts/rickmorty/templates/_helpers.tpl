{{/*
Helpers shared by the umbrella chart and its subcharts (api, ingester,
postgres). Named templates are global to a release, so the subcharts use
these; they take either the root context or a dict with "ctx" (the root
context of the calling chart) and "component".
*/}}

{{/* Base name of every resource: see global.fullnameOverride. */}}
{{- define "rickmorty.fullname" -}}
{{- $g := .Values.global | default dict -}}
{{- if $g.fullnameOverride -}}
{{- $g.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else if contains "rickmorty" .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-rickmorty" .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* Name of a component's resources: <base>-<component>. dict: ctx, component */}}
{{- define "rickmorty.componentName" -}}
{{- printf "%s-%s" (include "rickmorty.fullname" .ctx) .component | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* helm.sh/chart label value of the calling chart. */}}
{{- define "rickmorty.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Image tag of the api/ingester images. dict: ctx, image (component image block) */}}
{{- define "rickmorty.imageTag" -}}
{{- $g := .ctx.Values.global.image | default dict -}}
{{- .image.tag | default $g.tag | default .ctx.Chart.AppVersion | toString -}}
{{- end -}}

{{/* app.kubernetes.io/version: the image tag, made a valid label value. dict: ctx, image */}}
{{- define "rickmorty.version" -}}
{{- include "rickmorty.imageTag" . | replace "+" "_" | replace "@" "_" | replace ":" "_" | trunc 63 | trimSuffix "-" | trimSuffix "." | trimSuffix "_" -}}
{{- end -}}

{{/*
Selector labels: stable for the life of a release (Deployment selectors are
immutable). dict: ctx, component
*/}}
{{- define "rickmorty.selectorLabels" -}}
app.kubernetes.io/name: rickmorty
app.kubernetes.io/instance: {{ .ctx.Release.Name | quote }}
app.kubernetes.io/component: {{ .component | quote }}
{{- end -}}

{{/*
Common labels of every resource. dict: ctx, component, and optionally image
(the component's image block; the version label then follows its tag).
*/}}
{{- define "rickmorty.labels" -}}
helm.sh/chart: {{ include "rickmorty.chart" .ctx | quote }}
{{ include "rickmorty.selectorLabels" . }}
app.kubernetes.io/part-of: rickmorty
{{- if .image }}
app.kubernetes.io/version: {{ include "rickmorty.version" . | quote }}
{{- else if .ctx.Chart.AppVersion }}
app.kubernetes.io/version: {{ .ctx.Chart.AppVersion | replace "+" "_" | trunc 63 | quote }}
{{- end }}
app.kubernetes.io/managed-by: {{ .ctx.Release.Service | quote }}
{{- with (.ctx.Values.global | default dict).commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Full image reference of the api or ingester image. dict: ctx, image
registry/repository:tag, or registry/repository@digest when a digest is set.
*/}}
{{- define "rickmorty.image" -}}
{{- $g := .ctx.Values.global.image | default dict -}}
{{- $registry := .image.registry | default $g.registry -}}
{{- $repo := ternary (printf "%s/%s" (trimSuffix "/" $registry) .image.repository) .image.repository (ne $registry "") -}}
{{- if .image.digest -}}
{{- printf "%s@%s" $repo .image.digest -}}
{{- else -}}
{{- printf "%s:%s" $repo (include "rickmorty.imageTag" .) -}}
{{- end -}}
{{- end -}}

{{/* Reference of a third-party image block {registry, repository, tag}. */}}
{{- define "rickmorty.externalImage" -}}
{{- if .registry -}}
{{- printf "%s/%s:%s" (trimSuffix "/" .registry) .repository (toString .tag) -}}
{{- else -}}
{{- printf "%s:%s" .repository (toString .tag) -}}
{{- end -}}
{{- end -}}

{{/* imagePullSecrets of a pod spec, from global.imagePullSecrets. Root context. */}}
{{- define "rickmorty.imagePullSecrets" -}}
{{- with (.Values.global | default dict).imagePullSecrets }}
imagePullSecrets:
{{- range . }}
  - name: {{ . | quote }}
{{- end }}
{{- end }}
{{- end -}}

{{/* Name of the dev Postgres' resources (Service, StatefulSet, Secret). */}}
{{- define "rickmorty.postgres.fullname" -}}
{{- include "rickmorty.componentName" (dict "ctx" . "component" "postgres") -}}
{{- end -}}

{{/*
Secret and key holding a component's database URL. dict: ctx, role ("api"
or "ingester"). Prints "<secret name>\n<key>". Order: the role's
existingSecret, database.existingSecret, else <base>-database, which the
umbrella creates when URLs are given or the dev Postgres is on, and which
the operator creates otherwise.
*/}}
{{- define "rickmorty.databaseSecret" -}}
{{- $db := .ctx.Values.global.database -}}
{{- $r := index $db .role -}}
{{- $r.existingSecret | default $db.existingSecret | default (include "rickmorty.componentName" (dict "ctx" .ctx "component" "database")) }}
{{ $r.secretKey }}
{{- end -}}

{{/* env entry DATABASE_URL of a role. dict: ctx, role, and optionally secretName (overrides the Secret) */}}
{{- define "rickmorty.databaseEnv" -}}
{{- $s := splitList "\n" (include "rickmorty.databaseSecret" .) -}}
- name: DATABASE_URL
  valueFrom:
    secretKeyRef:
      name: {{ .secretName | default (index $s 0) | quote }}
      key: {{ index $s 1 | quote }}
{{- end -}}

{{/*
env entry DATABASE_READ_URL of the API: the key database.api.readSecretKey
of the API's Secret, optional, so that without that key the variable is
unset and the API reads from DATABASE_URL. The umbrella writes the key into
<base>-database for database.api.readUrl and for the CloudNativePG Pooler;
an existing Secret may carry it. dict: ctx
*/}}
{{- define "rickmorty.databaseReadEnv" -}}
{{- $s := splitList "\n" (include "rickmorty.databaseSecret" (dict "ctx" .ctx "role" "api")) -}}
- name: DATABASE_READ_URL
  valueFrom:
    secretKeyRef:
      name: {{ index $s 0 | quote }}
      key: {{ .ctx.Values.global.database.api.readSecretKey | quote }}
      optional: true
{{- end -}}

{{/* OTEL_* env of a component. dict: ctx, component */}}
{{- define "rickmorty.otelEnv" -}}
{{- $o := .ctx.Values.global.otel -}}
{{- if $o.enabled }}
- name: OTEL_SERVICE_NAME
  value: {{ printf "rickmorty-%s" .component | quote }}
- name: OTEL_EXPORTER_OTLP_ENDPOINT
  value: {{ required "global.otel.endpoint is required when global.otel.enabled is true" $o.endpoint | quote }}
- name: OTEL_EXPORTER_OTLP_PROTOCOL
  value: {{ $o.protocol | quote }}
- name: OTEL_TRACES_SAMPLER
  value: {{ $o.sampler | quote }}
- name: OTEL_TRACES_SAMPLER_ARG
  value: {{ $o.samplerArg | toString | quote }}
- name: K8S_POD_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.name
- name: K8S_NAMESPACE_NAME
  valueFrom:
    fieldRef:
      fieldPath: metadata.namespace
{{- $attrs := list "service.namespace=rickmorty" (printf "service.version=%s" (include "rickmorty.imageTag" .)) "k8s.pod.name=$(K8S_POD_NAME)" "k8s.namespace.name=$(K8S_NAMESPACE_NAME)" }}
{{- range $k, $v := $o.resourceAttributes }}
{{- $attrs = append $attrs (printf "%s=%s" $k (toString $v)) }}
{{- end }}
- name: OTEL_RESOURCE_ATTRIBUTES
  value: {{ join "," $attrs | quote }}
{{- else }}
- name: OTEL_SDK_DISABLED
  value: "true"
{{- end }}
{{- end -}}

{{/*
Bytes of a Kubernetes memory quantity ("256Mi", "1G", "512000k",
"268435456", 1.5Gi, or a plain number), as a float64; fails on a form it
does not know (exponents, milli-bytes). dict: value, what (for the message)
*/}}
{{- define "rickmorty.quantityBytes" -}}
{{- $q := .value -}}
{{- if or (kindIs "float64" $q) (kindIs "int" $q) (kindIs "int64" $q) -}}
{{- float64 $q -}}
{{- else -}}
{{- $s := toString $q | trim -}}
{{- if not (regexMatch "^[0-9]+(\\.[0-9]+)?(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E)?$" $s) -}}
{{- fail (printf "%s: cannot read the memory quantity %q (use digits with one of Ki Mi Gi Ti Pi Ei k M G T P E); set goMemLimit explicitly" .what $s) -}}
{{- end -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]+)?" $s -}}
{{- $unit := trimPrefix $num $s -}}
{{- $mult := dict "" 1.0 "Ki" 1024.0 "Mi" 1048576.0 "Gi" 1073741824.0 "Ti" 1099511627776.0 "Pi" 1125899906842624.0 "Ei" 1152921504606846976.0 "k" 1e3 "M" 1e6 "G" 1e9 "T" 1e12 "P" 1e15 "E" 1e18 -}}
{{- mulf (float64 $num) (index $mult $unit) -}}
{{- end -}}
{{- end -}}

{{/*
Nanoseconds of a Go duration ("1h30m", "500ms", "0.5s", "0"), as a float64;
the schema's pattern has already checked the form.
*/}}
{{- define "rickmorty.durationNanos" -}}
{{- $total := 0.0 -}}
{{- $mult := dict "ns" 1.0 "us" 1e3 "µs" 1e3 "ms" 1e6 "s" 1e9 "m" 6e10 "h" 3.6e12 -}}
{{- range regexFindAll "[0-9]+(\\.[0-9]*)?(ns|us|µs|ms|s|m|h)" (toString .) -1 -}}
{{- $num := regexFind "^[0-9]+(\\.[0-9]*)?" . -}}
{{- $total = addf $total (mulf (float64 $num) (index $mult (trimPrefix $num .))) -}}
{{- end -}}
{{- $total -}}
{{- end -}}

{{/*
Fails unless the Go duration at path (a values path, for the message) lies
in [min, max], the bounds the binary enforces on the variable env. dict:
value, path, env, min, max
*/}}
{{- define "rickmorty.checkDuration" -}}
{{- $d := include "rickmorty.durationNanos" .value | float64 -}}
{{- if or (lt $d (include "rickmorty.durationNanos" .min | float64)) (gt $d (include "rickmorty.durationNanos" .max | float64)) -}}
{{- fail (printf "%s=%q: must be between %s and %s (the binary refuses it in %s)" .path (toString .value) .min .max .env) -}}
{{- end -}}
{{- end -}}

{{/*
Fails unless the five-field cron spec (after an optional TZ=) has every
number in the range of its field, as the ingester's parser requires
(minute 0-59, hour 0-23, day of month 1-31, month 1-12, day of week 0-6;
steps after "/" are not bounded). Descriptors (@every, @hourly...) pass.
dict: value, path
*/}}
{{- define "rickmorty.checkCron" -}}
{{- $spec := regexReplaceAll "^(CRON_TZ|TZ)=[^ ]+ +" (toString .value) "" | trim -}}
{{- if not (hasPrefix "@" $spec) -}}
{{- $bounds := list (list 0 59 "minute") (list 0 23 "hour") (list 1 31 "day of month") (list 1 12 "month") (list 0 6 "day of week") -}}
{{- $path := .path -}}
{{- range $i, $field := regexSplit " +" $spec -1 -}}
{{- $b := index $bounds $i -}}
{{- range regexFindAll "[0-9]+" (regexReplaceAll "/[0-9]+" $field "") -1 -}}
{{- if or (lt (atoi .) (index $b 0)) (gt (atoi .) (index $b 1)) -}}
{{- fail (printf "%s: %s %s is out of range %d-%d (INGEST_SCHEDULE)" $path (index $b 2) . (index $b 0) (index $b 1)) -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
GOMEMLIMIT of a container: goMemLimit when set, else goMemLimitPercent of
its memory limit, in whole MiB (e.g. 90% of 256Mi = 230MiB), else (no
memory limit) nothing. Computed here from the configured value because a
resourceFieldRef can divide but not take a percentage. dict: values (the
component block), what (its values path, for messages)
*/}}
{{- define "rickmorty.goMemLimit" -}}
{{- $v := .values -}}
{{- $limit := dig "limits" "memory" "" ($v.resources | default dict) -}}
{{- if $v.goMemLimit -}}
{{- $v.goMemLimit -}}
{{- else if and $limit $v.goMemLimitPercent -}}
{{- $bytes := include "rickmorty.quantityBytes" (dict "value" $limit "what" (printf "%s.resources.limits.memory" .what)) | float64 -}}
{{- $target := divf (mulf $bytes (float64 $v.goMemLimitPercent)) 100.0 -}}
{{- $mib := floor (divf $target 1048576.0) | int64 -}}
{{- if ge $mib 1 -}}
{{- printf "%dMiB" $mib -}}
{{- else -}}
{{- printf "%d" (floor $target | int64) -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{/*
GOMAXPROCS from the container's CPU limit, GOMEMLIMIT from
rickmorty.goMemLimit. dict: container (container name), values (the
component block: resources, goMemLimit, goMemLimitPercent), what (its
values path)
*/}}
{{- define "rickmorty.goRuntimeEnv" -}}
- name: GOMAXPROCS
  valueFrom:
    resourceFieldRef:
      containerName: {{ .container }}
      resource: limits.cpu
      divisor: "1"
{{- with include "rickmorty.goMemLimit" . }}
- name: GOMEMLIMIT
  value: {{ . | quote }}
{{- end }}
{{- end -}}

{{/*
NetworkPolicy egress rules every component needs: DNS and Postgres (and the
OTel collector when tracing is on). Root context.
*/}}
{{- define "rickmorty.networkPolicy.baseEgress" -}}
{{- $g := .Values.global -}}
- ports:
    - protocol: UDP
      port: 53
    - protocol: TCP
      port: 53
  {{- with $g.networkPolicy.dnsPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
- ports:
    - protocol: TCP
      port: {{ $g.database.port }}
  {{- with $g.database.networkPolicyPeers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- if $g.otel.enabled }}
- ports:
    {{- range $g.otel.networkPolicy.ports }}
    - protocol: TCP
      port: {{ . }}
    {{- end }}
  {{- with $g.otel.networkPolicy.peers }}
  to:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end }}
{{- end -}}

{{/*
Fluent Bit sidecar (global.fluentBit), in one of two modes (source):

- file (default): the application also writes its JSON log to
  /var/log/rickmorty/<component>.log (LOG_FILE, bounded by
  LOG_FILE_MAX_BYTES) on an emptyDir shared with the sidecar, which tails it
  as the pod's non-root user. Meets the "restricted" Pod Security Standard.
- pods: the sidecar tails this container's files that the kubelet writes
  under the node's /var/log/pods, through a hostPath, as root (those files
  are root's). Needs a namespace that admits privileged pods.
*/}}

{{/* Directory of the shared log volume in both containers (source: file). */}}
{{- define "rickmorty.fluentBit.logDir" -}}
/var/log/rickmorty
{{- end -}}

{{/* "true" when the sidecar is on in file mode. Root context. */}}
{{- define "rickmorty.fluentBit.fileMode" -}}
{{- $fb := .Values.global.fluentBit -}}
{{- if and $fb.enabled (eq (toString $fb.source) "file") -}}
true
{{- end -}}
{{- end -}}

{{/*
env entries of the application container for the sidecar's file mode:
LOG_FILE and LOG_FILE_MAX_BYTES. dict: ctx, component
*/}}
{{- define "rickmorty.fluentBit.appEnv" -}}
{{- if include "rickmorty.fluentBit.fileMode" .ctx }}
- name: LOG_FILE
  value: {{ printf "%s/%s.log" (include "rickmorty.fluentBit.logDir" .ctx) .component | quote }}
- name: LOG_FILE_MAX_BYTES
  value: {{ .ctx.Values.global.fluentBit.file.maxBytes | int64 | quote }}
{{- end }}
{{- end -}}

{{/* volumeMounts of the application container for the file mode. Root context. */}}
{{- define "rickmorty.fluentBit.appVolumeMounts" -}}
{{- if include "rickmorty.fluentBit.fileMode" . }}
- name: logs
  mountPath: {{ include "rickmorty.fluentBit.logDir" . }}
{{- end }}
{{- end -}}

{{/*
Fluent Bit sidecar container. dict: ctx, component, container (the
application container's name)
*/}}
{{- define "rickmorty.fluentBit.container" -}}
{{- $fb := .ctx.Values.global.fluentBit -}}
{{- $file := eq (toString $fb.source) "file" -}}
- name: fluent-bit
  image: {{ include "rickmorty.externalImage" $fb.image | quote }}
  imagePullPolicy: {{ $fb.image.pullPolicy }}
  restartPolicy: Always
  command: ["/fluent-bit/bin/fluent-bit"]
  args: ["-c", "/fluent-bit/etc/rickmorty/fluent-bit.conf"]
  env:
    - name: COMPONENT
      value: {{ .component | quote }}
    - name: POD_NAME
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    - name: POD_NAMESPACE
      valueFrom:
        fieldRef:
          fieldPath: metadata.namespace
    - name: POD_UID
      valueFrom:
        fieldRef:
          fieldPath: metadata.uid
    - name: LOG_PATH
      {{- if $file }}
      value: {{ printf "%s/%s.log" (include "rickmorty.fluentBit.logDir" .ctx) .component | quote }}
      {{- else }}
      value: {{ printf "/var/log/pods/$(POD_NAMESPACE)_$(POD_NAME)_$(POD_UID)/%s/*.log" .container | quote }}
      {{- end }}
  resources:
    {{- toYaml $fb.resources | nindent 4 }}
  securityContext:
    {{- if $fb.securityContext }}
    {{- toYaml $fb.securityContext | nindent 4 }}
    {{- else if $file }}
    # The pod's own non-root user: it reads the log file (mode 0640, the
    # pod's group) and writes only its position database.
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    capabilities:
      drop: [ALL]
    seccompProfile:
      type: RuntimeDefault
    {{- else }}
    # PRIVILEGED NAMESPACE ONLY: kubelet's log files are readable by root
    # only; uid 0 without any capability can read them and do little else,
    # but Pod Security "restricted" refuses it (and "baseline" the hostPath).
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsNonRoot: false
    runAsUser: 0
    runAsGroup: 0
    capabilities:
      drop: [ALL]
    seccompProfile:
      type: RuntimeDefault
    {{- end }}
  volumeMounts:
    - name: fluent-bit-config
      mountPath: /fluent-bit/etc/rickmorty
      readOnly: true
    {{- if $file }}
    - name: logs
      mountPath: {{ include "rickmorty.fluentBit.logDir" .ctx }}
      readOnly: true
    - name: fluent-bit-state
      mountPath: /fluent-bit/state
    {{- else }}
    - name: pod-logs
      mountPath: /var/log/pods
      readOnly: true
    {{- end }}
{{- end -}}

{{/* Volumes of the Fluent Bit sidecar (and, in file mode, of the application's log file). Root context. */}}
{{- define "rickmorty.fluentBit.volumes" -}}
{{- $fb := .Values.global.fluentBit -}}
- name: fluent-bit-config
  configMap:
    name: {{ $fb.configMapName | default (include "rickmorty.componentName" (dict "ctx" . "component" "fluent-bit")) | quote }}
{{- if eq (toString $fb.source) "file" }}
# The application's log file and its one rotated predecessor (at most
# 2 x file.maxBytes), plus one the sidecar may still hold open.
- name: logs
  emptyDir:
    sizeLimit: {{ $fb.file.sizeLimit | quote }}
# The sidecar's tail position database: a restarted sidecar resumes where
# it stopped instead of shipping the file again.
- name: fluent-bit-state
  emptyDir:
    sizeLimit: 16Mi
{{- else }}
# PRIVILEGED NAMESPACE ONLY (see global.fluentBit.source).
- name: pod-logs
  hostPath:
    path: /var/log/pods
    type: Directory
{{- end }}
{{- end -}}

{{/* Pod-level fields shared by every pod of a component. dict: ctx, values (component block) */}}
{{- define "rickmorty.podScheduling" -}}
{{- with .values.priorityClassName }}
priorityClassName: {{ . | quote }}
{{- end }}
{{- with .values.nodeSelector }}
nodeSelector:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.tolerations }}
tolerations:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .values.affinity }}
affinity:
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- end -}}

{{/* ServiceAccount name of a component. dict: ctx, component, values */}}
{{- define "rickmorty.serviceAccountName" -}}
{{- if .values.serviceAccount.create -}}
{{- .values.serviceAccount.name | default (include "rickmorty.componentName" .) -}}
{{- else -}}
{{- .values.serviceAccount.name | default "default" -}}
{{- end -}}
{{- end -}}

{{/*
Environment of the ingester container, also used by the migration and
re-ingest Jobs. dict: ctx, component, image, values (the ingester block),
and optionally secretName (the Secret of DATABASE_URL).
*/}}
{{- define "rickmorty.ingester.env" -}}
{{- $v := .values -}}
{{ include "rickmorty.databaseEnv" (dict "ctx" .ctx "role" (.databaseRole | default "ingester") "secretName" .secretName) }}
- name: UPSTREAM_URL
  value: {{ $v.config.upstreamURL | quote }}
- name: INGEST_SCHEDULE
  value: {{ $v.config.schedule | quote }}
- name: METRICS_ADDR
  value: {{ printf ":%d" (int $v.config.metricsPort) | quote }}
- name: LOG_LEVEL
  value: {{ $v.config.logLevel | quote }}
- name: UPSTREAM_TIMEOUT
  value: {{ $v.config.upstreamTimeout | quote }}
- name: UPSTREAM_RETRIES
  value: {{ $v.config.upstreamRetries | int64 | quote }}
- name: UPSTREAM_CONCURRENCY
  value: {{ $v.config.upstreamConcurrency | int64 | quote }}
- name: INGEST_MAX_DELETE_RATIO
  value: {{ $v.config.maxDeleteRatio | toString | quote }}
{{ include "rickmorty.goRuntimeEnv" (dict "container" "ingester" "values" $v "what" "ingester") }}
{{- include "rickmorty.otelEnv" (dict "ctx" .ctx "component" "ingester" "image" .image) }}
{{- with $v.extraEnv }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/*
Pod template of the Jobs that run the ingester image once (migrate,
reingest, plan). dict: ctx (umbrella root), component, args (list),
serviceAccountName ("" for the namespace default), secretName (optional),
managedBy (optional: overrides the app.kubernetes.io/managed-by label),
databaseRole (optional: whose DATABASE_URL, "ingester" (default) or "api")
*/}}
{{- define "rickmorty.ingester.jobPodTemplate" -}}
{{- $v := .ctx.Values.ingester -}}
{{- $c := dict "ctx" .ctx "component" .component "image" $v.image "values" $v "secretName" .secretName "databaseRole" .databaseRole -}}
{{- $labels := include "rickmorty.labels" $c | fromYaml -}}
{{- with .managedBy -}}
{{- $_ := set $labels "app.kubernetes.io/managed-by" . -}}
{{- end -}}
metadata:
  labels:
    {{- toYaml $labels | nindent 4 }}
    {{- with $v.podLabels }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $v.podAnnotations }}
  annotations:
    {{- toYaml . | nindent 4 }}
  {{- end }}
spec:
  restartPolicy: Never
  {{- with .serviceAccountName }}
  serviceAccountName: {{ . | quote }}
  {{- end }}
  automountServiceAccountToken: false
  enableServiceLinks: false
  {{- with (include "rickmorty.imagePullSecrets" .ctx | trim) }}{{ . | nindent 2 }}{{- end }}
  securityContext:
    {{- toYaml $v.podSecurityContext | nindent 4 }}
  {{- with (include "rickmorty.podScheduling" (dict "ctx" .ctx "values" $v) | trim) }}{{ . | nindent 2 }}{{- end }}
  containers:
    - name: ingester
      image: {{ include "rickmorty.image" $c | quote }}
      imagePullPolicy: {{ .ctx.Values.global.image.pullPolicy }}
      args: {{ toJson .args }}
      env:
        {{- include "rickmorty.ingester.env" $c | nindent 8 }}
      resources:
        {{- toYaml $v.resources | nindent 8 }}
      securityContext:
        {{- toYaml $v.securityContext | nindent 8 }}
      volumeMounts:
        - name: tmp
          mountPath: /tmp
  volumes:
    - name: tmp
      emptyDir:
        sizeLimit: 64Mi
{{- end -}}

{{/*
"true" when the ingester's database is part of the release, so that it
does not exist yet when pre-install hooks run: the dev Postgres
(postgres.enabled, unless a URL or existing Secret is configured for the
ingester) or the CloudNativePG Cluster (cloudnativepg.enabled). Umbrella
root.
*/}}
{{- define "rickmorty.databaseInRelease" -}}
{{- $db := .Values.global.database -}}
{{- if or .Values.cloudnativepg.enabled (and .Values.postgres.enabled (not (or $db.existingSecret $db.ingester.existingSecret $db.ingester.url))) -}}
true
{{- end -}}
{{- end -}}

{{/* Name of the CloudNativePG Cluster: cloudnativepg.cluster.name, else <base>-db. Umbrella root. */}}
{{- define "rickmorty.cnpg.clusterName" -}}
{{- .Values.cloudnativepg.cluster.name | default (include "rickmorty.componentName" (dict "ctx" . "component" "db")) -}}
{{- end -}}

{{/* Name of the CloudNativePG Pooler (and its Service): cloudnativepg.pooler.name, else <cluster>-pooler-<type>. Umbrella root. */}}
{{- define "rickmorty.cnpg.poolerName" -}}
{{- .Values.cloudnativepg.pooler.name | default (printf "%s-pooler-%s" (include "rickmorty.cnpg.clusterName" .) .Values.cloudnativepg.pooler.type | trunc 63 | trimSuffix "-") -}}
{{- end -}}

{{/* Resources and securityContext of the test containers. Umbrella root. */}}
{{- define "rickmorty.test.container" -}}
resources:
  requests:
    cpu: 10m
    memory: 16Mi
  limits:
    cpu: 100m
    memory: 32Mi
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  runAsNonRoot: true
  capabilities:
    drop: [ALL]
  seccompProfile:
    type: RuntimeDefault
{{- end -}}
