#!/usr/bin/env bash
# Installs the Debian packages padlock's tests and demo need, only when missing.
# Called by `make setup` (and `make bench` with --bench for the load tools). Root installs directly; others go through sudo.
set -euo pipefail

need=()
command -v softhsm2-util >/dev/null || need+=(softhsm2)
command -v pkcs11-tool   >/dev/null || need+=(opensc)
command -v openssl       >/dev/null || need+=(openssl)
compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null || need+=(postgresql)
[[ -e /usr/lib/softhsm/libsofthsm2.so ]] || need+=(softhsm2)
if [[ "${1:-}" == "--bench" ]]; then
  # bench/bench_ocsp.py drives the responder with wrk beside nginx serving the same DER.
  command -v wrk   >/dev/null || need+=(wrk)
  command -v nginx >/dev/null || need+=(nginx)
fi

if ((${#need[@]} == 0)); then
  exit 0
fi
echo "setup: installing Debian packages: ${need[*]}"
sudo=""
[[ $(id -u) -eq 0 ]] || sudo="sudo"
export DEBIAN_FRONTEND=noninteractive
$sudo apt-get update -qq
$sudo apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
