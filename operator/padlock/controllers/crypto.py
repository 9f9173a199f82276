"""Private keys, CSRs and the checks that decide whether a Secret still serves its Certificate.

Called by `padlock.controllers.issuing` (generate a key in a thread pool, build the CSR, sign
locally for `selfSigned` issuers) and `padlock.controllers.secretwatch` (does a Secret's key
match its certificate?). Pure functions over `cryptography` objects: no I/O, no clock except
the `now` passed in. Private keys are only ever PEM-encoded into the Secret; nothing here logs
or formats them.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import ipaddress
import json
from collections.abc import Mapping
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from padlock.api import certificate as api
from padlock.pki import profiles, serials

_CURVES: dict[int, ec.EllipticCurve] = {256: ec.SECP256R1(), 384: ec.SECP384R1()}

# Spec keys that change only the Secret's metadata or the renewal schedule, not the
# certificate: changing them must not re-issue.
_NOT_SHAPING = frozenset(
    {"secretTemplate", "renewBefore", "renewBeforePercentage", "revisionHistoryLimit"}
)


def generate_key(private_key: api.PrivateKey) -> CertificateIssuerPrivateKeyTypes:
    """A fresh key as the spec asks (CPU-bound for RSA: run it in a thread pool)."""
    algorithm = private_key.effective_algorithm
    size = private_key.effective_size
    if algorithm is api.KeyAlgorithm.RSA:
        # RFC 8017 §3.1 / NIST SP 800-56B: public exponent 65537.
        return rsa.generate_private_key(public_exponent=65537, key_size=size or 2048)
    if algorithm is api.KeyAlgorithm.ECDSA:
        return ec.generate_private_key(_CURVES[size or 256])
    return ed25519.Ed25519PrivateKey.generate()


def encode_key(key: CertificateIssuerPrivateKeyTypes, encoding: api.KeyEncoding) -> bytes:
    """PEM for `tls.key`: PKCS#1 / SEC 1 (RFC 8017 / RFC 5915) or PKCS#8 (RFC 5208).
    Ed25519 has no traditional form, so it is always PKCS#8 (RFC 8410 §7)."""
    pkcs8 = encoding is api.KeyEncoding.PKCS8 or isinstance(key, ed25519.Ed25519PrivateKey)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8
        if pkcs8
        else serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )


def load_key(pem: bytes) -> CertificateIssuerPrivateKeyTypes:
    """Load `tls.key`; ValueError (without echoing the key) if it is not a usable key."""
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError):
        raise ValueError("tls.key is not an unencrypted PEM private key") from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise ValueError(f"tls.key holds an unsupported key type {type(key).__name__}")
    return key


def key_fits_spec(key: CertificateIssuerPrivateKeyTypes, private_key: api.PrivateKey) -> bool:
    """Whether an existing key has the algorithm and size the spec asks for
    (rotationPolicy Never reuses a key only if it still fits)."""
    algorithm = private_key.effective_algorithm
    if algorithm is api.KeyAlgorithm.RSA:
        return isinstance(key, rsa.RSAPrivateKey) and key.key_size == private_key.effective_size
    if algorithm is api.KeyAlgorithm.ECDSA:
        return (
            isinstance(key, ec.EllipticCurvePrivateKey)
            and key.curve.key_size == private_key.effective_size
        )
    return isinstance(key, ed25519.Ed25519PrivateKey)


def subject_of(spec: api.CertificateSpec) -> x509.Name:
    """Subject DN from commonName and `subject` (RFC 5280 §4.1.2.6)."""
    attrs: list[x509.NameAttribute[str]] = []
    subject = spec.subject
    if subject is not None:
        for oid, values in (
            (NameOID.COUNTRY_NAME, subject.countries),
            (NameOID.STATE_OR_PROVINCE_NAME, subject.provinces),
            (NameOID.LOCALITY_NAME, subject.localities),
            (NameOID.STREET_ADDRESS, subject.street_addresses),
            (NameOID.POSTAL_CODE, subject.postal_codes),
            (NameOID.ORGANIZATION_NAME, subject.organizations),
            (NameOID.ORGANIZATIONAL_UNIT_NAME, subject.organizational_units),
        ):
            attrs.extend(x509.NameAttribute(oid, value) for value in values)
        if subject.serial_number:
            attrs.append(x509.NameAttribute(NameOID.SERIAL_NUMBER, subject.serial_number))
    if spec.common_name:
        attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, spec.common_name))
    return x509.Name(attrs)


def sans_of(spec: api.CertificateSpec) -> list[x509.GeneralName]:
    """subjectAltName entries (RFC 5280 §4.2.1.6) in spec order."""
    names: list[x509.GeneralName] = [x509.DNSName(name) for name in spec.dns_names]
    names += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in spec.ip_addresses]
    names += [x509.UniformResourceIdentifier(uri) for uri in spec.uris]
    names += [x509.RFC822Name(email) for email in spec.email_addresses]
    return names


