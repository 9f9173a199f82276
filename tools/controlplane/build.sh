#!/usr/bin/env bash
# Build (once) or find the local control plane binaries: etcd, kube-apiserver,
# kube-controller-manager. Called by `make controlplane` (and so by `make test` / `make up`).
#
# - KUBEBUILDER_ASSETS set: use the binaries there (checked, nothing built).
# - Otherwise: build them from the Go module proxy with the wrapper modules beside this file
#   (tools/controlplane/kubernetes, tools/controlplane/etcd; their go.sum pin every module)
#   into ~/.cache/padlock/controlplane/<kubernetes version>/. A stamp holding the hash of the
#   wrapper modules makes a second run a no-op. The cold build wall time goes to
#   build-seconds in that folder (read by bench/bench_controlplane.py).
# - Then fetches kubectl and helm (tools/fetch-kubectl-helm.sh).
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
BINARIES=(etcd kube-apiserver kube-controller-manager)
BUILD_TIMEOUT="${PADLOCK_BUILD_TIMEOUT:-3000}"
RECIPE=1 # bump when the go build flags below change, so cached binaries are rebuilt

log() { printf 'controlplane: %s\n' "$*" >&2; }

module_version() { # module_version GO_MOD_FILE MODULE -> version from its require lines
    awk -v m="$2" '$1 == m && $2 ~ /^v/ {print $2; exit} $1 == "require" && $2 == m {print $3; exit}' "$1"
}

K8S_VERSION="$(module_version "$HERE/kubernetes/go.mod" k8s.io/kubernetes)"
ETCD_VERSION="$(module_version "$HERE/etcd/go.mod" go.etcd.io/etcd/server/v3)"
if [[ -z "$K8S_VERSION" || -z "$ETCD_VERSION" ]]; then
    log "cannot read the pinned versions from $HERE/{kubernetes,etcd}/go.mod"
    exit 1
fi

if [[ -n "${KUBEBUILDER_ASSETS:-}" ]]; then
    for b in "${BINARIES[@]}"; do
        if [[ ! -x "$KUBEBUILDER_ASSETS/$b" ]]; then
            log "KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS has no executable $b (envtest bundles lack" \
                "kube-controller-manager): add it there, or unset KUBEBUILDER_ASSETS to build all three"
            exit 1
        fi
    done
    log "using KUBEBUILDER_ASSETS=$KUBEBUILDER_ASSETS"
else
    CACHE="${PADLOCK_CONTROLPLANE_CACHE:-$HOME/.cache/padlock/controlplane}/$K8S_VERSION"
    mkdir -p "$CACHE"
    # One build at a time per cache folder (make and a test session may race).
    exec 9>"$CACHE/.lock"
    flock 9

    # The stamp: every pinned module, the recipe below and the Go version.
    STAMP_WANT="$( (cat "$HERE"/kubernetes/go.mod "$HERE"/kubernetes/go.sum \
        "$HERE"/etcd/go.mod "$HERE"/etcd/go.sum "$HERE"/etcd/main.go
        echo "recipe=$RECIPE go=$(go env GOVERSION 2>/dev/null)") | sha256sum | cut -d' ' -f1)"
    have_all=1
    for b in "${BINARIES[@]}"; do [[ -x "$CACHE/$b" ]] || have_all=0; done
    if [[ $have_all == 1 && "$(cat "$CACHE/stamp" 2>/dev/null)" == "$STAMP_WANT" ]]; then
        log "up to date: $CACHE (kubernetes $K8S_VERSION, etcd $ETCD_VERSION)"
    else
        command -v go >/dev/null || { log "Go is required to build the control plane (or set KUBEBUILDER_ASSETS)"; exit 1; }
        log "building kubernetes $K8S_VERSION and etcd $ETCD_VERSION into $CACHE (cold: many minutes on 2 cores)"
        rm -f "$CACHE/stamp"
        start=$(date +%s)
        minor="${K8S_VERSION#v}"; major="${minor%%.*}"; minor="${minor#*.}"; minor="${minor%%.*}"
        build_date="$(date -u +%Y-%m-%dT%H:%M:%SZ)"
        ldflags="-s -w"
        for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
            ldflags+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
            ldflags+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$build_date"
        done
        progress() { # count `go build -v` package lines, print one line every 250
            awk -v what="$1" '{n++; if (n % 250 == 0) {printf "controlplane:   %s: %d packages compiled\n", what, n > "/dev/stderr"}}
                /^(#|go: |.*\.go:[0-9]+)/ {print > "/dev/stderr"}'
        }
        (
            cd "$HERE/etcd"
            log "  etcd $ETCD_VERSION ..."
            CGO_ENABLED=0 timeout "$BUILD_TIMEOUT" go build -mod=readonly -trimpath -buildvcs=false -v \
                -ldflags "-s -w" -o "$CACHE/etcd.new" . 2>&1 | progress etcd
            mv "$CACHE/etcd.new" "$CACHE/etcd"
        )
        (
            cd "$HERE/kubernetes"
            for cmd in kube-apiserver kube-controller-manager; do
                log "  $cmd $K8S_VERSION ..."
                CGO_ENABLED=0 timeout "$BUILD_TIMEOUT" go build -mod=readonly -trimpath -buildvcs=false -v \
                    -ldflags "$ldflags" -o "$CACHE/$cmd.new" "k8s.io/kubernetes/cmd/$cmd" 2>&1 | progress "$cmd"
                mv "$CACHE/$cmd.new" "$CACHE/$cmd"
            done
        )
        seconds=$(( $(date +%s) - start ))
        echo "$seconds" >"$CACHE/build-seconds"
        printf 'kubernetes %s\netcd %s\ngo %s\n' "$K8S_VERSION" "$ETCD_VERSION" "$(go env GOVERSION)" >"$CACHE/versions"
        echo "$STAMP_WANT" >"$CACHE/stamp"
        log "built in ${seconds}s: $CACHE"
    fi
fi

bash "$HERE/../fetch-kubectl-helm.sh"
