{{/*
The OCSP/CRL responder container (`padlock ocsp serve`), used in the CA pod (SQLite) and in
its own Deployment (PostgreSQL). It reads the same ca.yaml as the CA: ledger and chain, and
with ocsp.sign the delegated responder key (RFC 6960 §4.2.2.2) in the HSM; without it, it
holds no key and serves the responses the CA pre-signed.
*/}}
{{- define "padlock.ocspContainer" -}}
{{- $caEnv := ternary (include "padlock.caEnv" . | trim) "" .Values.ocsp.sign -}}
- name: ocsp
  image: {{ include "padlock.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - ocsp
    - serve
    - --config
    - {{ include "padlock.path.caYaml" . }}
    - --host
    - "0.0.0.0"
    - --port
    - {{ .Values.ocsp.port | quote }}
    - --workers
    - {{ .Values.ocsp.workers | quote }}
    {{- if .Values.ocsp.sign }}
    - --sign
    {{- end }}
    {{- with .Values.ocsp.extraArgs }}
    {{- toYaml . | nindent 4 }}
    {{- end }}
  {{- with $caEnv }}
  env:
    {{- . | nindent 4 }}
  {{- end }}
  ports:
    - name: http
      containerPort: {{ .Values.ocsp.port }}
      protocol: TCP
  readinessProbe:
    httpGet:
      path: /healthz
      port: http
    periodSeconds: 10
  livenessProbe:
    httpGet:
      path: /healthz
      port: http
    initialDelaySeconds: 30
    periodSeconds: 20
  securityContext:
    {{- include "padlock.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml .Values.ocsp.resources | nindent 4 }}
  volumeMounts:
    {{- include "padlock.baseVolumeMounts" . | nindent 4 }}
    {{- if .Values.ocsp.sign }}
    {{- include "padlock.hsmVolumeMounts" . | nindent 4 }}
    {{- end }}
{{- end }}
