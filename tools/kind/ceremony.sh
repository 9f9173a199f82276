#!/usr/bin/env bash
# A throw-away key ceremony for the kind cluster, run inside the padlock image (so the host
# needs only Docker): SoftHSM token, offline root, intermediate + OCSP keys in the token.
# Called by tools/kind/kind.sh install; reuses an earlier ceremony in DIR if it finished.
# For a real CA follow charts/padlock/README.md "Key ceremony" on an offline machine instead:
# here the root passphrase and PINs are random files next to the token, fine for a laptop only.
#
#   tools/kind/ceremony.sh DIR IMAGE NAMESPACE
set -euo pipefail

DIR="$1"
IMAGE="$2"
NAMESPACE="$3"
log() { printf 'ceremony: %s\n' "$*" >&2; }

if [[ -f "$DIR/token.tar" && -f "$DIR/intermediate/chain.pem" ]]; then
    log "reusing the ceremony in $DIR"
    exit 0
fi
rm -rf "$DIR"
mkdir -p "$DIR/tokens"
DIR="$(cd "$DIR" && pwd)"
umask 077
random_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
random_hex 32 >"$DIR/root-passphrase"
random_hex 8 >"$DIR/pin.txt"
SO_PIN="$(random_hex 8)"
PIN="$(cat "$DIR/pin.txt")"
printf 'directories.tokendir = /ceremony/tokens\nobjectstore.backend = file\nlog.level = ERROR\n' \
    >"$DIR/softhsm2.conf"
export PADLOCK_ROOT_PASSPHRASE
PADLOCK_ROOT_PASSPHRASE="$(cat "$DIR/root-passphrase")"

in_image() {
    local entrypoint="$1"
    shift
    docker run --rm --user "$(id -u):$(id -g)" --volume "$DIR:/ceremony" \
        --env SOFTHSM2_CONF=/ceremony/softhsm2.conf --env PADLOCK_ROOT_PASSPHRASE \
        --entrypoint "$entrypoint" "$IMAGE" "$@"
}

log "SoftHSM token 'padlock'"
in_image softhsm2-util --init-token --free --label padlock --pin "$PIN" --so-pin "$SO_PIN" >/dev/null
log "offline root (software key, passphrase in $DIR/root-passphrase)"
in_image padlock ca init-root --dir /ceremony/root --common-name "padlock kind Root CA"
log "intermediate + OCSP responder keys generated inside the token"
OCSP="http://padlock-ocsp.$NAMESPACE.svc"
in_image padlock ca init-intermediate --root-dir /ceremony/root --token-label padlock \
    --pin-file /ceremony/pin.txt --out /ceremony/intermediate \
    --ocsp-url "$OCSP" --crl-base-url "$OCSP/crl"
tar -C "$DIR/tokens" -cf "$DIR/token.tar" .
log "done: $DIR/intermediate/chain.pem, $DIR/token.tar, $DIR/pin.txt"
