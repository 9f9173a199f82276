#!/usr/bin/env bash
# `make up`: the local control plane plus padlock's CA, OCSP responder and operator, all under
# .padlock/. Harmless twice. Logic: tools/stack.py (control plane: tools/controlplane/local.py).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec .venv/bin/python -m tools.stack up --dir .padlock "$@"
