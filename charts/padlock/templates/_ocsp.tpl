{{/*
The OCSP/CRL responder container (`padlock ocsp serve`), used in the CA pod (SQLite) and in
its own Deployment (PostgreSQL). It reads the same ca.yaml as the CA: ledger, chain and the
delegated responder key (RFC 6960 §4.2.2.2) in the HSM.
*/}}
{{- define "padlock.ocspContainer" -}}
{{- $caEnv := include "padlock.caEnv" . | trim -}}
- name: ocsp
  image: {{ include "padlock.image" . }}
  imagePullPolicy: {{ .Values.image.pullPolicy }}
  args:
    - ocsp
    - serve
    - --config
    - {{ include "padlock.path.caYaml" . }}
    - --port
    - {{ .Values.ocsp.port | quote }}
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
    tcpSocket:
      port: http
    periodSeconds: 10
  livenessProbe:
    tcpSocket:
      port: http
    initialDelaySeconds: 30
    periodSeconds: 20
  securityContext:
    {{- include "padlock.containerSecurityContext" . | nindent 4 }}
  resources:
    {{- toYaml .Values.ocsp.resources | nindent 4 }}
  volumeMounts:
    {{- include "padlock.caVolumeMounts" . | nindent 4 }}
{{- end }}
