"""A minimal, strict DER reader and writer (ITU-T X.690 §8, §10) for OCSP, CRLs and leaves.

Called by `padlock.pki.ocsp` (parse requests, encode responses), `padlock.pki.crl` (encode
CRLs with a million entries in seconds: `cryptography`'s immutable CRL builder copies its
entry list on every `add_revoked_certificate`, which is quadratic) and
`padlock.pki.profiles` (the CA's leaf certificates from precomputed parts: a third of the
builder's cost was `cryptography`'s Python-side builder objects). Only what those modules
need: single-byte tags, definite lengths, no indefinite form (DER forbids it).

Reading raises `DerError` (a ValueError) with the offset of the first bad byte; callers turn it
into an OCSP `malformedRequest`.
"""

from __future__ import annotations

import datetime
import functools
from collections.abc import Iterator

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

# Universal and context tags used by OCSP (RFC 6960 §4) and CRLs (RFC 5280 §5.1).
BOOLEAN = 0x01
INTEGER = 0x02
BIT_STRING = 0x03
OCTET_STRING = 0x04
NULL = 0x05
OID = 0x06
ENUMERATED = 0x0A
UTC_TIME = 0x17
GENERALIZED_TIME = 0x18
SEQUENCE = 0x30


def context(number: int, *, constructed: bool = True) -> int:
    """The tag of `[number]` (context-specific class), e.g. context(0) == 0xA0."""
    if not 0 <= number <= 30:
        raise ValueError(f"context tag number {number} needs the high-tag-number form")
    return 0x80 | (0x20 if constructed else 0) | number


class DerError(ValueError):
    """The bytes are not the DER structure expected; the message gives the offset."""


# -- reading ---------------------------------------------------------------------------------


class Element:
    """One TLV inside a buffer: `tag`, and the value at `data[start:end]`."""

    __slots__ = ("data", "end", "offset", "start", "tag")

    def __init__(self, data: bytes, tag: int, offset: int, start: int, end: int) -> None:
        self.data = data
        self.tag = tag
        self.offset = offset
        self.start = start
        self.end = end

    @property
    def value(self) -> bytes:
        return self.data[self.start : self.end]

    @property
    def encoded(self) -> bytes:
        """The whole TLV (tag, length and value) as it appeared."""
        return self.data[self.offset : self.end]

    def children(self) -> Iterator[Element]:
        """The TLVs inside a constructed element, in order."""
        if not self.tag & 0x20:
            raise DerError(f"element at offset {self.offset} is primitive, not constructed")
        pos = self.start
        while pos < self.end:
            child = read(self.data, pos, self.end)
            yield child
            pos = child.end

    def expect(self, tag: int, what: str) -> Element:
        if self.tag != tag:
            raise DerError(
                f"{what} at offset {self.offset} has tag 0x{self.tag:02x}, expected 0x{tag:02x}"
            )
        return self

    def integer(self, what: str = "INTEGER") -> int:
        self.expect(INTEGER, what)
        value = self.value
        if not value:
            raise DerError(f"{what} at offset {self.offset} is empty")
        # X.690 §8.3.2: the first nine bits are never all zero or all one.
        if len(value) > 1 and (
            (value[0] == 0 and value[1] < 0x80) or (value[0] == 0xFF and value[1] >= 0x80)
        ):
            raise DerError(f"{what} at offset {self.offset} is not minimally encoded")
        return int.from_bytes(value, "big", signed=True)

    def oid(self, what: str = "OBJECT IDENTIFIER") -> str:
        self.expect(OID, what)
        return decode_oid(self.value, self.offset)


def read(data: bytes, pos: int = 0, limit: int | None = None) -> Element:
    """The TLV at `pos`; it must end at or before `limit` (default: end of data)."""
    end_limit = len(data) if limit is None else limit
    if pos + 2 > end_limit:
        raise DerError(f"truncated DER at offset {pos}: no room for a tag and a length")
    tag = data[pos]
    if tag & 0x1F == 0x1F:
        raise DerError(f"tag at offset {pos} uses the high-tag-number form, not used here")
    first = data[pos + 1]
    header = pos + 2
    if first < 0x80:
        length = first
    elif first == 0x80:
        raise DerError(f"indefinite length at offset {pos} (forbidden in DER, X.690 §10.1)")
    else:
        count = first & 0x7F
        if count > 4 or header + count > end_limit:
            raise DerError(f"bad length of {count} octets at offset {pos}")
        length = int.from_bytes(data[header : header + count], "big")
        if length < 0x80 or data[header] == 0:
            raise DerError(f"length at offset {pos} is not minimally encoded (X.690 §10.1)")
        header += count
    end = header + length
    if end > end_limit:
        raise DerError(
            f"truncated DER at offset {pos}: the element needs {length} bytes, "
            f"{end_limit - header} remain"
        )
    return Element(data, tag, pos, header, end)


