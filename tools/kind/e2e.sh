#!/usr/bin/env bash
# `make e2e-kind`: padlock on kind, end to end, with the manifests users start from.
# Applies manifests/examples, then waits for: Certificate `web` Ready (and padlock's baseline
# hash on Deployment `web`), an OCSP "good" for the leaf from the responder on 127.0.0.1:30880
# (kind-config.yaml), and after the RevocationRequest (reissue: true) "revoked" for that serial
# and Deployment `web` rolled by padlock (pod template annotation padlock.dev/cert-hash). Called by tools/kind/kind.sh e2e with KUBECONFIG set.
#
#   tools/kind/e2e.sh WORKDIR PADLOCK_NAMESPACE
set -euo pipefail

WORK="$1"
PADLOCK_NS="$2"
NS="padlock-e2e"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
EX="$ROOT/manifests/examples"
BIN="${PADLOCK_BIN_CACHE:-$HOME/.cache/padlock/bin}"
OCSP_URL="http://127.0.0.1:30880"
kubectl() { "$BIN/kubectl" "$@"; }
step() { printf '\n== e2e: %s\n' "$*" >&2; }

diagnose() {
    step "FAILED: state for diagnosis"
    kubectl -n "$NS" get certificates,secrets,deployments,pods -o wide || true
    kubectl -n "$NS" describe certificate web || true
    kubectl -n "$PADLOCK_NS" get pods -o wide || true
    for c in operator ca ocsp; do
        kubectl -n "$PADLOCK_NS" logs deployment/padlock -c "$c" --tail=40 || true
    done
}
trap diagnose ERR

rm -rf "$WORK"
mkdir -p "$WORK"

step "apply manifests/examples into namespace $NS"
kubectl create namespace "$NS" --dry-run=client -o yaml | kubectl apply -f -
kubectl apply -f "$EX/clusterissuer-ca.yaml"
kubectl -n "$NS" apply -f "$EX/issuer-ca.yaml" -f "$EX/issuer-selfsigned.yaml" \
    -f "$EX/certificate.yaml" -f "$EX/deployment-reload.yaml"

step "Certificate web becomes Ready"
kubectl -n "$NS" wait --for=condition=Ready certificate/web --timeout=180s

step "padlock records Deployment web's baseline (metadata annotation padlock.dev/cert-hash)"
cert_hash() { kubectl -n "$NS" get deployment web -o "jsonpath={$1.annotations.padlock\.dev/cert-hash}"; }
baseline=""
for _ in $(seq 60); do
    baseline="$(cert_hash .metadata)"
    [[ -n "$baseline" ]] && break
    sleep 2
done
[[ -n "$baseline" ]] || { echo "Deployment web never got its baseline padlock.dev/cert-hash" >&2; false; }

step "OCSP: the responder says good for the leaf"
kubectl -n "$NS" get secret web-tls -o jsonpath='{.data.tls\.crt}' | base64 -d >"$WORK/tls.crt"
kubectl -n "$NS" get secret web-tls -o jsonpath='{.data.ca\.crt}' | base64 -d >"$WORK/ca.crt"
# tls.crt is leaf + chain: the first block is the leaf, the second its issuer.
awk -v dir="$WORK" '/-----BEGIN CERTIFICATE-----/ {n++} n {print > (dir "/cert" n ".pem")}' \
    "$WORK/tls.crt"
ocsp() {
    openssl ocsp -issuer "$WORK/cert2.pem" -cert "$WORK/cert1.pem" -url "$OCSP_URL" \
        -CAfile "$WORK/ca.crt" -verify_other "$WORK/tls.crt" -partial_chain -no_nonce 2>&1
}
out="$(ocsp)"
echo "$out"
grep -q "cert1.pem: good" <<<"$out" || { echo "OCSP did not answer good" >&2; false; }

step "revoke + reissue (RevocationRequest web-key-compromise): OCSP says revoked"
kubectl -n "$NS" apply -f "$EX/revocationrequest.yaml"
kubectl -n "$NS" wait --for=condition=Complete revocationrequest/web-key-compromise --timeout=120s
for _ in $(seq 30); do
    out="$(ocsp)"
    grep -q "cert1.pem: revoked" <<<"$out" && break
    sleep 1
done
echo "$out"
grep -q "cert1.pem: revoked" <<<"$out" || { echo "OCSP did not answer revoked" >&2; false; }

step "the reissued certificate rolls Deployment web (pod template padlock.dev/cert-hash)"
rolled=""
for _ in $(seq 90); do
    rolled="$(cert_hash .spec.template.metadata)"
    [[ -n "$rolled" && "$rolled" != "$baseline" ]] && break
    sleep 2
done
[[ -n "$rolled" && "$rolled" != "$baseline" ]] || { echo "Deployment web was not rolled" >&2; false; }
kubectl -n "$NS" rollout status deployment/web --timeout=180s

trap - ERR
step "passed"