def build_csr(key: CertificateIssuerPrivateKeyTypes, spec: api.CertificateSpec) -> bytes:
    """A PKCS#10 CSR (RFC 2986) with the names in the subjectAltName extension, requested
    through the extensionRequest attribute (RFC 2985 §5.4.2)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject_of(spec))
    sans = sans_of(spec)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    csr = builder.sign(key, profiles.signature_hash(key))
    return csr.public_bytes(serialization.Encoding.PEM)


def _self_signed_profile(spec: api.CertificateSpec) -> profiles.Profile:
    if spec.is_ca:
        return profiles.ROOT_CA
    return dataclasses.replace(
        profiles.TLS_SERVER,
        name="self-signed",
        self_signed=True,
        allows_ocsp_url=False,
        allows_distribution_urls=False,
        max_lifetime=datetime.timedelta(days=3650),
        requires_san=not spec.common_name,
    )


def self_sign(
    key: CertificateIssuerPrivateKeyTypes, spec: api.CertificateSpec, now: datetime.datetime
) -> bytes:
    """A certificate signed by its own key, for `selfSigned` issuers (no CA involved)."""
    profile = _self_signed_profile(spec)
    cert = profiles.build_certificate(
        profile,
        subject=subject_of(spec),
        public_key=key.public_key(),
        sans=sans_of(spec),
        issuer=None,
        issuer_key=key,
        serial=serials.new_serial(),
        not_before=now,
        not_after=now + spec.effective_duration,
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def _spki(key: Any) -> bytes:
    der: bytes = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return der


def load_leaf(tls_crt: bytes) -> x509.Certificate:
    """The first certificate of `tls.crt` (the leaf); ValueError if there is none."""
    certs = x509.load_pem_x509_certificates(tls_crt)
    if not certs:
        raise ValueError("tls.crt holds no certificate")
    return certs[0]


def key_matches_cert(key: CertificateIssuerPrivateKeyTypes, cert: x509.Certificate) -> bool:
    """Whether the certificate certifies this key (same SubjectPublicKeyInfo)."""
    return _spki(key.public_key()) == _spki(cert.public_key())


def _cert_names(cert: x509.Certificate) -> tuple[set[str], set[str], set[str], set[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return set(), set(), set(), set()
    return (
        {n.lower() for n in san.get_values_for_type(x509.DNSName)},
        {str(ip) for ip in san.get_values_for_type(x509.IPAddress)},
        set(san.get_values_for_type(x509.UniformResourceIdentifier)),
        {n.lower() for n in san.get_values_for_type(x509.RFC822Name)},
    )


def mismatch(cert: x509.Certificate, spec: api.CertificateSpec) -> str | None:
    """Why the certificate no longer matches the spec (names or key type), or None."""
    dns, ips, uris, emails = _cert_names(cert)
    want_dns = {n.lower() for n in spec.dns_names}
    want_ips = {str(ipaddress.ip_address(ip)) for ip in spec.ip_addresses}
    if dns != want_dns:
        return f"DNS names in the certificate {sorted(dns)} differ from the spec {sorted(want_dns)}"
    if ips != want_ips:
        return (
            f"IP addresses in the certificate {sorted(ips)} differ from the spec {sorted(want_ips)}"
        )
    if uris != set(spec.uris):
        return f"URIs in the certificate {sorted(uris)} differ from the spec {sorted(spec.uris)}"
    if emails != {e.lower() for e in spec.email_addresses}:
        return "e-mail addresses in the certificate differ from the spec"
    cns = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    have_cn = str(cns[0].value) if cns else None
    if spec.common_name and have_cn != spec.common_name:
        return f"commonName {have_cn!r} differs from the spec {spec.common_name!r}"
    return None


def spec_hash(spec: Mapping[str, Any]) -> str:
    """A stable hash of the spec fields that shape the certificate (names, key, issuer,
    duration, usages): a change re-issues; secretTemplate or renewBefore changes do not."""
    shaping = {k: v for k, v in spec.items() if k not in _NOT_SHAPING}
    canonical = json.dumps(shaping, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:32]


def content_hash(tls_crt: bytes) -> str:
    """Hash of a Secret's `tls.crt`, as written to pod templates (`padlock.dev/cert-hash`)."""
    return hashlib.sha256(tls_crt).hexdigest()[:32]


def check_chain(chain_pem: str, now: datetime.datetime) -> None:
    """ValueError unless every certificate is valid at `now` and signed by the next one
    (RFC 5280 §6.1, signature and validity steps only; the root signs itself)."""
    certs = x509.load_pem_x509_certificates(chain_pem.encode("ascii"))
    if not certs:
        raise ValueError("the CA sent an empty chain")
    for index, cert in enumerate(certs):
        if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
            raise ValueError(
                f"CA certificate {cert.subject.rfc4514_string()} is not valid now "
                f"(notBefore {cert.not_valid_before_utc:%Y-%m-%d}, "
                f"notAfter {cert.not_valid_after_utc:%Y-%m-%d})"
            )
        issuer = certs[index + 1] if index + 1 < len(certs) else cert
        if issuer is cert and cert.issuer != cert.subject:
            continue  # the chain stops below the root; the root is checked separately
        try:
            cert.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, Exception) as exc:  # InvalidSignature has no base
            raise ValueError(
                f"CA certificate {cert.subject.rfc4514_string()} is not signed by "
                f"{issuer.subject.rfc4514_string()}: {exc or type(exc).__name__}"
            ) from None
