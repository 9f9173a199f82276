#!/usr/bin/env bash
# `make demo`: padlock end to end on the embedded defaults (local control plane, SoftHSM,
# SQLite). up -> apply manifests/examples -> wait Ready -> inspect the Secret's certificate ->
# verify the chain -> metrics -> force a renewal and watch the Deployment roll -> OCSP good ->
# revoke with a RevocationRequest -> OCSP revoked -> down. Exits 0 only if every step worked.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

NS=padlock-demo
CERT=web
SECRET=web-tls
DEPLOY=web
KUBECTL=${KUBECTL:-$HOME/.cache/padlock/bin/kubectl}
PADLOCK=.venv/bin/padlock
WORK=$(mktemp -d)
step=0

say()  { step=$((step + 1)); printf '\n\033[1m[%d] %s\033[0m\n' "$step" "$*"; }
fail() { printf '\n\033[31mdemo FAILED at step %d: %s\033[0m\n' "$step" "$*" >&2; exit 1; }
cleanup() {
  local rc=$?
  rm -rf "$WORK"
  if [[ -z "${PADLOCK_DEMO_KEEP:-}" ]]; then
    echo; echo "== make down"
    bash tools/down.sh || rc=1
  fi
  exit "$rc"
}
trap cleanup EXIT

# wait_for SECONDS DESCRIPTION COMMAND...: poll until COMMAND succeeds (no fixed sleeps).
wait_for() {
  local limit=$1 what=$2; shift 2
  local deadline=$((SECONDS + limit))
  until "$@" >/dev/null 2>&1; do
    ((SECONDS < deadline)) || fail "timed out after ${limit}s waiting for: $what"
    sleep 0.5
  done
}

say "make up: control plane, SoftHSM CA sidecar, OCSP responder, operator"
bash tools/up.sh
set -a; source .padlock/endpoints.env; set +a
k() { "$KUBECTL" -n "$NS" "$@"; }

say "apply manifests/examples (Issuer, ClusterIssuer, Certificate, Deployment opting in to reload)"
"$KUBECTL" create namespace "$NS" --dry-run=client -o yaml | "$KUBECTL" apply -f -
for f in manifests/examples/*.yaml; do
  [[ $f == *revocationrequest* ]] && continue
  k apply -f "$f"
done

say "wait for Certificate/$CERT to be Ready"
k wait --for=condition=Ready "certificate/$CERT" --timeout=90s
k get certificate "$CERT"

say "the Secret's certificate (padlock inspect)"
k get secret "$SECRET" -o jsonpath='{.data.tls\.crt}' | base64 -d > "$WORK/tls.crt"
k get secret "$SECRET" -o jsonpath='{.data.ca\.crt}' | base64 -d > "$WORK/ca.crt"
$PADLOCK inspect "$WORK/tls.crt" | sed -n '1,/^--- certificate 2/p' | grep -v '^--- certificate 2'
awk '/BEGIN/{n++} n==1' "$WORK/tls.crt" > "$WORK/leaf.pem"
awk '/BEGIN/{n++} n>=2' "$WORK/tls.crt" > "$WORK/chain.pem"

say "verify the chain with openssl (-x509_strict, trust anchor = ca.crt)"
openssl verify -x509_strict -CAfile "$WORK/ca.crt" -untrusted "$WORK/chain.pem" "$WORK/leaf.pem" \
  || fail "openssl verify"

say "expiry metrics for it ($METRICS_URL)"
curl -fsS "$METRICS_URL" | grep -E "^padlock_certificate_(expiration|renewal|ready)[a-z_]*\{.*name=\"$CERT\"" \
  || fail "no metrics for $CERT"

say "OCSP: the certificate is good ($OCSP_URL)"
ocsp() {
  openssl ocsp -issuer "$WORK/chain.pem" -cert "$1" -url "$OCSP_URL" \
    -CAfile "$WORK/ca.crt" -resp_text 2>&1
}
ocsp "$WORK/leaf.pem" | tee "$WORK/ocsp-good.txt" | grep -E "^$WORK/leaf.pem: |Response verify|Cert Status"
grep -q "$WORK/leaf.pem: good" "$WORK/ocsp-good.txt" || fail "OCSP did not say good"

say "force a renewal (padlock renew) and watch the Deployment roll"
old_serial=$(k get certificate "$CERT" -o jsonpath='{.status.serialNumber}')
old_rs=$(k get replicaset -l app=web -o name | sort)
$PADLOCK renew "$CERT" -n "$NS"
serial_changed() { [[ $(k get certificate "$CERT" -o jsonpath='{.status.serialNumber}') != "$old_serial" ]]; }
wait_for 60 "a new serial on Certificate/$CERT" serial_changed
new_serial=$(k get certificate "$CERT" -o jsonpath='{.status.serialNumber}')
echo "serial $old_serial -> $new_serial"
new_rs() { [[ $(k get replicaset -l app=web -o name | sort) != "$old_rs" ]]; }
wait_for 60 "kube-controller-manager to create a new ReplicaSet" new_rs
k get deployment "$DEPLOY" -o jsonpath='{.spec.template.metadata.annotations}'; echo
k get replicaset -l app=web

say "revoke it: RevocationRequest (keyCompromise) -> OCSP says revoked"
k get secret "$SECRET" -o jsonpath='{.data.tls\.crt}' | base64 -d | awk '/BEGIN/{n++} n==1' > "$WORK/leaf2.pem"
k apply -f manifests/examples/revocationrequest.yaml
rr=$(k get -f manifests/examples/revocationrequest.yaml -o name)
k wait --for=condition=Complete "$rr" --timeout=60s
k get "$rr" -o jsonpath='{.status}'; echo
revoked() { ocsp "$WORK/leaf2.pem" | grep -q ": revoked"; }
wait_for 15 "the responder to report the revocation" revoked
ocsp "$WORK/leaf2.pem" | grep -E ": revoked|Reason|Revocation Time"

say "padlock status"
$PADLOCK status --kubeconfig "$KUBECONFIG"

printf '\n\033[32mdemo passed: every step worked\033[0m\n'
