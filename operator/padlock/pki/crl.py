"""CRLs (RFC 5280 §5) in DER, without I/O: one signed CRL per shard of a CA's revocations.

Called by `padlock.ca.crl_publisher`, which lists a shard's revocations from the ledger, takes
the next CRL number and signs through the HSM. Encoded with `padlock.pki.der` rather than
`cryptography`'s builder, whose immutable builder copies its entry list on every added entry
(100,000 entries took minutes); here a million entries take seconds and one signature.

Each shard CRL carries (RFC 5280 §5.2):
- authorityKeyIdentifier (§5.2.1, MUST), from the issuer's subjectKeyIdentifier;
- cRLNumber (§5.2.3, MUST), monotonically increasing per shard;
- issuingDistributionPoint (§5.2.5, critical) naming the shard's URL and
  onlyContainsUserCerts, so the CRL is authoritative exactly for the certificates whose CDP
  (§4.2.1.13) names that URL: a relying party never uses shard 3's CRL for a shard 5 cert.
Entries carry a reasonCode (§5.3.1) unless it is unspecified (which SHOULD be absent).
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
from collections.abc import Iterable

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from padlock.pki import der

MAX_CRL_BYTES = 10 * 1024 * 1024
"""DESIGN.md: no shard grows past 10 MB. A revoked 20-byte serial with a reason takes 53
bytes, so one shard holds about 190,000 unexpired revocations."""

_OID_AKI = "2.5.29.35"
_OID_CRL_NUMBER = "2.5.29.20"
_OID_IDP = "2.5.29.28"
_OID_REASON = "2.5.29.21"


@dataclasses.dataclass(frozen=True)
class Entry:
    """One revoked certificate (RFC 5280 §5.1.2.6)."""

    serial: int
    revoked_at: datetime.datetime
    reason: int | None = None
    """CRLReason code (RFC 5280 §5.3.1); None or 0 (unspecified) is left out."""


def _extension(oid: str, value: bytes, *, critical: bool = False) -> bytes:
    crit = der.boolean(True) if critical else b""
    return der.sequence(der.encode_oid(oid), crit, der.octet_string(value))


# One encoded crlEntryExtensions per reason code, built once.
_REASON_EXTENSIONS = {
    code: der.sequence(_extension(_OID_REASON, der.enumerated(code))) for code in range(1, 11)
}


@functools.lru_cache(maxsize=65536)
def _time(when: datetime.datetime) -> bytes:
    # Revocations come in bursts (an issuer-wide revoke shares one time): encode each once.
    return der.time(when)


def _entry(entry: Entry) -> bytes:
    parts = der.integer(entry.serial) + _time(entry.revoked_at)
    if entry.reason:
        parts += _REASON_EXTENSIONS[entry.reason]
    return der.tlv(der.SEQUENCE, parts)


def build_crl(
    *,
    issuer: x509.Certificate,
    key: CertificateIssuerPrivateKeyTypes,
    entries: Iterable[Entry],
    crl_number: int,
    this_update: datetime.datetime,
    next_update: datetime.datetime,
    distribution_point: str | None,
) -> bytes:
    """A signed v2 CRL (RFC 5280 §5.1) in DER. Blocking: the signature may go to the HSM.

    `distribution_point`: the shard's URL, written into issuingDistributionPoint; None for an
    unsharded CRL (then the IDP only says onlyContainsUserCerts).
    """
    if crl_number < 0 or crl_number.bit_length() > 159:
        raise ValueError(f"CRL number {crl_number} is outside 0..2^159 (RFC 5280 §5.2.3)")
    if next_update <= this_update:
        raise ValueError("nextUpdate must be later than thisUpdate (RFC 5280 §5.1.2.5)")
    try:
        ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        raise ValueError(
            "the issuer certificate has no subjectKeyIdentifier; the CRL's "
            "authorityKeyIdentifier (RFC 5280 §5.2.1) needs one"
        ) from None
    aki = x509.AuthorityKeyIdentifier(ski.digest, None, None)
    idp = x509.IssuingDistributionPoint(
        full_name=[x509.UniformResourceIdentifier(distribution_point)]
        if distribution_point
        else None,
        relative_name=None,
        only_contains_user_certs=True,
        only_contains_ca_certs=False,
        only_some_reasons=None,
        indirect_crl=False,
        only_contains_attribute_certs=False,
    )
    extensions = der.sequence(
        _extension(_OID_AKI, aki.public_bytes()),
        _extension(_OID_CRL_NUMBER, der.integer(crl_number)),
        _extension(_OID_IDP, idp.public_bytes(), critical=True),
    )
    revoked = b"".join(_entry(e) for e in entries)
    algorithm = der.signature_algorithm(key)
    tbs = der.sequence(
        der.integer(1),  # v2 (§5.1.2.1): extensions are present
        algorithm,
        issuer.subject.public_bytes(),
        der.time(this_update),
        der.time(next_update),
        # §5.1.2.6: when there are no revoked certificates the list MUST be absent.
        der.tlv(der.SEQUENCE, revoked) if revoked else b"",
        der.explicit(0, extensions),
    )
    return der.sequence(tbs, algorithm, der.bit_string(der.sign(key, tbs)))
