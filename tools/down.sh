#!/usr/bin/env bash
# Stop everything `make up` started under .padlock/ (by recorded PID and its process group).
# Called by `make down`. Harmless when nothing runs. Logic: tools/controlplane/local.py.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec .venv/bin/python -m tools.controlplane.local down --dir .padlock "$@"
