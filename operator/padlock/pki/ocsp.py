"""OCSP (RFC 6960) in DER, without I/O: parse requests, build signed responses and errors.

Called by `padlock.ca.ocsp_signing` (pre-signs one response per certificate at issuance and on
revocation) and by `padlock.services.ocsp` (parses every request on the hot path, signs on
demand when a request carries a nonce or asks about several certificates).

Why not only `cryptography.x509.ocsp`: its request loader refuses requests with more than one
`Request` and its response builder writes exactly one `SingleResponse`; RFC 6960 §4.1.1 allows
several. Requests are therefore read with the strict reader in `padlock.pki.der` (the tests
check it agrees with `cryptography` on single requests), and responses are encoded here, then
read back by `cryptography`, `openssl ocsp` and pkilint in the tests.
"""

from __future__ import annotations

import dataclasses
import datetime
import enum
import functools
import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from padlock.pki import der

MAX_REQUESTS = 16
"""Most certificates one request may ask about; more is refused as malformed."""

MAX_NONCE = 32
"""RFC 8954 §2.1: a nonce of 0 or more than 32 octets is refused with malformedRequest."""

# RFC 6960 §4.3 / RFC 5019 §2.1.1: CertID hash algorithms a client may use. SHA-1 is what
# RFC 5019 clients (and `openssl ocsp` by default) send; it hashes public data only.
HASH_ALGORITHMS: dict[str, str] = {
    "1.3.14.3.2.26": "sha1",
    "2.16.840.1.101.3.4.2.1": "sha256",
    "2.16.840.1.101.3.4.2.2": "sha384",
    "2.16.840.1.101.3.4.2.3": "sha512",
}
_HASH_OIDS = {name: oid for oid, name in HASH_ALGORITHMS.items()}

OID_NONCE = "1.3.6.1.5.5.7.48.1.2"  # RFC 6960 §4.4.1
OID_BASIC = "1.3.6.1.5.5.7.48.1.1"  # RFC 6960 §4.2.1 id-pkix-ocsp-basic


class ResponseStatus(enum.IntEnum):
    """OCSPResponseStatus (RFC 6960 §4.2.1); 4 is not used."""

    SUCCESSFUL = 0
    MALFORMED_REQUEST = 1
    INTERNAL_ERROR = 2
    TRY_LATER = 3
    SIG_REQUIRED = 5
    UNAUTHORIZED = 6


class CertStatus(enum.Enum):
    """CertStatus (RFC 6960 §4.2.1)."""

    GOOD = "good"
    REVOKED = "revoked"
    UNKNOWN = "unknown"


class MalformedRequest(ValueError):
    """The bytes are not an OCSP request padlock answers; `message` says why."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclasses.dataclass(frozen=True)
class CertId:
    """CertID (RFC 6960 §4.1.1): which certificate of which issuer a request is about."""

    hash_algorithm: str
    """"sha1", "sha256", "sha384" or "sha512"."""
    issuer_name_hash: bytes
    issuer_key_hash: bytes
    serial: int

    def encode(self) -> bytes:
        return der.sequence(
            _cert_id_prefix(self.hash_algorithm, self.issuer_name_hash, self.issuer_key_hash),
            der.integer(self.serial),
        )


@functools.lru_cache(maxsize=64)
def _cert_id_prefix(hash_algorithm: str, name_hash: bytes, key_hash: bytes) -> bytes:
    """The CertID fields before serialNumber, the same for every certificate of an issuer."""
    return (
        # RFC 5019 §2.1.1 / common practice: parameters NULL, as openssl writes them.
        der.sequence(der.encode_oid(_HASH_OIDS[hash_algorithm]), der.tlv(der.NULL, b""))
        + der.octet_string(name_hash)
        + der.octet_string(key_hash)
    )


@dataclasses.dataclass(frozen=True)
class Request:
    """A parsed OCSPRequest: the certificates asked about, and the nonce extension if any."""

    cert_ids: tuple[CertId, ...]
    nonce: bytes | None
    """The nonce extension's extnValue octets, echoed verbatim (RFC 6960 §4.4.1)."""


