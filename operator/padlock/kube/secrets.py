"""The Secrets padlock writes: the `kubernetes.io/tls` Secret of a Certificate, and the
short-lived "next private key" Secret that makes an issuance safe to re-run after a crash.

Called by the certificate controller. Every Secret padlock writes carries the managed-by label
and the certificate-name label (`padlock.api.labels`), so the operator watches only its own
Secrets with a server-side label selector and never lists all Secrets of the cluster.

Writes are read-modify-write with the object's resourceVersion: key and certificate change in
one update, so no reader ever sees a key that does not match its certificate; a 409 (another
writer in between) re-reads and retries.
"""

from __future__ import annotations

import base64
import contextlib
import dataclasses
from collections.abc import Mapping
from typing import Any

from padlock.api import labels
from padlock.kube import paths
from padlock.kube.client import Conflict, KubeClient, NotFound

TLS_TYPE = "kubernetes.io/tls"
TLS_CRT = "tls.crt"
TLS_KEY = "tls.key"
CA_CRT = "ca.crt"
CSR_PEM = "csr.pem"

# Label telling padlock's own Secret kinds apart: the TLS Secret users mount, or the pending
# private key of an issuance in flight (deleted once the TLS Secret holds it).
ROLE = f"{labels.PREFIX}/secret-role"
ROLE_TLS = "tls"
ROLE_NEXT_KEY = "next-private-key"

# Annotation on the TLS Secret: the uid of the Certificate that wrote it (a re-created
# Certificate with the same name does not adopt an older object's Secret blindly).
CERTIFICATE_UID = f"{labels.PREFIX}/certificate-uid"
# Annotation: the value of the Certificate's renew-request annotation this Secret answers.
RENEW_REQUEST_HANDLED = f"{labels.PREFIX}/renew-request-handled"

MAX_CONFLICT_RETRIES = 5


class Unread:
    """Marker type: the caller has not read the Secret (see `write_tls`)."""


UNREAD = Unread()


@dataclasses.dataclass(frozen=True)
class TLSMaterial:
    """What goes into a TLS Secret. `chain_pem` are the intermediates (may be empty),
    `ca_pem` the trust anchor. Private: never logged (no repr of the key)."""

    key_pem: bytes = dataclasses.field(repr=False)
    cert_pem: bytes
    chain_pem: bytes
    ca_pem: bytes

    @property
    def full_chain(self) -> bytes:
        """`tls.crt`: the leaf followed by the intermediates (RFC 8446 §4.4.2 order)."""
        leaf = self.cert_pem if self.cert_pem.endswith(b"\n") else self.cert_pem + b"\n"
        return leaf + self.chain_pem


@dataclasses.dataclass(frozen=True)
class Owner:
    """The Certificate a Secret belongs to (for labels and ownerReferences)."""

    namespace: str
    name: str
    uid: str
    api_version: str
    kind: str = "Certificate"

    def reference(self) -> dict[str, Any]:
        return {
            "apiVersion": self.api_version,
            "kind": self.kind,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": False,
        }


def data_of(secret: Mapping[str, Any] | None, key: str) -> bytes | None:
    """The decoded value of `data[key]`, or None when the Secret or the key is absent."""
    if not secret:
        return None
    value = (secret.get("data") or {}).get(key)
    if not value:
        return None
    return base64.b64decode(value)


def annotations_of(secret: Mapping[str, Any] | None) -> dict[str, str]:
    if not secret:
        return {}
    return dict((secret.get("metadata") or {}).get("annotations") or {})


def _b64(value: bytes) -> str:
    return base64.b64encode(value).decode("ascii")


