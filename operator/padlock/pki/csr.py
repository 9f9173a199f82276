"""PKCS#10 CSR checks: it parses, its self-signature verifies, its key and hash are strong.

Called by `padlock.pki.policy.check_request` (the CA's `POST /v1/sign` and ACME finalize) and
by tests. The CSR proves possession of the private key (RFC 2986 §3) and carries the requested
subjectAltNames in its extensionRequest attribute; its subject DN is not trusted: the CA builds
the subject from the request (`padlock.pki.policy`).
"""

from __future__ import annotations

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed448, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID, SignatureAlgorithmOID

from padlock.pki import names
from padlock.pki.algorithms import KeyAlgorithm
from padlock.pki.errors import Code, PolicyError

MIN_RSA_BITS = 2048
"""NIST SP 800-131A Rev. 2 / CABF BR §6.1.5: RSA moduli below 2048 bits are refused."""

_WEAK_SIGNATURE_OIDS = {
    SignatureAlgorithmOID.RSA_WITH_MD5: "MD5",
    SignatureAlgorithmOID.RSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.ECDSA_WITH_SHA1: "SHA-1",
    SignatureAlgorithmOID.DSA_WITH_SHA1: "SHA-1",
    x509.ObjectIdentifier("1.3.14.3.2.29"): "SHA-1",  # legacy OIW sha1WithRSASignature
}
_ALLOWED_HASHES = (hashes.SHA256, hashes.SHA384, hashes.SHA512)


def load_csr(data: bytes) -> x509.CertificateSigningRequest:
    """Parse a CSR from PEM or DER; PolicyError(csr-malformed) otherwise."""
    try:
        if data.lstrip().startswith(b"-----BEGIN"):
            return x509.load_pem_x509_csr(data)
        return x509.load_der_x509_csr(data)
    except ValueError as exc:
        raise PolicyError(
            Code.CSR_MALFORMED, f"CSR is neither a PEM nor a DER PKCS#10 request ({exc})"
        ) from None


def _check_signature_algorithm(csr: x509.CertificateSigningRequest) -> None:
    weak = _WEAK_SIGNATURE_OIDS.get(csr.signature_algorithm_oid)
    if weak is not None:
        raise PolicyError(
            Code.WEAK_SIGNATURE,
            f"CSR is signed with {weak}; sign it with SHA-256 or stronger",
        )
    try:
        algorithm = csr.signature_hash_algorithm
    except UnsupportedAlgorithm:
        raise PolicyError(
            Code.WEAK_SIGNATURE,
            f"CSR signature algorithm {csr.signature_algorithm_oid.dotted_string} is not "
            "supported; sign it with SHA-256 or stronger",
        ) from None
    if algorithm is not None and not isinstance(algorithm, _ALLOWED_HASHES):
        raise PolicyError(
            Code.WEAK_SIGNATURE,
            f"CSR is signed with {algorithm.name.upper()}; sign it with SHA-256 or stronger",
        )


def public_key_algorithm(key: CertificatePublicKeyTypes) -> KeyAlgorithm:
    """The accepted algorithm of `key`; PolicyError(weak-key / key-not-allowed) otherwise."""
    if isinstance(key, rsa.RSAPublicKey) and key.key_size < MIN_RSA_BITS:
        raise PolicyError(
            Code.WEAK_KEY,
            f"RSA key size {key.key_size} is too small (minimum {MIN_RSA_BITS} bits)",
        )
    try:
        return KeyAlgorithm.of_public_key(key)
    except ValueError as exc:
        raise PolicyError(Code.KEY_NOT_ALLOWED, str(exc)) from None


def check_csr(csr: x509.CertificateSigningRequest) -> KeyAlgorithm:
    """Check the hash, the proof of possession and the key; return the key's algorithm."""
    return checked_key(csr)[1]


def checked_key(
    csr: x509.CertificateSigningRequest,
) -> tuple[CertificatePublicKeyTypes, KeyAlgorithm]:
    """`check_csr`, also returning the CSR's public key, loaded once for the signature check
    and the caller (loading a key is a third of the cost of verifying with it).

    Order matters for the error a user sees: a SHA-1 CSR is refused as SHA-1 even though its
    signature would verify.
    """
    _check_signature_algorithm(csr)
    try:
        public_key = csr.public_key()
    except (ValueError, UnsupportedAlgorithm) as exc:
        raise PolicyError(Code.KEY_NOT_ALLOWED, f"CSR public key cannot be used ({exc})") from None
    if not _signature_valid(csr, public_key):
        raise PolicyError(
            Code.CSR_SIGNATURE_INVALID,
            "CSR signature does not verify with the CSR's own public key "
            "(proof of possession failed, RFC 2986 §3)",
        )
    return public_key, public_key_algorithm(public_key)


def _signature_valid(
    csr: x509.CertificateSigningRequest, public_key: CertificatePublicKeyTypes
) -> bool:
    """RFC 2986 §3 proof of possession: the CSR's signature verifies with its own key (what
    `csr.is_signature_valid` checks, without loading the key a second time)."""
    try:
        params = csr.signature_algorithm_parameters
        signature, data = csr.signature, csr.tbs_certrequest_bytes
        if isinstance(public_key, ec.EllipticCurvePublicKey) and isinstance(params, ec.ECDSA):
            public_key.verify(signature, data, params)
        elif isinstance(public_key, rsa.RSAPublicKey) and isinstance(
            params, padding.PKCS1v15 | padding.PSS
        ):
            digest = csr.signature_hash_algorithm
            if digest is None:
                return False
            public_key.verify(signature, data, params, digest)
        elif isinstance(public_key, ed25519.Ed25519PublicKey | ed448.Ed448PublicKey):
            public_key.verify(signature, data)
        else:
            return csr.is_signature_valid
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def requested_names(csr: x509.CertificateSigningRequest) -> names.RequestedNames:
    """The subjectAltNames in the CSR's extensionRequest (RFC 2985 §5.4.2), as text."""
    try:
        san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return names.RequestedNames()
    except ValueError as exc:  # duplicate or undecodable extensions
        raise PolicyError(
            Code.CSR_MALFORMED, f"CSR extensionRequest cannot be decoded ({exc})"
        ) from None
    return names.from_general_names(list(san))


def common_name(csr: x509.CertificateSigningRequest) -> str | None:
    """The CSR subject's CN, for front ends (ACME, RFC 8555 §7.4) that take it from the CSR."""
    attributes = csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not attributes:
        return None
    value = attributes[0].value
    return value if isinstance(value, str) else value.decode()