@dataclasses.dataclass(frozen=True)
class IssuerHashes:
    """The CertID hashes of one issuer for every accepted hash algorithm."""

    by_algorithm: dict[str, tuple[bytes, bytes]]

    @classmethod
    def of(cls, issuer: x509.Certificate) -> IssuerHashes:
        name = issuer.subject.public_bytes()
        key = subject_public_key_bits(issuer)
        return cls(
            {
                alg: (hashlib.new(alg, name).digest(), hashlib.new(alg, key).digest())
                for alg in _HASH_OIDS
            }
        )

    def matches(self, cert_id: CertId) -> bool:
        """Whether `cert_id` names this issuer (RFC 6960 §4.1.1 issuerNameHash/KeyHash)."""
        return self.by_algorithm.get(cert_id.hash_algorithm) == (
            cert_id.issuer_name_hash,
            cert_id.issuer_key_hash,
        )

    def cert_id(self, serial: int, hash_algorithm: str = "sha1") -> CertId:
        name_hash, key_hash = self.by_algorithm[hash_algorithm]
        return CertId(hash_algorithm, name_hash, key_hash, serial)


def subject_public_key_bits(cert: x509.Certificate) -> bytes:
    """The subjectPublicKey BIT STRING value without its unused-bits octet (RFC 6960 §4.1.1:
    the issuerKeyHash and the byKey ResponderID hash exactly this)."""
    spki = der.read_whole(
        cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo),
        der.SEQUENCE,
        "SPKI",
    )
    _alg, bits = list(spki.children())
    return bits.expect(der.BIT_STRING, "subjectPublicKey").value[1:]


# -- requests --------------------------------------------------------------------------------


def parse_request(data: bytes) -> Request:
    """Parse a DER OCSPRequest (RFC 6960 §4.1.1); MalformedRequest says what is wrong.

    An optional signature (§4.1.2) is ignored: padlock answers anyone.
    """
    try:
        return _parse_request(data)
    except der.DerError as exc:
        raise MalformedRequest(f"not a DER OCSP request: {exc}") from None


def _parse_request(data: bytes) -> Request:
    top = list(der.read_whole(data, der.SEQUENCE, "OCSPRequest").children())
    if not top or len(top) > 2:
        raise MalformedRequest("OCSPRequest must hold tbsRequest and an optional signature")
    if len(top) == 2:
        top[1].expect(der.context(0), "optionalSignature")
    tbs = list(top[0].expect(der.SEQUENCE, "tbsRequest").children())
    if tbs and tbs[0].tag == der.context(0):
        version = list(tbs.pop(0).children())
        if len(version) != 1 or version[0].integer("version") != 0:
            raise MalformedRequest("tbsRequest.version must be v1 (0)")
    if tbs and tbs[0].tag == der.context(1):
        tbs.pop(0)  # requestorName: not used (§4.1.2)
    if not tbs:
        raise MalformedRequest("tbsRequest has no requestList")
    request_list = list(tbs.pop(0).expect(der.SEQUENCE, "requestList").children())
    if not request_list:
        raise MalformedRequest("requestList is empty")
    if len(request_list) > MAX_REQUESTS:
        raise MalformedRequest(
            f"requestList asks about {len(request_list)} certificates; at most {MAX_REQUESTS}"
        )
    nonce = None
    if tbs and tbs[0].tag == der.context(2):
        nonce = _request_extensions(tbs.pop(0))
    if tbs:
        raise MalformedRequest(f"unexpected element with tag 0x{tbs[0].tag:02x} in tbsRequest")
    return Request(tuple(_parse_single(r) for r in request_list), nonce)


