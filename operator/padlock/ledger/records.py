"""Immutable values the ledger returns: certificates, revocations, statuses, CRLs, audit rows.

Called by everyone who reads the ledger (CA pipeline, OCSP responder, CLI); the ledger builds
them from rows so callers never see SQLAlchemy rows.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools

from cryptography import x509


class CertType(enum.StrEnum):
    """What a certificate is for; the padlock profile it was issued under."""

    TLS_SERVER = "tls-server"
    TLS_CLIENT = "tls-client"
    TLS_SERVER_CLIENT = "tls-server-client"
    SPIFFE_SVID = "spiffe-svid"
    OCSP_RESPONDER = "ocsp-responder"
    INTERMEDIATE_CA = "intermediate-ca"


class CAType(enum.StrEnum):
    """The offline root, or the in-cluster intermediate whose key is in the HSM."""

    ROOT = "root"
    INTERMEDIATE = "intermediate"


class Status(enum.StrEnum):
    """An OCSP answer (RFC 6960 §2.2): good, revoked, or unknown to this CA."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


# RFC 5280 §5.3.1 CRLReason codes padlock accepts. certificateHold (6) is refused: padlock
# revocations are permanent (CA/Browser Forum BR §7.2.2 forbids it too). removeFromCRL (8) only
# appears in delta CRLs, which padlock does not publish; 7 is unassigned.
REASON_CODES: dict[int, str] = {
    0: "unspecified",
    1: "keyCompromise",
    2: "cACompromise",
    3: "affiliationChanged",
    4: "superseded",
    5: "cessationOfOperation",
    9: "privilegeWithdrawn",
    10: "aACompromise",
}


def check_reason_code(reason_code: int) -> None:
    """Raise ValueError unless `reason_code` is a CRLReason padlock records."""
    if reason_code not in REASON_CODES:
        allowed = ", ".join(f"{code} ({name})" for code, name in REASON_CODES.items())
        raise ValueError(f"CRL reason code {reason_code} is not accepted; use one of {allowed}")


@dataclasses.dataclass(frozen=True)
class CARecord:
    """A registered certificate authority."""

    ca_id: int
    ca_type: CAType
    subject_dn: str
    public_key_sha256: bytes
    cert_pem: str = dataclasses.field(repr=False)
    valid_from: datetime.datetime
    valid_until: datetime.datetime
    parent_ca_id: int | None
    is_active: bool

    @property
    def certificate(self) -> x509.Certificate:
        return _load_ca_certificate(self.cert_pem)


@functools.lru_cache(maxsize=32)
def _load_ca_certificate(pem: str) -> x509.Certificate:
    # Every issuance checks the leaf against its CA; parse each CA certificate once.
    return x509.load_pem_x509_certificate(pem.encode("ascii"))


@dataclasses.dataclass(frozen=True)
class CertificateRecord:
    """One issued certificate, as committed."""

    cert_id: int
    ca_id: int
    serial: int
    cert_type: CertType
    subject_dn: str
    subject_cn: str | None
    sans: tuple[str, ...]
    key_algorithm: str
    public_key_sha256: bytes
    cert_pem: str = dataclasses.field(repr=False)
    valid_from: datetime.datetime
    valid_until: datetime.datetime
    issued_at: datetime.datetime
    requester: str
    idempotency_key: str | None
    status: str

    @property
    def certificate(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem.encode("ascii"))


@dataclasses.dataclass(frozen=True)
class RevocationRecord:
    """One revocation. `revocation_id` grows in commit order, so it is a refresh cursor."""

    revocation_id: int
    ca_id: int
    serial: int
    revoked_at: datetime.datetime
    reason_code: int
    reason_text: str | None
    requested_by: str
    valid_until: datetime.datetime


@dataclasses.dataclass(frozen=True)
class CertificateStatus:
    """What the OCSP responder answers for one serial (RFC 6960 §2.2)."""

    status: Status
    revoked_at: datetime.datetime | None = None
    reason_code: int | None = None


@dataclasses.dataclass(frozen=True)
class OcspCacheEntry:
    """A pre-signed DER OCSPResponse for one certificate (RFC 6960 §4.2.1)."""

    ca_id: int
    serial: int
    status: Status
    this_update: datetime.datetime
    next_update: datetime.datetime
    response_der: bytes


@dataclasses.dataclass(frozen=True)
class CrlRecord:
    """The latest published CRL of one shard of one CA (RFC 5280 §5)."""

    ca_id: int
    shard: int
    crl_number: int
    this_update: datetime.datetime
    next_update: datetime.datetime
    crl_der: bytes


@dataclasses.dataclass(frozen=True)
class AuditEvent:
    """One row of the hash-chained audit log."""

    event_id: int
    at: datetime.datetime
    kind: str
    actor: str
    details_json: str
    prev_hash: str
    row_hash: str


@dataclasses.dataclass(frozen=True)
class DcvRecord:
    """One domain-control validation challenge (RFC 8555 §8) and whether it passed."""

    dcv_id: int
    domain: str
    method: str
    challenge_token: str
    challenge_value: str
    validated_at: datetime.datetime | None
    expires_at: datetime.datetime
    ip_logged: str | None


@dataclasses.dataclass(frozen=True)
class AuditCheckpoint:
    """The end of the audit chain at some moment: a row id and its hash."""

    event_id: int
    row_hash: str


@dataclasses.dataclass(frozen=True)
class VerifyResult:
    """Outcome of walking the audit chain: ok, or the first bad row and why."""

    ok: bool
    rows_checked: int
    first_bad_id: int | None = None
    reason: str | None = None
