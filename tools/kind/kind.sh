#!/usr/bin/env bash
# padlock on a kind cluster: the steps behind `make kind-up image kind-load kind-install
# e2e-kind kind-down`. Needs Docker (a running daemon) and kind on the user's machine and fails
# at once, naming what is missing, when they are not there. helm and kubectl are the pinned
# ones from tools/fetch-kubectl-helm.sh. Everything it writes lives under .padlock/kind/.
#
#   tools/kind/kind.sh up | image | load | install | e2e | down
#
# Settings (environment): KIND_CLUSTER (padlock), IMAGE (padlock:dev), NAMESPACE (padlock).
set -euo pipefail

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
KIND_CLUSTER="${KIND_CLUSTER:-padlock}"
IMAGE="${IMAGE:-padlock:dev}"
NAMESPACE="${NAMESPACE:-padlock}"
STATE="$ROOT/.padlock/kind"
KUBECONFIG_FILE="$STATE/kubeconfig"
BIN="${PADLOCK_BIN_CACHE:-$HOME/.cache/padlock/bin}"

log() { printf 'kind: %s\n' "$*" >&2; }
die() { printf 'kind: error: %s\n' "$*" >&2; exit 1; }

need_docker() {
    command -v docker >/dev/null 2>&1 \
        || die "docker not found: install Docker (https://docs.docker.com/engine/install/) to use the kind targets"
    timeout 20 docker info >/dev/null 2>&1 \
        || die "docker is installed but its daemon is not reachable (is Docker running? can $(id -un) use it?)"
}

need_kind() {
    need_docker
    command -v kind >/dev/null 2>&1 \
        || die "kind not found: install it (https://kind.sigs.k8s.io/docs/user/quick-start/#installation)"
}

need_cluster() {
    need_kind
    kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER" \
        || die "kind cluster '$KIND_CLUSTER' does not exist: run 'make kind-up' first"
    mkdir -p "$STATE"
    kind get kubeconfig --name "$KIND_CLUSTER" >"$KUBECONFIG_FILE"
    chmod 0600 "$KUBECONFIG_FILE"
}

need_tools() {
    bash "$ROOT/tools/fetch-kubectl-helm.sh"
    export KUBECONFIG="$KUBECONFIG_FILE"
}

kubectl() { "$BIN/kubectl" "$@"; }
helm() { "$BIN/helm" "$@" 2> >(grep -v 'found symbolic link in path' >&2); }

cmd_up() {
    need_kind
    if kind get clusters 2>/dev/null | grep -qx "$KIND_CLUSTER"; then
        log "cluster '$KIND_CLUSTER' already exists"
    else
        kind create cluster --name "$KIND_CLUSTER" --config "$ROOT/kind-config.yaml" --wait 120s
    fi
}

cmd_image() {
    need_docker
    docker build --tag "$IMAGE" "$ROOT"
}

cmd_load() {
    need_cluster
    docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE not found: run 'make image' first"
    kind load docker-image "$IMAGE" --name "$KIND_CLUSTER"
}

cmd_install() {
    need_cluster
    need_tools
    docker image inspect "$IMAGE" >/dev/null 2>&1 || die "image $IMAGE not found: run 'make image' first"
    bash "$ROOT/tools/kind/ceremony.sh" "$STATE/ceremony" "$IMAGE" "$NAMESPACE"
    kubectl create namespace "$NAMESPACE" --dry-run=client -o yaml | kubectl apply -f -
    # Prove the chart runs under the restricted Pod Security Standard.
    kubectl label --overwrite namespace "$NAMESPACE" \
        pod-security.kubernetes.io/enforce=restricted pod-security.kubernetes.io/warn=restricted
    local c="$STATE/ceremony"
    kubectl -n "$NAMESPACE" create configmap padlock-ca-chain \
        --from-file=chain.pem="$c/intermediate/chain.pem" --from-file=ocsp.pem="$c/intermediate/ocsp.pem" \
        --dry-run=client -o yaml | kubectl apply -f -
    kubectl -n "$NAMESPACE" create secret generic padlock-hsm-pin --from-file=pin="$c/pin.txt" \
        --dry-run=client -o yaml | kubectl apply -f -
    kubectl -n "$NAMESPACE" create secret generic padlock-softhsm-token \
        --from-file=token.tar="$c/token.tar" --dry-run=client -o yaml | kubectl apply -f -
    local repo="${IMAGE%:*}" tag="${IMAGE##*:}"
    helm upgrade --install padlock "$ROOT/charts/padlock" --namespace "$NAMESPACE" \
        -f "$ROOT/charts/padlock/values-kind.yaml" \
        --set image.repository="$repo" --set image.tag="$tag" --wait --timeout 5m
    kubectl -n "$NAMESPACE" rollout status deployment/padlock --timeout=180s
    log "padlock is running in namespace $NAMESPACE; KUBECONFIG=$KUBECONFIG_FILE"
}

cmd_e2e() {
    need_cluster
    need_tools
    command -v openssl >/dev/null 2>&1 || die "openssl not found: e2e-kind asks the responder with 'openssl ocsp'"
    bash "$ROOT/tools/kind/e2e.sh" "$STATE/e2e" "$NAMESPACE"
}

cmd_down() {
    need_kind
    kind delete cluster --name "$KIND_CLUSTER"
    rm -rf "$STATE"
}

case "${1:-}" in
    up) cmd_up ;;
    image) cmd_image ;;
    load) cmd_load ;;
    install) cmd_install ;;
    e2e) cmd_e2e ;;
    down) cmd_down ;;
    *) die "usage: $0 up|image|load|install|e2e|down" ;;
esac
