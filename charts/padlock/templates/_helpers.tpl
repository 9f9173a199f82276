{{/*
Shared names, labels, paths and pod fragments. Every template includes these; the paths here
are the only place the in-container layout is spelled out (README.md "Files in the pod").
*/}}

{{- define "padlock.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "padlock.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else if contains (include "padlock.name" .) .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name (include "padlock.name" .) | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}

{{/* Object names, each derived from the fullname. */}}
{{- define "padlock.ocspName" -}}{{ include "padlock.fullname" . | trunc 58 | trimSuffix "-" }}-ocsp{{- end }}
{{- define "padlock.metricsName" -}}{{ include "padlock.fullname" . | trunc 55 | trimSuffix "-" }}-metrics{{- end }}
{{- define "padlock.configName" -}}{{ include "padlock.fullname" . | trunc 56 | trimSuffix "-" }}-config{{- end }}
{{- define "padlock.tokenClaim" -}}{{ default (printf "%s-softhsm" (include "padlock.fullname" . | trunc 55 | trimSuffix "-")) .Values.hsm.softhsm.persistence.existingClaim }}{{- end }}
{{- define "padlock.ledgerClaim" -}}{{ default (printf "%s-ledger" (include "padlock.fullname" . | trunc 56 | trimSuffix "-")) .Values.ledger.sqlite.persistence.existingClaim }}{{- end }}

{{- define "padlock.serviceAccountName" -}}
{{- if .Values.serviceAccount.create }}
{{- default (include "padlock.fullname" .) .Values.serviceAccount.name }}
{{- else }}
{{- default "default" .Values.serviceAccount.name }}
{{- end }}
{{- end }}

{{- define "padlock.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "padlock.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: padlock
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels for one component: (dict "ctx" $ "component" "ca") */}}
{{- define "padlock.selectorLabels" -}}
app.kubernetes.io/name: {{ include "padlock.name" .ctx }}
app.kubernetes.io/instance: {{ .ctx.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "padlock.image" -}}
{{- if .Values.image.digest -}}
{{ .Values.image.repository }}@{{ .Values.image.digest }}
{{- else -}}
{{ .Values.image.repository }}:{{ default .Chart.AppVersion .Values.image.tag }}
{{- end -}}
{{- end }}

{{/* "true" when the responder runs as its own Deployment (PostgreSQL ledger). */}}
{{- define "padlock.ocspSeparate" -}}
{{- if and (eq .Values.ledger.type "postgres") (not .Values.ocsp.inCAPod) }}true{{ end }}
{{- end }}

{{- define "padlock.ocspURL" -}}
{{- default (printf "http://%s.%s.svc" (include "padlock.ocspName" .) .Release.Namespace) .Values.ca.urls.ocsp }}
{{- end }}

{{/*
Cross-field rules the JSON schema cannot say with a clear message. Included by every
workload template, so `helm template` and `helm install` both stop here.
*/}}
{{- define "padlock.validate" -}}
{{- if and (eq .Values.hsm.type "pkcs11") (not .Values.hsm.pkcs11.module) }}
{{- fail "hsm.pkcs11.module: set the absolute path of the PKCS#11 module inside the container when hsm.type=pkcs11" }}
{{- end }}
{{- if and (include "padlock.ocspSeparate" .) .Values.ocsp.sign (eq .Values.hsm.type "softhsm") }}
{{- fail "ocsp.sign: with ledger.type=postgres the responder runs as its own Deployment, and signing on demand needs an HSM every replica can reach; SoftHSM's token is one PVC in the CA pod. Use hsm.type=pkcs11, set ocsp.inCAPod=true, or leave ocsp.sign=false" }}
{{- end }}
{{- /* The operator, the CA and (in the CA pod) the responder share one network namespace. */}}
{{- if eq (int .Values.ca.metricsPort) (int .Values.operator.metricsPort) }}
{{- fail (printf "ca.metricsPort and operator.metricsPort are both %d: the operator and the CA share the pod's network namespace, give them different ports" (int .Values.ca.metricsPort)) }}
{{- end }}
{{- if and (not (include "padlock.ocspSeparate" .)) (eq (int .Values.ca.metricsPort) (int .Values.ocsp.port)) }}
{{- fail (printf "ca.metricsPort and ocsp.port are both %d: the responder runs in the CA pod, give them different ports" (int .Values.ca.metricsPort)) }}
{{- end }}
{{- if and (not (include "padlock.ocspSeparate" .)) (eq (int .Values.operator.metricsPort) (int .Values.ocsp.port)) }}
{{- fail (printf "operator.metricsPort and ocsp.port are both %d: the responder runs in the CA pod, give them different ports" (int .Values.operator.metricsPort)) }}
{{- end }}
{{- if and .Values.ocsp.autoscaling.enabled (gt (int .Values.ocsp.autoscaling.minReplicas) (int .Values.ocsp.autoscaling.maxReplicas)) }}
{{- fail (printf "ocsp.autoscaling: minReplicas (%d) is greater than maxReplicas (%d)" (int .Values.ocsp.autoscaling.minReplicas) (int .Values.ocsp.autoscaling.maxReplicas)) }}
{{- end }}
{{- end }}

{{/* Fixed paths inside the containers. */}}
{{- define "padlock.path.config" -}}/etc/padlock/config{{- end }}
{{- define "padlock.path.caYaml" -}}/etc/padlock/config/ca.yaml{{- end }}
{{- define "padlock.path.chain" -}}/etc/padlock/chain{{- end }}
{{- define "padlock.path.pin" -}}/etc/padlock/pin{{- end }}
{{- define "padlock.path.ledgerUrl" -}}/etc/padlock/ledger{{- end }}
{{- define "padlock.path.tokens" -}}/var/lib/padlock/tokens{{- end }}
{{- define "padlock.path.seed" -}}/var/lib/padlock/seed{{- end }}
{{- define "padlock.path.sqlite" -}}/var/lib/padlock/ledger{{- end }}
{{- define "padlock.path.socketDir" -}}/run/padlock{{- end }}
{{- define "padlock.path.socket" -}}/run/padlock/ca.sock{{- end }}

{{/*
The CA config, exactly the format of operator/padlock/ca/config.py (CAConfig.to_dict()).
*/}}
{{- define "padlock.caConfig" -}}
{{- $urls := dict "ocsp" (include "padlock.ocspURL" .) "crl_base" (default (printf "%s/crl" (include "padlock.ocspURL" .)) .Values.ca.urls.crlBase) }}
{{- $_ := set $urls "ca_issuers" (default (printf "%s/ca.crt" (include "padlock.ocspURL" .)) .Values.ca.urls.caIssuers) }}
{{- $ledger := dict }}
{{- if eq .Values.ledger.type "sqlite" }}
{{- $_ := set $ledger "url" (printf "sqlite:///%s/ledger.db" (include "padlock.path.sqlite" .)) }}
{{- else }}
{{- /* The URL (with its password) stays in the Secret; config.py reads it from this file. */}}
{{- $_ := set $ledger "url_file" (printf "%s/%s" (include "padlock.path.ledgerUrl" .) .Values.ledger.postgres.urlSecret.key) }}
{{- end }}
{{- $module := ternary "/usr/lib/softhsm/libsofthsm2.so" .Values.hsm.pkcs11.module (eq .Values.hsm.type "softhsm") }}
{{- $config := dict
  "name" .Values.ca.name
  "chain_file" (printf "%s/%s" (include "padlock.path.chain" .) .Values.ca.chain.key)
  "pkcs11" (dict
    "module" $module
    "token_label" .Values.hsm.tokenLabel
    "pin_file" (printf "%s/%s" (include "padlock.path.pin" .) .Values.hsm.pinSecret.key)
    "key_label" .Values.hsm.keyLabel
    "ocsp_key_label" .Values.hsm.ocspKeyLabel)
  "ledger" $ledger
  "listen" (dict
    "socket" (include "padlock.path.socket" .)
    "metrics_host" "0.0.0.0"
    "metrics_port" (int .Values.ca.metricsPort))
  "urls" $urls
  "policy" (dict
    "max_lifetime_seconds" (int .Values.ca.policy.maxLifetimeSeconds)
    "allowed_dns_suffixes" .Values.ca.policy.allowedDnsSuffixes
    "excluded_dns_suffixes" .Values.ca.policy.excludedDnsSuffixes
    "allowed_ip_networks" .Values.ca.policy.allowedIpNetworks
    "allowed_uri_prefixes" .Values.ca.policy.allowedUriPrefixes)
  "lint" (dict "enabled" .Values.ca.lint.enabled "cabf_serverauth" .Values.ca.lint.cabfServerauth)
  "rate_limit" (dict
    "requests_per_second" (float64 .Values.ca.rateLimit.requestsPerSecond)
    "burst" (int .Values.ca.rateLimit.burst))
  "signing_threads" (int .Values.ca.signingThreads)
  "workers" (int .Values.ca.workers)
}}
{{- toYaml $config }}
{{- end }}

{{- define "padlock.softhsmConf" -}}
# SoftHSM2 config for the CA container (SOFTHSM2_CONF); the token directory is a PVC.
directories.tokendir = {{ include "padlock.path.tokens" . }}
objectstore.backend = file
log.level = ERROR
slots.removable = false
{{- end }}

{{/* The restricted Pod Security profile for every container. */}}
{{- define "padlock.containerSecurityContext" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
capabilities:
  drop: [ALL]
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{- define "padlock.podSecurityContext" -}}
runAsNonRoot: true
runAsUser: {{ .Values.securityContext.runAsUser }}
runAsGroup: {{ .Values.securityContext.runAsGroup }}
fsGroup: {{ .Values.securityContext.fsGroup }}
fsGroupChangePolicy: OnRootMismatch
seccompProfile:
  type: RuntimeDefault
{{- end }}

{{/* Volumes every process that reads ca.yaml needs: config, chain, ledger URL. */}}
{{- define "padlock.baseVolumes" -}}
- name: config
  configMap:
    name: {{ include "padlock.configName" . }}
- name: chain
  # The whole ConfigMap: chain.pem and the OCSP responder certificate ocsp.pem beside it.
  configMap:
    name: {{ .Values.ca.chain.configMap }}
{{- if eq .Values.ledger.type "postgres" }}
- name: ledger-url
  secret:
    secretName: {{ .Values.ledger.postgres.urlSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ .Values.ledger.postgres.urlSecret.key }}
        path: {{ .Values.ledger.postgres.urlSecret.key }}
{{- end }}
{{- end }}

{{/* Volumes of a process that opens the HSM: the PIN and, for pkcs11, the module. */}}
{{- define "padlock.hsmVolumes" -}}
- name: hsm-pin
  secret:
    secretName: {{ .Values.hsm.pinSecret.name }}
    defaultMode: 0440
    items:
      - key: {{ .Values.hsm.pinSecret.key }}
        path: {{ .Values.hsm.pinSecret.key }}
{{- if eq .Values.hsm.type "pkcs11" }}
{{- with .Values.hsm.pkcs11.volume }}
- name: hsm-module
  {{- toYaml . | nindent 2 }}
{{- end }}
{{- with .Values.hsm.pkcs11.extraVolumes }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{- define "padlock.baseVolumeMounts" -}}
- name: config
  mountPath: {{ include "padlock.path.config" . }}
  readOnly: true
- name: chain
  mountPath: {{ include "padlock.path.chain" . }}
  readOnly: true
- name: tmp
  mountPath: /tmp
{{- if eq .Values.ledger.type "sqlite" }}
- name: ledger
  mountPath: {{ include "padlock.path.sqlite" . }}
{{- else }}
- name: ledger-url
  mountPath: {{ include "padlock.path.ledgerUrl" . }}
  readOnly: true
{{- end }}
{{- end }}

{{- define "padlock.hsmVolumeMounts" -}}
- name: hsm-pin
  mountPath: {{ include "padlock.path.pin" . }}
  readOnly: true
{{- if eq .Values.hsm.type "softhsm" }}
- name: softhsm-tokens
  mountPath: {{ include "padlock.path.tokens" . }}
{{- else }}
{{- if .Values.hsm.pkcs11.volume }}
- name: hsm-module
  mountPath: {{ .Values.hsm.pkcs11.mountPath }}
  readOnly: true
{{- end }}
{{- with .Values.hsm.pkcs11.extraVolumeMounts }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* Environment of a process that opens the HSM. */}}
{{- define "padlock.caEnv" -}}
{{- if eq .Values.hsm.type "softhsm" }}
- name: SOFTHSM2_CONF
  value: {{ include "padlock.path.config" . }}/softhsm2.conf
{{- else }}
{{- with .Values.hsm.pkcs11.env }}
{{ toYaml . }}
{{- end }}
{{- end }}
{{- end }}

{{/* A Prometheus-style duration ("90s", "15m", "1h", "2d") in seconds. */}}
{{- define "padlock.durationSeconds" -}}
{{- $units := dict "s" 1 "m" 60 "h" 3600 "d" 86400 }}
{{- $unit := substr (int (sub (len .) 1)) (len .) . }}
{{- $n := trimSuffix $unit . }}
{{- mul (int $n) (get $units $unit) }}
{{- end }}

{{/* A probe for the CA sidecar: its unix socket accepts a connection (no shell in the image). */}}
{{- define "padlock.caSocketProbe" -}}
["python", "-c", "import socket; socket.socket(socket.AF_UNIX).connect({{ include "padlock.path.socket" . | squote }})"]
{{- end }}
