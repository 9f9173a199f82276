"""CSR factories for the policy tests (software keys; SHA-1 ones via the openssl CLI)."""

from __future__ import annotations

import pathlib
import subprocess

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

EC_KEY = ec.generate_private_key(ec.SECP256R1())


def make_csr(
    sans: list[x509.GeneralName] | None = None,
    *,
    key: CertificateIssuerPrivateKeyTypes = EC_KEY,
    common_name: str | None = None,
) -> x509.CertificateSigningRequest:
    subject = x509.Name(
        [x509.NameAttribute(x509.oid.NameOID.COMMON_NAME, common_name)] if common_name else []
    )
    builder = x509.CertificateSigningRequestBuilder().subject_name(subject)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(
        key, None if isinstance(key, ed25519.Ed25519PrivateKey) else hashes.SHA256()
    )


def openssl_sha1_csr(tmp_path: pathlib.Path) -> bytes:
    """A real SHA-1-signed CSR; cryptography refuses to make one, openssl does not."""
    key_file = tmp_path / "sha1.key"
    key_file.write_bytes(
        EC_KEY.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-sha1",
            "-key",
            str(key_file),
            "-subj",
            "/CN=old.padlock.test",
            "-addext",
            "subjectAltName=DNS:old.padlock.test",
        ],
        check=True,
        capture_output=True,
    ).stdout
