"""Software keys: a private key held in process memory, stored as encrypted PKCS#8 PEM.

Called by `padlock ca init-root` (the offline root key, a passphrase-protected file), by
self-signed issuers and by tests. The CA's online intermediate never uses this backend: its key
lives in the HSM (`padlock.keys.pkcs11`).

Files are PKCS#8 (RFC 5958) PEM, encrypted with `BestAvailableEncryption` (PBES2 with
AES-256-CBC in current `cryptography`). The passphrase is never logged or stored.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from padlock.keys import base
from padlock.pki.algorithms import KeyAlgorithm

_ENCRYPTED_PKCS8_HEADER = b"-----BEGIN ENCRYPTED PRIVATE KEY-----"


@dataclasses.dataclass(frozen=True, repr=False)
class SoftwareSigner:
    """A `base.Signer` over an in-memory `cryptography` private key."""

    label: str
    algorithm: KeyAlgorithm
    _key: base.SigningKey

    def private_key(self) -> base.SigningKey:
        return self._key

    def public_key(self) -> base.VerifyingKey:
        return self._key.public_key()

    def __repr__(self) -> str:  # never show key material
        return f"SoftwareSigner(label={self.label!r}, algorithm={self.algorithm.value})"

    def to_pem(self, passphrase: bytes) -> bytes:
        """The key as encrypted PKCS#8 PEM. An empty passphrase is refused."""
        if not passphrase:
            raise ValueError("refusing to write a private key without a passphrase")
        return self._key.private_bytes(
            encoding=serialization.Encoding.PEM,
            format=serialization.PrivateFormat.PKCS8,
            encryption_algorithm=serialization.BestAvailableEncryption(passphrase),
        )

    def save(self, path: Path, passphrase: bytes) -> None:
        """Write `to_pem()` to a new file readable by its owner only (mode 0600).

        Refuses to overwrite an existing file: losing a root key is not undoable.
        """
        pem = self.to_pem(passphrase)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)


def generate(label: str, algorithm: KeyAlgorithm) -> SoftwareSigner:
    """A fresh key of `algorithm` from the operating system's CSPRNG."""
    key: base.SigningKey
    if algorithm.is_rsa:
        # e = 65537 as recommended by RFC 8017 §3.1 practice and CA/B Forum BR §6.1.6.
        key = rsa.generate_private_key(public_exponent=65537, key_size=algorithm.rsa_bits)
    elif algorithm.is_ec:
        key = ec.generate_private_key(algorithm.curve)
    else:
        key = ed25519.Ed25519PrivateKey.generate()
    return SoftwareSigner(label, algorithm, key)


def from_pem(label: str, pem: bytes, passphrase: bytes) -> SoftwareSigner:
    """Load an encrypted PKCS#8 PEM key; `WrongPassphraseError` if it does not decrypt.

    Unencrypted files are refused, as are key types padlock does not sign with.
    """
    if not passphrase:
        raise ValueError(f"key {label!r}: a passphrase is required (unencrypted keys are refused)")
    if _ENCRYPTED_PKCS8_HEADER not in pem:
        what = "is not encrypted" if b"PRIVATE KEY-----" in pem else "is not a PEM private key"
        raise base.KeyBackendError(
            f"key {label!r} {what}; expected encrypted PKCS#8 PEM (RFC 5958 §3)"
        )
    try:
        key = serialization.load_pem_private_key(pem, password=passphrase)
    except ValueError:
        # RFC 5958 §3 EncryptedPrivateKeyInfo carries no integrity check apart from the padding
        # and the inner structure, so a wrong passphrase and a damaged file look the same.
        raise base.WrongPassphraseError(
            f"cannot decrypt key {label!r}: wrong passphrase (or a damaged file)"
        ) from None
    if not isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    ):
        raise base.KeyBackendError(f"key {label!r} has unsupported type {type(key).__name__}")
    try:
        algorithm = KeyAlgorithm.of_public_key(key.public_key())
    except ValueError as err:
        raise base.KeyBackendError(f"key {label!r}: {err}") from None
    return SoftwareSigner(label, algorithm, key)


def load(path: Path, passphrase: bytes, label: str | None = None) -> SoftwareSigner:
    """Read `from_pem()` from a file; the label defaults to the file name without suffix."""
    return from_pem(label or path.stem, path.read_bytes(), passphrase)
