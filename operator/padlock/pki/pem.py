"""Load certificates from PEM/DER bytes, fingerprint them, describe them as plain dicts.

Called by `padlock inspect` (the CLI prints `describe_certificate` as JSON or a table), the
operator (reading `tls.crt` back from a Secret), the CA HTTP front end and tests. Bytes in,
objects out: no files are opened here.
"""

from __future__ import annotations

import hashlib

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes

from padlock.pki.csr import load_csr

__all__ = [
    "certificates_to_pem",
    "describe_certificate",
    "fingerprint_sha256",
    "key_description",
    "load_certificate",
    "load_certificates",
    "load_csr",
]


def load_certificates(data: bytes) -> list[x509.Certificate]:
    """Every certificate in `data`: a PEM bundle (any number of blocks) or one DER certificate.

    ValueError if nothing parses, so an empty or mangled `tls.crt` is reported, not ignored.
    """
    if b"-----BEGIN" in data:
        try:
            certs = x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise ValueError(f"PEM data holds no readable certificate ({exc})") from None
        return certs
    try:
        return [x509.load_der_x509_certificate(data)]
    except ValueError as exc:
        raise ValueError(f"data is neither a PEM bundle nor a DER certificate ({exc})") from None


def load_certificate(data: bytes) -> x509.Certificate:
    """Exactly one certificate (PEM or DER); ValueError if there are none or several."""
    certs = load_certificates(data)
    if len(certs) != 1:
        raise ValueError(f"expected one certificate, found {len(certs)}")
    return certs[0]


def certificates_to_pem(certs: list[x509.Certificate]) -> bytes:
    """Concatenated PEM blocks, in the given order (leaf first for `tls.crt`)."""
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """SHA-256 over the DER certificate, colon-separated upper-case hex as `openssl x509
    -fingerprint -sha256` prints it."""
    digest = hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest().upper()
    return ":".join(digest[i : i + 2] for i in range(0, len(digest), 2))


def key_description(key: CertificatePublicKeyTypes) -> str:
    """e.g. "RSA 2048", "ECDSA P-256", "Ed25519"."""
    if isinstance(key, rsa.RSAPublicKey):
        return f"RSA {key.key_size}"
    if isinstance(key, ec.EllipticCurvePublicKey):
        curve = {"secp256r1": "P-256", "secp384r1": "P-384", "secp521r1": "P-521"}
        return f"ECDSA {curve.get(key.curve.name, key.curve.name)}"
    if isinstance(key, ed25519.Ed25519PublicKey):
        return "Ed25519"
    return type(key).__name__


def _serial_hex(serial: int) -> str:
    # Foreign certificates may break RFC 5280 §4.1.2.2 (zero, negative, > 20 octets): show
    # them as they are rather than refuse to describe them.
    text = f"{abs(serial):X}"
    text = text if len(text) % 2 == 0 else "0" + text
    return f"-{text}" if serial < 0 else text


def _sans(cert: x509.Certificate) -> dict[str, list[str]]:
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return {}
    result: dict[str, list[str]] = {}
    for key, kind in (
        ("dns", x509.DNSName),
        ("ip", x509.IPAddress),
        ("uri", x509.UniformResourceIdentifier),
        ("email", x509.RFC822Name),
    ):
        values = [str(v) for v in san.get_values_for_type(kind)]
        if values:
            result[key] = values
    return result


def _aia(cert: x509.Certificate) -> dict[str, list[str]]:
    try:
        aia = cert.extensions.get_extension_for_class(x509.AuthorityInformationAccess).value
    except x509.ExtensionNotFound:
        return {}
    result: dict[str, list[str]] = {}
    for desc in aia:
        key = {"1.3.6.1.5.5.7.48.1": "ocsp", "1.3.6.1.5.5.7.48.2": "caIssuers"}.get(
            desc.access_method.dotted_string, desc.access_method.dotted_string
        )
        result.setdefault(key, []).append(str(desc.access_location.value))
    return result


def _crl_urls(cert: x509.Certificate) -> list[str]:
    try:
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
    except x509.ExtensionNotFound:
        return []
    return [
        str(name.value)
        for point in cdp
        for name in (point.full_name or [])
        if isinstance(name, x509.UniformResourceIdentifier)
    ]


def _key_usage(cert: x509.Certificate) -> list[str]:
    try:
        ku = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return []
    names = [
        "digital_signature",
        "content_commitment",
        "key_encipherment",
        "data_encipherment",
        "key_agreement",
        "key_cert_sign",
        "crl_sign",
    ]
    return [n for n in names if getattr(ku, n)]


def _extended_key_usage(cert: x509.Certificate) -> list[str]:
    try:
        eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return []
    return [oid._name if oid._name != "Unknown OID" else oid.dotted_string for oid in eku]


def _basic_constraints(cert: x509.Certificate) -> dict[str, object]:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return {"ca": False, "pathLen": None}
    return {"ca": bc.ca, "pathLen": bc.path_length}


def describe_certificate(cert: x509.Certificate) -> dict[str, object]:
    """A JSON-ready summary for `padlock inspect`: who, by whom, when, for what, where to check.

    Keys: subject, issuer (RFC 4514 strings), serial (hex), notBefore/notAfter (ISO 8601 UTC),
    sans {dns, ip, uri, email}, keyAlgorithm, signatureAlgorithm, isCA, pathLen, keyUsage,
    extendedKeyUsage, sha256Fingerprint, aia {ocsp, caIssuers}, crlDistributionPoints.
    """
    bc = _basic_constraints(cert)
    return {
        "subject": cert.subject.rfc4514_string(),
        "issuer": cert.issuer.rfc4514_string(),
        "serial": _serial_hex(cert.serial_number),
        "notBefore": cert.not_valid_before_utc.isoformat(),
        "notAfter": cert.not_valid_after_utc.isoformat(),
        "sans": _sans(cert),
        "keyAlgorithm": key_description(cert.public_key()),
        "signatureAlgorithm": cert.signature_algorithm_oid._name,
        "isCA": bc["ca"],
        "pathLen": bc["pathLen"],
        "keyUsage": _key_usage(cert),
        "extendedKeyUsage": _extended_key_usage(cert),
        "sha256Fingerprint": fingerprint_sha256(cert),
        "aia": _aia(cert),
        "crlDistributionPoints": _crl_urls(cert),
    }
