"""Certificate profiles and the one function that builds and signs a certificate.

Called by the CA pipeline (leaves, OCSP responder), the ceremony CLI (root, intermediate) and
tests. A profile says which extensions a certificate carries; `build_certificate` turns a
profile plus already-validated inputs into a signed `x509.Certificate`. Whether the inputs are
*allowed* is `padlock.pki.policy`'s question, not this module's: here we only refuse inputs that
would produce a malformed certificate.

The issuer key is any `cryptography` private key object (software, or the PKCS#11-backed
subclass in `padlock.keys.pkcs11`); it is only ever used through `CertificateBuilder.sign()`.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import hashlib
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from cryptography.x509.oid import AuthorityInformationAccessOID, ExtendedKeyUsageOID

from padlock.pki import der, serials

signature_hash = der.signature_hash
"""The signature hash for an issuer key (see `padlock.pki.der.signature_hash`)."""

_DAY = datetime.timedelta(days=1)


@dataclasses.dataclass(frozen=True)
class Profile:
    """What one kind of certificate looks like. Instances are constants; see `PROFILES`."""

    name: str
    is_ca: bool
    path_length: int | None
    """basicConstraints pathLenConstraint (RFC 5280 §4.2.1.9); None means unlimited/absent."""
    key_usages: frozenset[str]
    """keyUsage bits by `x509.KeyUsage` argument name (RFC 5280 §4.2.1.3)."""
    extended_key_usages: tuple[x509.ObjectIdentifier, ...]
    """Empty means no EKU extension (RFC 5280 §4.2.1.12)."""
    max_lifetime: datetime.timedelta
    rsa_key_encipherment: bool = False
    """Add keyEncipherment when the subject key is RSA (TLS 1.2 RSA key transport)."""
    ocsp_nocheck: bool = False
    """id-pkix-ocsp-nocheck (RFC 6960 §4.2.2.2.1), for delegated OCSP responders."""
    self_signed: bool = False
    allows_ocsp_url: bool = True
    """Whether AIA may carry an id-ad-ocsp URL (not for roots, not for ocsp-nocheck certs)."""
    allows_distribution_urls: bool = True
    """Whether AIA caIssuers and CRL distribution points may be set (not for roots)."""
    requires_san: bool = True
    exactly_one_uri_san: bool = False
    """SPIFFE X.509-SVID §2: an SVID carries exactly one URI SAN, the SPIFFE ID."""


ROOT_CA = Profile(
    name="root-ca",
    is_ca=True,
    path_length=None,
    # RFC 5280 §4.2.1.3 / CABF BR §7.1.2.1.2: keyCertSign and cRLSign, nothing else needed.
    key_usages=frozenset({"key_cert_sign", "crl_sign"}),
    # CABF BR §7.1.2.1.2: a root MUST NOT carry extKeyUsage.
    extended_key_usages=(),
    max_lifetime=25 * 365 * _DAY,
    self_signed=True,
    allows_ocsp_url=False,
    allows_distribution_urls=False,
    requires_san=False,
)

INTERMEDIATE_CA = Profile(
    name="intermediate-ca",
    is_ca=True,
    # pathLen 0: the in-cluster CA issues only end-entity certificates (RFC 5280 §4.2.1.9).
    path_length=0,
    key_usages=frozenset({"key_cert_sign", "crl_sign"}),
    # No EKU: the intermediate issues TLS, SVID and OCSP-responder leaves, and verifiers that
    # nest EKUs (Go, BoringSSL) would refuse an OCSPSigning leaf under a TLS-only CA.
    extended_key_usages=(),
    max_lifetime=10 * 365 * _DAY,
    requires_san=False,
)

TLS_SERVER = Profile(
    name="tls-server",
    is_ca=False,
    path_length=None,
    key_usages=frozenset({"digital_signature"}),
    extended_key_usages=(ExtendedKeyUsageOID.SERVER_AUTH,),
    # CABF BR §6.3.2 (398 days); private PKI may be shorter via the issuer policy.
    max_lifetime=397 * _DAY,
    # TLS 1.2 RSA key transport needs keyEncipherment (RFC 5246 §7.4.2); cert-manager sets it
    # too. pkilint's CABF linter warns (NOT RECOMMENDED), which is accepted for compatibility.
    rsa_key_encipherment=True,
)

TLS_CLIENT = Profile(
    name="tls-client",
    is_ca=False,
    path_length=None,
    key_usages=frozenset({"digital_signature"}),
    extended_key_usages=(ExtendedKeyUsageOID.CLIENT_AUTH,),
    max_lifetime=397 * _DAY,
)

SPIFFE_SVID = Profile(
    name="svid",
    is_ca=False,
    path_length=None,
    # SPIFFE X.509-SVID §4.3: leaf MUST set digitalSignature, MUST NOT set keyCertSign/cRLSign;
    # keyEncipherment MAY be set but "usually [isn't] needed even" for RSA, so it is not.
    key_usages=frozenset({"digital_signature"}),
    # SPIFFE X.509-SVID §4.4: EKU SHOULD be present; if so, serverAuth and clientAuth MUST be.
    extended_key_usages=(ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH),
    # SVIDs are short-lived; the agent rotates them at half-life.
    max_lifetime=1 * _DAY,
    exactly_one_uri_san=True,
)

OCSP_RESPONDER = Profile(
    name="ocsp-responder",
    is_ca=False,
    path_length=None,
    # RFC 6960 §4.2.2.2: the delegated responder signs responses, so digitalSignature.
    key_usages=frozenset({"digital_signature"}),
    extended_key_usages=(ExtendedKeyUsageOID.OCSP_SIGNING,),
    # RFC 6960 §4.2.2.2.1: with ocsp-nocheck the responder cert should be short-lived.
    max_lifetime=90 * _DAY,
    ocsp_nocheck=True,
    allows_ocsp_url=False,
    requires_san=False,
)

PROFILES: dict[str, Profile] = {
    p.name: p
    for p in (ROOT_CA, INTERMEDIATE_CA, TLS_SERVER, TLS_CLIENT, SPIFFE_SVID, OCSP_RESPONDER)
}
"""Every profile by name; the names are what Issuer `profile:` and the CLI accept."""


def get_profile(name: str) -> Profile:
    """The profile called `name`; ValueError lists the known names otherwise."""
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(
            f"unknown certificate profile {name!r} (known: {', '.join(sorted(PROFILES))})"
        ) from None


@dataclasses.dataclass(frozen=True)
class Endpoints:
    """Where relying parties find the issuer certificate and revocation status."""

    ocsp_urls: tuple[str, ...] = ()
    """AIA id-ad-ocsp (RFC 5280 §4.2.2.1)."""
    ca_issuers_urls: tuple[str, ...] = ()
    """AIA id-ad-caIssuers (RFC 5280 §4.2.2.1): the issuer certificate, DER over HTTP."""
    crl_urls: tuple[str, ...] = ()
    """cRLDistributionPoints fullName URIs (RFC 5280 §4.2.1.13): mirrors of the one CRL shard
    this certificate belongs to, so they go into a single DistributionPoint."""

    def __post_init__(self) -> None:
        for url in (*self.ocsp_urls, *self.ca_issuers_urls, *self.crl_urls):
            # RFC 5280 §4.2.2.1 / §4.2.1.13: plain HTTP URIs are what clients fetch; HTTPS
            # would need the very chain being validated.
            if not url.startswith("http://"):
                raise ValueError(f"AIA/CDP URL must be an http:// URI, got {url!r}")


def _key_usage(profile: Profile, public_key: CertificatePublicKeyTypes) -> x509.KeyUsage:
    return _key_usage_bits(profile, isinstance(public_key, rsa.RSAPublicKey))


def _key_usage_bits(profile: Profile, rsa_subject: bool) -> x509.KeyUsage:
    bits = set(profile.key_usages)
    if profile.rsa_key_encipherment and rsa_subject:
        bits.add("key_encipherment")
    return x509.KeyUsage(
        digital_signature="digital_signature" in bits,
        content_commitment=False,
        key_encipherment="key_encipherment" in bits,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign="key_cert_sign" in bits,
        crl_sign="crl_sign" in bits,
        encipher_only=False,
        decipher_only=False,
    )


def _public_der(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


@functools.lru_cache(maxsize=64)
def _issuer_spki(issuer: x509.Certificate) -> bytes:
    return _public_der(issuer.public_key())


def _authority_key_identifier(
    issuer: x509.Certificate | None, subject_ski: x509.SubjectKeyIdentifier
) -> x509.AuthorityKeyIdentifier:
    # RFC 5280 §4.2.1.1: keyIdentifier of the AKI is the issuer's SKI.
    if issuer is None:
        return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(subject_ski)
    return _issuer_aki(issuer)


def _issuer_aki(issuer: x509.Certificate) -> x509.AuthorityKeyIdentifier:
    try:
        issuer_ski = issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    except x509.ExtensionNotFound:
        issuer_ski = x509.SubjectKeyIdentifier.from_public_key(issuer.public_key())
    return x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(issuer_ski)


def _check_inputs(
    profile: Profile,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    sans: Sequence[x509.GeneralName],
    issuer: x509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    endpoints: Endpoints,
) -> None:
    if not_before.tzinfo is None or not_after.tzinfo is None:
        raise ValueError("not_before and not_after must be timezone-aware datetimes")
    if not_after <= not_before:
        raise ValueError(f"not_after {not_after.isoformat()} is not after not_before")
    if not_after - not_before > profile.max_lifetime:
        raise ValueError(
            f"lifetime {not_after - not_before} exceeds the {profile.name} profile maximum "
            f"{profile.max_lifetime}"
        )
    if profile.self_signed != (issuer is None):
        raise ValueError(
            f"profile {profile.name} is "
            + ("self-signed: pass issuer=None" if profile.self_signed else "issued: pass issuer")
        )
    if issuer is None and _public_der(public_key) != _public_der(issuer_key.public_key()):
        raise ValueError("self-signed certificate: public_key is not the issuer key's public key")
    if issuer is not None and _issuer_spki(issuer) != _public_der(issuer_key.public_key()):
        raise ValueError("issuer_key does not match the issuer certificate's public key")
    if profile.is_ca and len(subject) == 0:
        # RFC 5280 §4.1.2.6: a CA's subject MUST be a non-empty distinguished name.
        raise ValueError(f"profile {profile.name} needs a non-empty subject name")
    if profile.requires_san and not sans:
        raise ValueError(f"profile {profile.name} needs at least one subjectAltName")
    if not profile.requires_san and not sans and len(subject) == 0:
        raise ValueError("a certificate needs a subject name or a subjectAltName")
    if profile.exactly_one_uri_san:
        uris = [n for n in sans if isinstance(n, x509.UniformResourceIdentifier)]
        if len(uris) != 1:
            raise ValueError(f"profile {profile.name} needs exactly one URI SAN, got {len(uris)}")
    if endpoints.ocsp_urls and not profile.allows_ocsp_url:
        raise ValueError(f"profile {profile.name} must not carry an AIA OCSP URL")
    if (endpoints.ca_issuers_urls or endpoints.crl_urls) and not profile.allows_distribution_urls:
        raise ValueError(f"profile {profile.name} must not carry AIA caIssuers or CRL URLs")


def build_certificate(
    profile: Profile,
    *,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    sans: Sequence[x509.GeneralName],
    issuer: x509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    serial: int,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    endpoints: Endpoints = Endpoints(),
) -> x509.Certificate:
    """Build the TBS certificate for `profile` and sign it with `issuer_key`.

    `issuer` is None for a self-signed root (then `issuer_key` must pair with `public_key`).
    Inputs are assumed to have passed `padlock.pki.policy`; ValueError here means a
    programming error that would otherwise yield a malformed certificate.

    An issued certificate is DER-encoded here from parts computed once per issuer, profile
    and endpoints (`_issued_parts`: issuer name, basicConstraints, keyUsage, AKI, EKU,
    ocsp-nocheck, AIA, CDP) plus the per-certificate ones (serial, validity, subject, key,
    SKI, SAN), in exactly the order and encoding `build_with_cryptography` writes (tested
    byte for byte): the CA builds one per request and `cryptography`'s builder objects cost
    more than the encoding. A self-signed root goes through `build_with_cryptography`.
    """
    serials.check_serial(serial)
    _check_inputs(
        profile, subject, public_key, sans, issuer, issuer_key, not_before, not_after, endpoints
    )
    if issuer is None:
        return build_with_cryptography(
            profile,
            subject=subject,
            public_key=public_key,
            sans=sans,
            issuer=issuer,
            issuer_key=issuer_key,
            serial=serial,
            not_before=not_before,
            not_after=not_after,
            endpoints=endpoints,
        )
    parts = _issued_parts(issuer, profile, isinstance(public_key, rsa.RSAPublicKey), endpoints)
    spki = _public_der(public_key)
    tbs = der.sequence(
        _V3,
        der.integer(serial),
        der.signature_algorithm(issuer_key),
        parts.issuer_name,
        der.sequence(der.time(not_before), der.time(not_after)),
        subject.public_bytes(),
        spki,
        der.explicit(
            3,
            der.sequence(
                parts.before_ski,
                # RFC 5280 §4.2.1.2: SKI in every CA cert, SHOULD in end-entity certs.
                _subject_key_identifier(spki),
                parts.after_ski,
                # RFC 5280 §4.2.1.6: with an empty subject the SAN extension MUST be critical.
                _extension(x509.SubjectAlternativeName(list(sans)), len(subject) == 0)
                if sans
                else b"",
                parts.after_san,
            ),
        ),
    )
    signed = der.signed(tbs, issuer_key)
    return x509.load_der_x509_certificate(signed)


def build_with_cryptography(
    profile: Profile,
    *,
    subject: x509.Name,
    public_key: CertificatePublicKeyTypes,
    sans: Sequence[x509.GeneralName],
    issuer: x509.Certificate | None,
    issuer_key: CertificateIssuerPrivateKeyTypes,
    serial: int,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    endpoints: Endpoints = Endpoints(),
) -> x509.Certificate:
    """The same certificate as `build_certificate`, through `cryptography`'s
    `CertificateBuilder`: used for self-signed roots, and by the tests as the reference the
    precomputed encoding must match byte for byte. Inputs are not checked here."""
    ski = x509.SubjectKeyIdentifier.from_public_key(public_key)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject if issuer is None else issuer.subject)
        .public_key(public_key)
        .serial_number(serial)
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        # RFC 5280 §4.2.1.9: critical in CA certificates; we mark it critical everywhere.
        .add_extension(
            x509.BasicConstraints(ca=profile.is_ca, path_length=profile.path_length),
            critical=True,
        )
        # RFC 5280 §4.2.1.3: conforming CAs SHOULD mark keyUsage critical.
        .add_extension(_key_usage(profile, public_key), critical=True)
        # RFC 5280 §4.2.1.2: SKI in every CA cert, SHOULD in end-entity certs.
        .add_extension(ski, critical=False)
        # RFC 5280 §4.2.1.1: AKI MUST be present except in self-signed roots, where it MAY.
        .add_extension(_authority_key_identifier(issuer, ski), critical=False)
    )
    if profile.extended_key_usages:
        builder = builder.add_extension(
            x509.ExtendedKeyUsage(list(profile.extended_key_usages)), critical=False
        )
    if sans:
        # RFC 5280 §4.2.1.6: with an empty subject the SAN extension MUST be critical.
        builder = builder.add_extension(
            x509.SubjectAlternativeName(list(sans)), critical=len(subject) == 0
        )
    if profile.ocsp_nocheck:
        builder = builder.add_extension(x509.OCSPNoCheck(), critical=False)
    access = _access_descriptions(endpoints)
    if access:
        # RFC 5280 §4.2.2.1: MUST be non-critical.
        builder = builder.add_extension(x509.AuthorityInformationAccess(access), critical=False)
    if endpoints.crl_urls:
        # RFC 5280 §4.2.1.13: SHOULD be non-critical.
        builder = builder.add_extension(_distribution_points(endpoints), critical=False)
    return builder.sign(issuer_key, signature_hash(issuer_key))


def _access_descriptions(endpoints: Endpoints) -> list[x509.AccessDescription]:
    return [
        x509.AccessDescription(
            AuthorityInformationAccessOID.OCSP, x509.UniformResourceIdentifier(url)
        )
        for url in endpoints.ocsp_urls
    ] + [
        x509.AccessDescription(
            AuthorityInformationAccessOID.CA_ISSUERS, x509.UniformResourceIdentifier(url)
        )
        for url in endpoints.ca_issuers_urls
    ]


def _distribution_points(endpoints: Endpoints) -> x509.CRLDistributionPoints:
    # One DistributionPoint: the URLs are mirrors of the certificate's one CRL shard.
    return x509.CRLDistributionPoints(
        [
            x509.DistributionPoint(
                full_name=[x509.UniformResourceIdentifier(url) for url in endpoints.crl_urls],
                relative_name=None,
                reasons=None,
                crl_issuer=None,
            )
        ]
    )


# -- issued certificates from precomputed parts (RFC 5280 §4.1) -----------------------------

_V3 = der.explicit(0, der.integer(2))
"""version [0] EXPLICIT Version DEFAULT v1, here v3 (RFC 5280 §4.1.2.1)."""


def _extension(value: x509.ExtensionType, critical: bool) -> bytes:
    """Extension ::= SEQUENCE { extnID, critical BOOLEAN DEFAULT FALSE, extnValue } (RFC
    5280 §4.1); DER leaves out a FALSE critical (X.690 §11.5)."""
    return der.sequence(
        der.encode_oid(value.oid.dotted_string),
        der.boolean(True) if critical else b"",
        der.octet_string(value.public_bytes()),
    )


_SKI_OID = der.encode_oid(x509.OID_SUBJECT_KEY_IDENTIFIER.dotted_string)


def _subject_key_identifier(spki: bytes) -> bytes:
    """The SKI extension, RFC 5280 §4.2.1.2 method (1): SHA-1 of the subjectPublicKey BIT
    STRING's value (no tag, length or unused-bits octet), as
    `x509.SubjectKeyIdentifier.from_public_key` computes it, from the SPKI DER at hand."""
    _algorithm, bits = der.read_whole(spki, der.SEQUENCE, "SubjectPublicKeyInfo").children()
    key_id = hashlib.sha1(bits.expect(der.BIT_STRING, "subjectPublicKey").value[1:])  # noqa: S324
    return der.sequence(_SKI_OID, der.octet_string(der.octet_string(key_id.digest())))


@dataclasses.dataclass(frozen=True)
class _IssuedParts:
    """The DER pieces of an issued certificate that only depend on the issuer, the profile,
    the subject key's type and the AIA/CDP endpoints."""

    issuer_name: bytes
    before_ski: bytes
    """basicConstraints, keyUsage."""
    after_ski: bytes
    """authorityKeyIdentifier, extKeyUsage."""
    after_san: bytes
    """ocsp-nocheck, authorityInfoAccess, cRLDistributionPoints."""