def read_whole(data: bytes, tag: int, what: str) -> Element:
    """The single element `data` must consist of, with nothing after it."""
    element = read(data).expect(tag, what)
    if element.end != len(data):
        raise DerError(f"{len(data) - element.end} bytes of trailing data after the {what}")
    return element


def decode_oid(value: bytes, offset: int = 0) -> str:
    if not value or value[-1] & 0x80:
        raise DerError(f"OBJECT IDENTIFIER at offset {offset} is empty or truncated")
    arcs: list[int] = []
    current = 0
    for i, byte in enumerate(value):
        if current == 0 and byte == 0x80:
            raise DerError(f"OBJECT IDENTIFIER at offset {offset} has a padded arc")
        current = (current << 7) | (byte & 0x7F)
        if not byte & 0x80:
            if not arcs:
                first = min(current // 40, 2)
                arcs.extend((first, current - 40 * first))
            else:
                arcs.append(current)
            current = 0
        elif i == len(value) - 1:
            raise DerError(f"OBJECT IDENTIFIER at offset {offset} is truncated")
    return ".".join(map(str, arcs))


# -- writing ---------------------------------------------------------------------------------


def _length(n: int) -> bytes:
    if n < 0x80:
        return bytes((n,))
    octets = n.to_bytes((n.bit_length() + 7) // 8, "big")
    return bytes((0x80 | len(octets),)) + octets


def tlv(tag: int, value: bytes) -> bytes:
    n = len(value)
    if n < 0x80:  # short form (X.690 §8.1.3.4): most elements of a leaf or an OCSP response
        return bytes((tag, n)) + value
    return bytes((tag,)) + _length(n) + value


def sequence(*parts: bytes) -> bytes:
    return tlv(SEQUENCE, b"".join(parts))


def explicit(number: int, value: bytes) -> bytes:
    """`[number] EXPLICIT`: the encoded `value` wrapped in a constructed context tag."""
    return tlv(context(number), value)


def integer(value: int) -> bytes:
    length = value.bit_length() // 8 + 1  # room for the sign bit (X.690 §8.3)
    return tlv(INTEGER, value.to_bytes(length, "big", signed=True))


def enumerated(value: int) -> bytes:
    return tlv(ENUMERATED, value.to_bytes(value.bit_length() // 8 + 1, "big", signed=True))


def octet_string(value: bytes) -> bytes:
    return tlv(OCTET_STRING, value)


def bit_string(value: bytes) -> bytes:
    """A BIT STRING of whole octets (no unused bits), as signatures and keys are."""
    return tlv(BIT_STRING, b"\x00" + value)


def boolean(value: bool) -> bytes:
    return tlv(BOOLEAN, b"\xff" if value else b"\x00")


@functools.lru_cache(maxsize=256)
def encode_oid(dotted: str) -> bytes:
    arcs = [int(a) for a in dotted.split(".")]
    if len(arcs) < 2 or arcs[0] > 2 or (arcs[0] < 2 and arcs[1] >= 40):
        raise ValueError(f"{dotted!r} is not a valid OBJECT IDENTIFIER")
    out = bytearray()
    for arc in [40 * arcs[0] + arcs[1], *arcs[2:]]:
        chunk = [arc & 0x7F]
        arc >>= 7
        while arc:
            chunk.append(0x80 | (arc & 0x7F))
            arc >>= 7
        out.extend(reversed(chunk))
    return tlv(OID, bytes(out))


def generalized_time(when: datetime.datetime) -> bytes:
    """RFC 5280 §4.1.2.5.2: YYYYMMDDHHMMSSZ, UTC, no fractional seconds."""
    return tlv(GENERALIZED_TIME, _utc(when).strftime("%Y%m%d%H%M%SZ").encode("ascii"))


def utc_time(when: datetime.datetime) -> bytes:
    """RFC 5280 §4.1.2.5.1: YYMMDDHHMMSSZ, for years 1950 to 2049."""
    return tlv(UTC_TIME, _utc(when).strftime("%y%m%d%H%M%SZ").encode("ascii"))


def time(when: datetime.datetime) -> bytes:
    """RFC 5280 §5.1.2.4 (and §4.1.2.5): UTCTime through 2049, GeneralizedTime from 2050."""
    return utc_time(when) if _utc(when).year < 2050 else generalized_time(when)


def _utc(when: datetime.datetime) -> datetime.datetime:
    if when.tzinfo is None:
        raise ValueError(f"naive datetime {when.isoformat()} given; use a UTC-aware one")
    return when.astimezone(datetime.UTC)


# -- signatures ------------------------------------------------------------------------------

# AlgorithmIdentifiers: RFC 5758 §3.2 (ECDSA, parameters absent), RFC 4055 §5 (RSA PKCS#1
# v1.5, parameters NULL), RFC 8410 §3 (Ed25519, parameters absent).
_ECDSA = {"sha256": "1.2.840.10045.4.3.2", "sha384": "1.2.840.10045.4.3.3"}
_RSA = {"sha256": "1.2.840.113549.1.1.11", "sha384": "1.2.840.113549.1.1.12"}
_ED25519 = "1.3.101.112"

_Digest = hashes.SHA256 | hashes.SHA384


def _scheme(key: CertificateIssuerPrivateKeyTypes) -> tuple[str, _Digest | None]:
    """("ec" | "rsa" | "ed25519", hash) for an issuer key, reading `key.curve` once (an HSM
    key computes it on every access). RFC 5480 §4: the hash strength matches the curve."""
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return "ed25519", None  # RFC 8410 §6: the hash is intrinsic to EdDSA
    if isinstance(key, rsa.RSAPrivateKey):
        return "rsa", hashes.SHA256()
    if isinstance(key, ec.EllipticCurvePrivateKey):
        curve = key.curve.name
        if curve == "secp384r1":
            return "ec", hashes.SHA384()
        if curve == "secp256r1":
            return "ec", hashes.SHA256()
        raise ValueError(f"issuer curve {curve} is not supported (use P-256 or P-384)")
    raise ValueError(f"issuer key type {type(key).__name__} is not supported")


def signature_hash(key: CertificateIssuerPrivateKeyTypes) -> _Digest | None:
    """The signature hash for an issuer key: SHA-256 for RSA and P-256, SHA-384 for P-384,
    None for Ed25519 (RFC 8410 §6: the hash is intrinsic to EdDSA). `profiles.signature_hash`
    is this function (defined here so that profiles may use this module)."""
    return _scheme(key)[1]


@functools.lru_cache(maxsize=16)
def _algorithm_identifier(kind: str, digest: str | None) -> bytes:
    if kind == "ed25519":
        return sequence(encode_oid(_ED25519))
    assert digest is not None
    if kind == "ec":
        return sequence(encode_oid(_ECDSA[digest]))
    return sequence(encode_oid(_RSA[digest]), tlv(NULL, b""))


def signature_algorithm(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """The DER AlgorithmIdentifier `sign()` uses for `key` (hash as `signature_hash`)."""
    kind, digest = _scheme(key)
    return _algorithm_identifier(kind, None if digest is None else digest.name)


def sign(key: CertificateIssuerPrivateKeyTypes, tbs: bytes) -> bytes:
    """The signature value over `tbs` with the algorithm of `signature_algorithm(key)`.

    `key` may be an HSM key (`padlock.keys.pkcs11`): its `sign()` calls the token.
    """
    return identified_signature(key, tbs)[1]


def identified_signature(key: CertificateIssuerPrivateKeyTypes, tbs: bytes) -> tuple[bytes, bytes]:
    """(`signature_algorithm(key)`, `sign(key, tbs)`), looking the key's scheme up once."""
    kind, digest = _scheme(key)
    algorithm = _algorithm_identifier(kind, None if digest is None else digest.name)
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return algorithm, key.sign(tbs)
    assert digest is not None
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return algorithm, key.sign(tbs, ec.ECDSA(digest))
    if isinstance(key, rsa.RSAPrivateKey):
        return algorithm, key.sign(tbs, padding.PKCS1v15(), digest)
    raise ValueError(f"key type {type(key).__name__} cannot sign OCSP responses or CRLs")


def signed(tbs: bytes, key: CertificateIssuerPrivateKeyTypes) -> bytes:
    """SEQUENCE { tbs, signatureAlgorithm, signatureValue BIT STRING } (RFC 5280 §5.1.1,
    RFC 6960 §4.2.1 BasicOCSPResponse without the certs)."""
    algorithm, signature = identified_signature(key, tbs)
    return sequence(tbs, algorithm, bit_string(signature))
