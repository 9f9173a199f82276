#!/usr/bin/env bash
# `make down`: stop everything `make up` started under .padlock/, by recorded PID and group.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
exec .venv/bin/python -m tools.stack down --dir .padlock "$@"
