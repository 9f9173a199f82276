"""Re-issue a revoked Certificate with a NEW private key, through the certificate controller.

Called by the revocation controller (`padlock.controllers.revocations`) for `reissue: true`.
It issues nothing itself: it sets the renew-request annotation `padlock renew` sets
(`padlock.kube.certificates.RENEW_REQUESTED`), so the certificate controller re-issues as for
any renewal (same idempotency, Secret write, Events, pod reloads). The annotation's value names
the RevocationRequest, so a repeated request asks once.

A renewal keeps the key when `rotationPolicy: Never`; a revoked certificate (its key may have
leaked, RFC 5280 §5.3.1 keyCompromise) must not. For such Certificates this module also stores
a fresh key and CSR as the pending key of the next revision, in the certificate controller's
own "next private key" Secret (`padlock.kube.secrets.write_next_key`): the controller picks up
a pending key for the revision it issues before it would reuse the old one. The revision is
computed as the controller computes it (highest of status.revision and the Secret's revision
annotation, plus one). The key is generated in a thread and never logged.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from collections.abc import Collection, Mapping
from typing import Any

from padlock.api import certificate as cert_api
from padlock.api import group, labels
from padlock.controllers import crypto
from padlock.kube import certificates, objects, paths, revocations, secrets
from padlock.kube.client import KubeClient
from padlock.pki import serials

log = logging.getLogger(__name__)


class Outcome(enum.StrEnum):
    REQUESTED = "re-issue requested"
    ALREADY_REQUESTED = "re-issue already requested"
    NOT_HOLDING = "already holds a certificate that was not revoked"
    GONE = "is gone"


def marker(namespace: str, name: str, uid: str) -> str:
    """The renew-request value for one RevocationRequest (unique per object, stable)."""
    return f"revocation {namespace}/{name} {uid}"


def _next_revision(certificate: Mapping[str, Any], secret: Mapping[str, Any] | None) -> int:
    """The revision the certificate controller will issue next (its own rule)."""
    uid = (certificate.get("metadata") or {}).get("uid")
    previous = int((certificate.get("status") or {}).get("revision") or 0)
    notes = secrets.annotations_of(secret)
    if notes.get(secrets.CERTIFICATE_UID) == uid and notes.get(labels.REVISION, "").isdigit():
        previous = max(previous, int(notes[labels.REVISION]))
    return previous + 1


async def _seed_new_key(
    kube: KubeClient,
    certificate: Mapping[str, Any],
    spec: cert_api.CertificateSpec,
    secret: Mapping[str, Any] | None,
) -> None:
    meta = certificate.get("metadata") or {}
    owner = secrets.Owner(
        str(meta["namespace"]), str(meta["name"]), str(meta.get("uid", "")), group.API_VERSION
    )
    revision = _next_revision(certificate, secret)
    private_key = spec.effective_private_key
    key = await asyncio.to_thread(crypto.generate_key, private_key)
    await secrets.write_next_key(
        kube,
        owner,
        spec.secret_name,
        revision=revision,
        key_pem=crypto.encode_key(key, private_key.effective_encoding),
        csr_pem=crypto.build_csr(key, spec),
    )


async def reissue(
    kube: KubeClient, namespace: str, name: str, revoked: Collection[str], request_marker: str
) -> Outcome:
    """Have Certificate `namespace/name` re-issued with a new key if its Secret still holds
    one of the `revoked` serials (lowercase hex); see the module docstring."""
    certificate = await objects.get(kube, paths.CERTIFICATES, namespace, name)
    if certificate is None:
        return Outcome.GONE
    notes = (certificate.get("metadata") or {}).get("annotations") or {}
    spec = cert_api.CertificateSpec.from_dict(certificate.get("spec") or {}, "spec")
    secret = await secrets.read(kube, namespace, spec.secret_name)
    tls_crt = secrets.data_of(secret, secrets.TLS_CRT)
    held = None
    if tls_crt is not None:
        try:
            held = serials.serial_hex(crypto.load_leaf(tls_crt).serial_number).lower()
        except ValueError:
            held = None
    if held is not None and held not in revoked:
        return Outcome.NOT_HOLDING
    if notes.get(certificates.RENEW_REQUESTED) == request_marker:
        return Outcome.ALREADY_REQUESTED
    if spec.effective_private_key.effective_rotation_policy is cert_api.RotationPolicy.NEVER:
        await _seed_new_key(kube, certificate, spec, secret)
    if not await revocations.request_reissue(kube, namespace, name, request_marker):
        return Outcome.GONE
    log.info("%s/%s: re-issue with a new key requested (%s)", namespace, name, request_marker)
    return Outcome.REQUESTED