def _parse_single(element: der.Element) -> CertId:
    parts = list(element.expect(der.SEQUENCE, "Request").children())
    if not parts or len(parts) > 2:
        raise MalformedRequest("Request must hold reqCert and optional extensions")
    if len(parts) == 2:
        _check_extensions(parts[1].expect(der.context(0), "singleRequestExtensions"), {})
    fields = list(parts[0].expect(der.SEQUENCE, "CertID").children())
    if len(fields) != 4:
        raise MalformedRequest(f"CertID has {len(fields)} fields, expected 4")
    algorithm = list(fields[0].expect(der.SEQUENCE, "hashAlgorithm").children())
    if not algorithm or len(algorithm) > 2:
        raise MalformedRequest("CertID.hashAlgorithm is not an AlgorithmIdentifier")
    oid = algorithm[0].oid("hashAlgorithm")
    name = HASH_ALGORITHMS.get(oid)
    if name is None:
        raise MalformedRequest(f"CertID hash algorithm {oid} is not supported (use SHA-1 or SHA-2)")
    if len(algorithm) == 2 and algorithm[1].encoded != b"\x05\x00":
        raise MalformedRequest("CertID.hashAlgorithm parameters must be absent or NULL")
    size = hashlib.new(name).digest_size
    name_hash = fields[1].expect(der.OCTET_STRING, "issuerNameHash").value
    key_hash = fields[2].expect(der.OCTET_STRING, "issuerKeyHash").value
    if len(name_hash) != size or len(key_hash) != size:
        raise MalformedRequest(f"CertID hashes are not {size}-byte {name} digests")
    return CertId(name, name_hash, key_hash, fields[3].integer("serialNumber"))


def _request_extensions(wrapper: der.Element) -> bytes | None:
    found: dict[str, bytes] = {}
    _check_extensions(wrapper, found)
    nonce = found.get(OID_NONCE)
    if nonce is not None:
        # RFC 8954 §2.1: Nonce ::= OCTET STRING (SIZE(1..32)). Older clients put raw octets
        # in extnValue; both are echoed verbatim, but the length limit holds for both.
        inner = nonce
        if len(nonce) >= 2 and nonce[0] == der.OCTET_STRING:
            try:
                inner = der.read_whole(nonce, der.OCTET_STRING, "Nonce").value
            except der.DerError:
                inner = nonce
        if not 1 <= len(inner) <= MAX_NONCE:
            raise MalformedRequest(
                f"nonce of {len(inner)} octets; RFC 8954 allows 1 to {MAX_NONCE}"
            )
    return nonce


def _check_extensions(wrapper: der.Element, found: dict[str, bytes]) -> None:
    """Collect extensions by OID; an unknown critical one makes the request unanswerable."""
    inner = list(wrapper.children())
    if len(inner) != 1:
        raise MalformedRequest("extensions must be one SEQUENCE OF Extension")
    for ext in inner[0].expect(der.SEQUENCE, "Extensions").children():
        parts = list(ext.expect(der.SEQUENCE, "Extension").children())
        if len(parts) not in (2, 3):
            raise MalformedRequest("an Extension must hold extnID, critical?, extnValue")
        oid = parts[0].oid("extnID")
        critical = len(parts) == 3 and parts[1].expect(der.BOOLEAN, "critical").value != b"\x00"
        if oid in found:
            raise MalformedRequest(f"extension {oid} appears twice")
        found[oid] = parts[-1].expect(der.OCTET_STRING, "extnValue").value
        if critical and oid != OID_NONCE:
            raise MalformedRequest(f"critical extension {oid} is not supported")


