#!/usr/bin/env bash
# Start the local control plane (etcd, kube-apiserver, kube-controller-manager) under .padlock/.
# Called by `make up` (after `make controlplane`). Running it twice is harmless: a running
# control plane is reused. Writes .padlock/kubeconfig and KUBECONFIG=... into
# .padlock/endpoints.env; applies crds/*.yaml. The processes stop by themselves after
# PADLOCK_CONTROLPLANE_MAX_LIFETIME (default 4h); `make down` stops them now.
# The logic lives in tools/controlplane/local.py (shared with the test fixture).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec .venv/bin/python -m tools.controlplane.local up --dir .padlock "$@"