@functools.lru_cache(maxsize=256)
def _issued_parts(
    issuer: x509.Certificate, profile: Profile, rsa_subject: bool, endpoints: Endpoints
) -> _IssuedParts:
    """Computed once per issuer, profile, key type and endpoints (a CA has 16 CRL shards,
    so a handful of entries; the cache holds certificates, never keys)."""
    key_usage = _key_usage_bits(profile, rsa_subject)
    aki = _issuer_aki(issuer)  # RFC 5280 §4.2.1.1: keyIdentifier = the issuer's SKI
    after_san = b""
    if profile.ocsp_nocheck:
        after_san += _extension(x509.OCSPNoCheck(), False)
    access = _access_descriptions(endpoints)
    if access:
        # RFC 5280 §4.2.2.1: MUST be non-critical.
        after_san += _extension(x509.AuthorityInformationAccess(access), False)
    if endpoints.crl_urls:
        # RFC 5280 §4.2.1.13: SHOULD be non-critical.
        after_san += _extension(_distribution_points(endpoints), False)
    return _IssuedParts(
        issuer_name=issuer.subject.public_bytes(),
        # RFC 5280 §4.2.1.9 / §4.2.1.3: both critical, as build_with_cryptography marks them.
        before_ski=_extension(
            x509.BasicConstraints(ca=profile.is_ca, path_length=profile.path_length), True
        )
        + _extension(key_usage, True),
        after_ski=_extension(aki, False)
        + (
            _extension(x509.ExtendedKeyUsage(list(profile.extended_key_usages)), False)
            if profile.extended_key_usages
            else b""
        ),
        after_san=after_san,
    )