# -- responses -------------------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class SingleResponse:
    """One certificate's status (RFC 6960 §4.2.1 SingleResponse)."""

    cert_id: CertId
    status: CertStatus
    this_update: datetime.datetime
    next_update: datetime.datetime | None
    revoked_at: datetime.datetime | None = None
    reason: int | None = None
    """RFC 5280 §5.3.1 CRLReason code; None (or 0, unspecified) is left out."""

    def __post_init__(self) -> None:
        if (self.status is CertStatus.REVOKED) != (self.revoked_at is not None):
            raise ValueError("revoked_at is required for, and only for, a revoked status")
        if self.next_update is not None and self.next_update <= self.this_update:
            raise ValueError("nextUpdate must be later than thisUpdate (RFC 6960 §4.2.2.1)")

    def encode(self) -> bytes:
        if self.status is CertStatus.GOOD:
            status = der.tlv(der.context(0, constructed=False), b"")
        elif self.status is CertStatus.UNKNOWN:
            status = der.tlv(der.context(2, constructed=False), b"")
        else:
            assert self.revoked_at is not None
            info = der.generalized_time(self.revoked_at)
            if self.reason:
                info += der.explicit(0, der.enumerated(self.reason))
            status = der.tlv(der.context(1), info)  # [1] IMPLICIT RevokedInfo
        parts = [self.cert_id.encode(), status, der.generalized_time(self.this_update)]
        if self.next_update is not None:
            parts.append(der.explicit(0, der.generalized_time(self.next_update)))
        return der.sequence(*parts)


class Signer:
    """Who signs responses: the delegated responder (RFC 6960 §4.2.2.2) and its key.

    `key` may be an HSM key; the responder certificate is sent in `certs` so clients can check
    it was issued by the CA (and carries id-kp-OCSPSigning).
    """

    def __init__(
        self, certificate: x509.Certificate, key: CertificateIssuerPrivateKeyTypes
    ) -> None:
        self.certificate = certificate
        self.key = key
        self.key_hash, self.certificate_der = _responder_id(certificate)
        self.responder_id, self.certs = _responder_fields(certificate)


@functools.lru_cache(maxsize=16)
def _responder_id(certificate: x509.Certificate) -> tuple[bytes, bytes]:
    """(KeyHash, DER) of a responder certificate, computed once: the CA builds a `Signer` for
    every response it pre-signs. RFC 6960 §4.2.1 KeyHash: SHA-1 of its subjectPublicKey bits."""
    key_hash = hashlib.sha1(subject_public_key_bits(certificate)).digest()  # noqa: S324
    return key_hash, certificate.public_bytes(Encoding.DER)


@functools.lru_cache(maxsize=16)
def _responder_fields(certificate: x509.Certificate) -> tuple[bytes, bytes]:
    """The encoded ResponderID byKey [2] and `certs` [0] fields of every response it signs."""
    key_hash, certificate_der = _responder_id(certificate)
    return (
        der.explicit(2, der.octet_string(key_hash)),
        der.explicit(0, der.sequence(certificate_der)),
    )


def build_response(
    responses: Sequence[SingleResponse],
    signer: Signer,
    *,
    produced_at: datetime.datetime,
    nonce: bytes | None = None,
) -> bytes:
    """A successful, signed OCSPResponse (RFC 6960 §4.2.1) holding `responses`.

    ResponderID is byKey; `nonce` (the request's extnValue octets) is echoed as the response's
    nonce extension (§4.4.1). Blocking: the signature may go to the HSM.
    """
    if not responses:
        raise ValueError("an OCSP response needs at least one SingleResponse")
    parts = [
        signer.responder_id,  # ResponderID byKey [2]
        der.generalized_time(produced_at),
        der.sequence(*(r.encode() for r in responses)),
    ]
    if nonce is not None:
        extension = der.sequence(der.encode_oid(OID_NONCE), der.octet_string(nonce))
        parts.append(der.explicit(1, der.sequence(extension)))
    tbs = der.sequence(*parts)
    algorithm, signature = der.identified_signature(signer.key, tbs)
    basic = der.sequence(tbs, algorithm, der.bit_string(signature), signer.certs)
    response_bytes = der.sequence(der.encode_oid(OID_BASIC), der.octet_string(basic))
    return der.sequence(der.enumerated(ResponseStatus.SUCCESSFUL), der.explicit(0, response_bytes))


def error_response(status: ResponseStatus) -> bytes:
    """An unsigned OCSPResponse with only an error status (RFC 6960 §4.2.1: no responseBytes)."""
    if status is ResponseStatus.SUCCESSFUL:
        raise ValueError("a successful response carries responseBytes; use build_response")
    return der.sequence(der.enumerated(status))
