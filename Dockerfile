# syntax=docker/dockerfile:1
# One image for every padlock process: `padlock operator`, `padlock ca serve`,
# `padlock ocsp serve`, `padlock svid agent` and the offline ceremony commands.
# Built by `make image`; run by charts/padlock. Runs as UID/GID 10001 on a read-only root
# filesystem: SoftHSM's config and token directory, the ledger and /tmp are volumes.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --- build: a self-contained virtualenv with padlock and its dependencies (pkilint too) ---
FROM ${PYTHON_IMAGE} AS build
ENV PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/padlock
WORKDIR /src
# Only what `pip install .` reads (see .dockerignore): metadata first, then the source.
COPY pyproject.toml README.md ./
COPY operator ./operator
RUN /opt/padlock/bin/pip install --no-compile . \
    && /opt/padlock/bin/python -m compileall -q -j 0 /opt/padlock/lib \
    && /opt/padlock/bin/python -c "import padlock.cli, pkilint, pkcs11, cryptography, kopf"

# --- runtime: Python + SoftHSM2, no compilers, no build files ---
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="padlock" \
      org.opencontainers.image.description="Kubernetes-native private PKI: operator, HSM-backed CA, OCSP/CRL responder" \
      org.opencontainers.image.licenses="Apache-2.0"
# libsofthsm2: the PKCS#11 module (/usr/lib/softhsm/libsofthsm2.so, ca.yaml's default);
# softhsm2: softhsm2-util, for the key ceremony run inside this image. Debian's token store
# (/var/lib/softhsm, root:softhsm 2770) and config are closed to UID 10001, so the image has its
# own config with the token directory under /var/lib/padlock (the chart mounts the same path).
# Versions float with Debian security updates of the pinned base.
# hadolint ignore=DL3008
RUN apt-get update \
    && apt-get install -y --no-install-recommends libsofthsm2 softhsm2 \
    && rm -rf /var/lib/apt/lists/* \
    && groupadd --system --gid 10001 padlock \
    && useradd --system --uid 10001 --gid 10001 --home-dir /var/lib/padlock --no-create-home \
       --shell /usr/sbin/nologin padlock \
    && install -d -o 10001 -g 10001 -m 0750 \
       /var/lib/padlock /var/lib/padlock/ledger /var/lib/padlock/tokens /run/padlock \
    && install -d -m 0755 /etc/padlock /etc/padlock/config /etc/padlock/chain /etc/padlock/pin \
    && printf '%s\n' 'directories.tokendir = /var/lib/padlock/tokens' 'objectstore.backend = file' \
       'log.level = ERROR' 'slots.removable = false' > /etc/padlock/softhsm2.conf
COPY --from=build /opt/padlock /opt/padlock
ENV PATH=/opt/padlock/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    XDG_CACHE_HOME=/tmp/.cache \
    SOFTHSM2_CONF=/etc/padlock/softhsm2.conf
WORKDIR /var/lib/padlock
USER 10001:10001
ENTRYPOINT ["padlock"]
CMD ["--help"]