async def read(client: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The Secret, or None when it does not exist."""
    try:
        return await client.get(paths.SECRETS.path(namespace, name))
    except NotFound:
        return None


async def delete(client: KubeClient, namespace: str, name: str) -> None:
    """Delete a Secret; absent is fine."""
    with contextlib.suppress(NotFound):
        await client.delete(paths.SECRETS.path(namespace, name))


async def write_tls(
    client: KubeClient,
    owner: Owner,
    secret_name: str,
    material: TLSMaterial,
    *,
    extra_labels: Mapping[str, str],
    extra_annotations: Mapping[str, str],
    padlock_annotations: Mapping[str, str],
    known: Mapping[str, Any] | Unread | None = UNREAD,
) -> dict[str, Any]:
    """Create or update the TLS Secret with key, certificate and CA in one write.

    `known` is the Secret as the caller last read it (None: absent), which saves a read; if it
    is stale, the compare-and-swap fails and the Secret is read afresh.

    `extra_*` come from the Certificate's `secretTemplate`; `padlock_annotations` (revision,
    spec hash, issuer, serial) are set last so a template cannot override them. Labels and
    annotations others put on an existing Secret are kept; so are data keys padlock does not
    own. Returns the Secret as stored.
    """
    set_labels = {
        **extra_labels,
        labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
        labels.CERTIFICATE_NAME: owner.name,
        ROLE: ROLE_TLS,
    }
    set_annotations = {**extra_annotations, **padlock_annotations, CERTIFICATE_UID: owner.uid}
    path = paths.SECRETS.path(owner.namespace, secret_name)
    data = {
        TLS_CRT: _b64(material.full_chain),
        TLS_KEY: _b64(material.key_pem),
        CA_CRT: _b64(material.ca_pem),
    }
    for attempt in range(MAX_CONFLICT_RETRIES):
        if attempt == 0 and not isinstance(known, Unread):
            current = dict(known) if known is not None else None
        else:
            current = await read(client, owner.namespace, secret_name)
        try:
            if current is None:
                body = {
                    "apiVersion": "v1",
                    "kind": "Secret",
                    "type": TLS_TYPE,
                    "metadata": {
                        "name": secret_name,
                        "namespace": owner.namespace,
                        "labels": set_labels,
                        "annotations": set_annotations,
                    },
                    "data": data,
                }
                return await client.create(paths.SECRETS.path(owner.namespace), body)
            # A merge patch (RFC 7386) carrying the resourceVersion just read is a
            # compare-and-swap: the API server answers 409 if the Secret changed since.
            # Keys, labels and annotations padlock does not own are left alone.
            patch = {
                "metadata": {
                    "resourceVersion": (current.get("metadata") or {}).get("resourceVersion"),
                    "labels": set_labels,
                    "annotations": set_annotations,
                },
                "data": data,
            }
            return await client.merge_patch(path, patch)
        except (Conflict, NotFound):
            continue  # someone wrote or deleted it in between: re-read and retry
    raise Conflict(
        409, "Conflict", f"Secret {owner.namespace}/{secret_name} kept changing while writing it"
    )


def next_key_name(secret_name: str) -> str:
    """Name of the pending-key Secret of the TLS Secret `secret_name`."""
    return f"{secret_name}-padlock-next-key"[:253]


async def write_next_key(
    client: KubeClient,
    owner: Owner,
    secret_name: str,
    *,
    revision: int,
    key_pem: bytes,
    csr_pem: bytes,
) -> dict[str, Any]:
    """Store the private key and CSR of revision `revision` before the CA is called.

    A handler re-run after a crash finds them and sends the very same CSR with the same
    idempotency key, so the CA answers with the certificate it already issued, and that
    certificate matches the key padlock holds. Owned by the Certificate, so the garbage
    collector removes it if the Certificate is deleted mid-issuance.
    """
    name = next_key_name(secret_name)
    body = {
        "apiVersion": "v1",
        "kind": "Secret",
        "type": "Opaque",
        "metadata": {
            "name": name,
            "namespace": owner.namespace,
            "labels": {
                labels.MANAGED_BY: labels.MANAGED_BY_VALUE,
                labels.CERTIFICATE_NAME: owner.name,
                ROLE: ROLE_NEXT_KEY,
            },
            "annotations": {labels.REVISION: str(revision), CERTIFICATE_UID: owner.uid},
            "ownerReferences": [owner.reference()],
        },
        "data": {TLS_KEY: _b64(key_pem), CSR_PEM: _b64(csr_pem)},
    }
    try:
        return await client.create(paths.SECRETS.path(owner.namespace), body)
    except Conflict:
        # A stale one from an abandoned revision: replace it whole.
        await delete(client, owner.namespace, name)
        return await client.create(paths.SECRETS.path(owner.namespace), body)


async def read_next_key(
    client: KubeClient, owner: Owner, secret_name: str, revision: int
) -> tuple[bytes, bytes] | None:
    """(key PEM, CSR PEM) stored for exactly this Certificate uid and revision, else None."""
    secret = await read(client, owner.namespace, next_key_name(secret_name))
    notes = annotations_of(secret)
    if notes.get(labels.REVISION) != str(revision) or notes.get(CERTIFICATE_UID) != owner.uid:
        return None
    key_pem, csr_pem = data_of(secret, TLS_KEY), data_of(secret, CSR_PEM)
    if key_pem is None or csr_pem is None:
        return None
    return key_pem, csr_pem


async def delete_next_key(client: KubeClient, namespace: str, secret_name: str) -> None:
    await delete(client, namespace, next_key_name(secret_name))
