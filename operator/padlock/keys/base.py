"""The one interface every key backend offers: a named key that `cryptography` can sign with.

Called by the CA (issuing certificates, CRLs and OCSP responses through `cryptography`'s
builders), by the ceremony CLI (root and intermediate set-up) and by the conformance tests that
every backend must pass. Backends live beside this module: `software` (a key in memory, from an
encrypted PKCS#8 file) and `pkcs11` (a key that never leaves the HSM).

The builders take a `cryptography` private-key instance and call its `sign()`; the PKCS#11
backend hands them a subclass whose `sign()` calls the token, so one code path serves both.
"""

from __future__ import annotations

from typing import Protocol, TypeAlias, runtime_checkable

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from padlock.pki.algorithms import KeyAlgorithm

#: What `CertificateBuilder.sign()` and friends accept and what a `Signer` hands out.
SigningKey: TypeAlias = rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
#: The public half of a `SigningKey`.
VerifyingKey: TypeAlias = rsa.RSAPublicKey | ec.EllipticCurvePublicKey | ed25519.Ed25519PublicKey


@runtime_checkable
class Signer(Protocol):
    """A named signing key held by some backend."""

    @property
    def label(self) -> str:
        """The key's name in its backend (a PKCS#11 CKA_LABEL, or the name given at load)."""
        ...

    @property
    def algorithm(self) -> KeyAlgorithm:
        """Key type and size."""
        ...

    def private_key(self) -> SigningKey:
        """A `cryptography` private key to pass to the builders' `.sign(private_key=...)`."""
        ...

    def public_key(self) -> VerifyingKey:
        """The public key, e.g. for a certificate's SubjectPublicKeyInfo."""
        ...


class KeyBackendError(Exception):
    """Base of every error a key backend raises on purpose."""


class KeyNotFoundError(KeyBackendError):
    """No key with the asked-for label exists in the backend."""


class KeyExistsError(KeyBackendError):
    """A key with that label already exists; generating again would make two."""


class WrongPassphraseError(KeyBackendError):
    """The passphrase (or PIN) does not open the key store."""


class TokenUnavailableError(KeyBackendError):
    """The HSM session or library is gone (token removed, library error).

    The CA reports itself unhealthy and calls the token's `reconnect()`.
    """


class UnsupportedSigningError(KeyBackendError, ValueError):
    """The key cannot sign the way the caller asked (padding, hash, or wrong-key use)."""


class KeyMaterialUnavailableError(KeyBackendError, TypeError):
    """Asked for private key material that the backend never releases (HSM keys)."""
