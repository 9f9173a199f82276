"""Whether a Certificate's TLS Secret still serves it, and if not, why: `assess` (pure).

Called by the certificate controller (`padlock.controllers.issuing`) at the start of every
pass; `content_hash`/`CONTENT_HASH` also by `padlock.controllers.secretwatch`, to tell
padlock's own Secret writes from changes made by others.
"""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from padlock.api import certificate as api
from padlock.api import labels
from padlock.api.conditions import Reason
from padlock.api.wire import format_time
from padlock.controllers import crypto, renewal
from padlock.kube import secrets

# Annotation on the TLS Secret: hash of tls.crt + tls.key as padlock wrote them.
CONTENT_HASH = f"{labels.PREFIX}/content-hash"


@dataclasses.dataclass(frozen=True)
class Verdict:
    """What `assess` found. `reason` is None when the Secret is fine."""

    reason: str | None
    message: str
    leaf: x509.Certificate | None = None
    key: CertificateIssuerPrivateKeyTypes | None = dataclasses.field(default=None, repr=False)
    usable: bool = False
    """The Secret holds a matching, unexpired certificate (renewal only, Ready stays True)."""


def content_hash(tls_crt: bytes, tls_key: bytes) -> str:
    return crypto.content_hash(tls_crt + b"\0" + tls_key)


def assess(
    secret: Mapping[str, Any] | None,
    spec: api.CertificateSpec,
    spec_hash: str,
    uid: str,
    renew_request: str | None,
    now: datetime.datetime,
) -> Verdict:
    """Whether the Secret still serves the Certificate, and if not, why (pure)."""
    if secret is None:
        return Verdict(Reason.DOES_NOT_EXIST, f"Secret {spec.secret_name} does not exist")
    tls_crt = secrets.data_of(secret, secrets.TLS_CRT)
    tls_key = secrets.data_of(secret, secrets.TLS_KEY)
    if not tls_crt or not tls_key:
        return Verdict(Reason.SECRET_MISMATCH, "the Secret lacks tls.crt or tls.key")
    try:
        leaf = crypto.load_leaf(tls_crt)
        key = crypto.load_key(tls_key)
    except ValueError as exc:
        return Verdict(Reason.SECRET_MISMATCH, f"the Secret is unreadable: {exc}")
    if not crypto.key_matches_cert(key, leaf):
        return Verdict(Reason.SECRET_MISMATCH, "tls.key does not match tls.crt", leaf)
    notes = secrets.annotations_of(secret)
    if notes.get(CONTENT_HASH) != content_hash(tls_crt, tls_key):
        return Verdict(
            Reason.SECRET_MISMATCH, "the Secret's data was changed outside padlock", leaf
        )
    if notes.get(secrets.CERTIFICATE_UID) != uid:
        return Verdict(Reason.SECRET_MISMATCH, "the Secret was written for another Certificate")
    if notes.get(labels.SPEC_HASH) != spec_hash:
        return Verdict(
            Reason.SECRET_MISMATCH, "the spec changed since the certificate was issued", leaf, key
        )
    mismatch = crypto.mismatch(leaf, spec)
    if mismatch is not None:
        return Verdict(Reason.SECRET_MISMATCH, mismatch, leaf, key)
    if not crypto.key_fits_spec(key, spec.effective_private_key):
        return Verdict(
            Reason.SECRET_MISMATCH, "the key's algorithm or size differs from the spec", leaf, key
        )
    expired = now >= leaf.not_valid_after_utc
    if expired:
        return Verdict(
            Reason.EXPIRED,
            f"the certificate expired at {format_time(leaf.not_valid_after_utc)}",
            leaf,
            key,
        )
    due = renewal.renewal_time(spec, uid, leaf.not_valid_before_utc, leaf.not_valid_after_utc)
    if now >= due:
        return Verdict(
            Reason.RENEWING, f"renewal time {format_time(due)} has passed", leaf, key, usable=True
        )
    if renew_request and notes.get(secrets.RENEW_REQUEST_HANDLED) != renew_request:
        return Verdict(
            Reason.RENEWING, f"a renewal was requested at {renew_request}", leaf, key, usable=True
        )
    return Verdict(None, "the certificate is up to date", leaf, key)
