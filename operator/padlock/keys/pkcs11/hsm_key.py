"""`cryptography` private keys whose `sign()` runs inside a PKCS#11 token.

Called by `cryptography`'s CertificateBuilder, CertificateRevocationListBuilder and
OCSPResponseBuilder: their `.sign(private_key=...)` accepts any subclass of the abstract
private-key classes and calls back into its `sign()` (checked by the conformance suite). The CA
gets these objects from `padlock.keys.pkcs11.token.Pkcs11Signer.private_key()`.

Each `sign()` chooses the PKCS#11 mechanism and hands the work to the token; nothing here ever
holds or returns private key material. Mechanisms (PKCS#11 v3.0 "Current Mechanisms"):

- RSA PKCS#1 v1.5 (RFC 8017 §8.2): CKM_SHA256/384/512_RSA_PKCS, the token hashes.
- RSA-PSS (RFC 8017 §8.1): CKM_SHA256/384/512_RSA_PKCS_PSS with CK_RSA_PKCS_PSS_PARAMS.
- ECDSA: SoftHSM offers only raw CKM_ECDSA, so the message is hashed here and the digest signed;
  the token returns r‖s (§2.3.1), re-encoded as the DER ECDSA-Sig-Value of RFC 5480 §2.2 / X9.62.
- Ed25519 (RFC 8032 pure EdDSA): CKM_EDDSA over the whole message.
"""

from __future__ import annotations

from typing import Any, NoReturn, Protocol

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils
from pkcs11 import MGF, Mechanism

from padlock.keys import base
from padlock.pki.algorithms import KeyAlgorithm


class RawSigner(Protocol):
    """What a key needs from its token: identity, public key and one raw C_Sign."""

    @property
    def label(self) -> str: ...

    @property
    def algorithm(self) -> KeyAlgorithm: ...

    def public_key(self) -> base.VerifyingKey: ...

    def sign_raw(self, mechanism: Mechanism, param: Any, data: bytes) -> bytes: ...


_RSA_PKCS1: dict[str, Mechanism] = {
    "sha256": Mechanism.SHA256_RSA_PKCS,
    "sha384": Mechanism.SHA384_RSA_PKCS,
    "sha512": Mechanism.SHA512_RSA_PKCS,
}
_RSA_PSS: dict[str, Mechanism] = {
    "sha256": Mechanism.SHA256_RSA_PKCS_PSS,
    "sha384": Mechanism.SHA384_RSA_PKCS_PSS,
    "sha512": Mechanism.SHA512_RSA_PKCS_PSS,
}
_HASH_MECHANISM: dict[str, Mechanism] = {
    "sha256": Mechanism.SHA256,
    "sha384": Mechanism.SHA384,
    "sha512": Mechanism.SHA512,
}
_DIGEST_SIZE: dict[str, int] = {"sha256": 32, "sha384": 48, "sha512": 64}
_MGF1: dict[str, MGF] = {"sha256": MGF.SHA256, "sha384": MGF.SHA384, "sha512": MGF.SHA512}
# DER DigestInfo prefixes (RFC 8017 §9.2 note 1), for RSA PKCS#1 v1.5 over a precomputed hash.
_DIGEST_INFO_PREFIX: dict[str, bytes] = {
    "sha256": bytes.fromhex("3031300d060960864801650304020105000420"),
    "sha384": bytes.fromhex("3041300d060960864801650304020205000430"),
    "sha512": bytes.fromhex("3051300d060960864801650304020305000440"),
}


def _hash_name(label: str, algorithm: object) -> str:
    """The hash of a signature; only SHA-2 of 256 bits or more (CA/B Forum BR §7.1.3.2)."""
    if isinstance(algorithm, asym_utils.Prehashed):
        algorithm = algorithm._algorithm
    if not isinstance(algorithm, hashes.HashAlgorithm) or algorithm.name not in _RSA_PKCS1:
        name = getattr(algorithm, "name", type(algorithm).__name__)
        raise base.UnsupportedSigningError(
            f"key {label!r}: padlock signs with SHA-256, SHA-384 or SHA-512, not {name}"
        )
    return algorithm.name


def _digest(data: bytes, algorithm: object, hash_name: str) -> bytes:
    """The message digest: computed here, or given by the caller through `Prehashed`."""
    if isinstance(algorithm, asym_utils.Prehashed):
        if len(data) != algorithm.digest_size:
            raise ValueError(
                f"prehashed data is {len(data)} bytes; {hash_name} digests are "
                f"{algorithm.digest_size} bytes"
            )
        return bytes(data)
    digest = hashes.Hash(algorithm)  # type: ignore[arg-type]  # checked by _hash_name
    digest.update(data)
    return digest.finalize()


class _NoKeyMaterial:
    """Shared behaviour: the object is a handle, so copies are the same key; no export."""

    _signer: RawSigner

    def __init__(self, signer: RawSigner) -> None:
        self._signer = signer

    def __copy__(self) -> Any:
        return self

    def __deepcopy__(self, memo: dict[int, object]) -> Any:
        return self

    def __reduce__(self) -> NoReturn:
        self._refuse("pickled")

    def __repr__(self) -> str:
        return f"<{type(self).__name__} label={self._signer.label!r} in a PKCS#11 token>"

    def _refuse(self, what: str) -> NoReturn:
        raise base.KeyMaterialUnavailableError(
            f"key {self._signer.label!r} lives in a PKCS#11 token (CKA_SENSITIVE, "
            f"not extractable) and cannot be {what}"
        )

    def private_bytes(
        self,
        encoding: serialization.Encoding,
        format: serialization.PrivateFormat,
        encryption_algorithm: serialization.KeySerializationEncryption,
    ) -> bytes:
        self._refuse("exported")


class HsmRSAPrivateKey(_NoKeyMaterial, rsa.RSAPrivateKey):
    """An RSA key in the token; `sign()` does PKCS#1 v1.5 or PSS there."""

    @property
    def key_size(self) -> int:
        return self._signer.algorithm.rsa_bits

    def public_key(self) -> rsa.RSAPublicKey:
        key = self._signer.public_key()
        assert isinstance(key, rsa.RSAPublicKey)
        return key

    def private_numbers(self) -> rsa.RSAPrivateNumbers:
        self._refuse("read as numbers")

    def decrypt(self, ciphertext: bytes, padding: padding.AsymmetricPadding) -> bytes:
        raise base.UnsupportedSigningError(
            f"key {self._signer.label!r} is a signing key (CKA_DECRYPT is false)"
        )

    def sign(
        self,
        data: bytes,
        padding: padding.AsymmetricPadding,
        algorithm: asym_utils.Prehashed | hashes.HashAlgorithm | asym_utils.NoDigestInfo,
    ) -> bytes:
        label = self._signer.label
        name = _hash_name(label, algorithm)
        prehashed = isinstance(algorithm, asym_utils.Prehashed)
        if isinstance(padding, _PKCS1v15):
            if prehashed:
                digest_info = _DIGEST_INFO_PREFIX[name] + _digest(data, algorithm, name)
                return self._signer.sign_raw(Mechanism.RSA_PKCS, None, digest_info)
            return self._signer.sign_raw(_RSA_PKCS1[name], None, bytes(data))
        if isinstance(padding, _PSS):
            param = (_HASH_MECHANISM[name], self._mgf1(padding), self._salt_length(padding, name))
            if prehashed:
                digest = _digest(data, algorithm, name)
                return self._signer.sign_raw(Mechanism.RSA_PKCS_PSS, param, digest)
            return self._signer.sign_raw(_RSA_PSS[name], param, bytes(data))
        raise base.UnsupportedSigningError(
            f"key {label!r}: RSA signing needs padding PKCS1v15 or PSS, not {padding.name}"
        )

    def _mgf1(self, pss: padding.PSS) -> MGF:
        mgf_hash = getattr(pss.mgf, "_algorithm", None)
        if not isinstance(pss.mgf, padding.MGF1) or getattr(mgf_hash, "name", "") not in _MGF1:
            raise base.UnsupportedSigningError(
                f"key {self._signer.label!r}: PSS needs MGF1 with SHA-256, SHA-384 or SHA-512"
            )
        return _MGF1[mgf_hash.name]  # type: ignore[union-attr]

    def _salt_length(self, pss: padding.PSS, hash_name: str) -> int:
        """RFC 8017 §9.1.1: sLen; DIGEST_LENGTH is what RFC 4055 §3.1 recommends for X.509."""
        digest_size = _DIGEST_SIZE[hash_name]
        salt = getattr(pss, "_salt_length", None)
        if isinstance(salt, int):
            return salt
        if salt is padding.PSS.DIGEST_LENGTH:
            return digest_size
        if salt is padding.PSS.MAX_LENGTH:
            return (self.key_size + 7) // 8 - digest_size - 2
        raise base.UnsupportedSigningError(
            f"key {self._signer.label!r}: PSS salt length AUTO is only for verifying; "
            "sign with PSS.DIGEST_LENGTH, PSS.MAX_LENGTH or a number of bytes"
        )


class HsmECPrivateKey(_NoKeyMaterial, ec.EllipticCurvePrivateKey):
    """A P-256 / P-384 key in the token; `sign()` hashes here and signs the digest there."""

    @property
    def curve(self) -> ec.EllipticCurve:
        return self._signer.algorithm.curve

    @property
    def key_size(self) -> int:
        return self.curve.key_size

    def public_key(self) -> ec.EllipticCurvePublicKey:
        key = self._signer.public_key()
        assert isinstance(key, ec.EllipticCurvePublicKey)
        return key

    def private_numbers(self) -> ec.EllipticCurvePrivateNumbers:
        self._refuse("read as numbers")

    def exchange(self, algorithm: ec.ECDH, peer_public_key: ec.EllipticCurvePublicKey) -> bytes:
        raise base.UnsupportedSigningError(
            f"key {self._signer.label!r} is a signing key (CKA_DERIVE is false)"
        )

    def sign(self, data: Any, signature_algorithm: ec.EllipticCurveSignatureAlgorithm) -> bytes:
        label = self._signer.label
        if not isinstance(signature_algorithm, ec.ECDSA):
            raise base.UnsupportedSigningError(
                f"key {label!r}: EC keys sign with ECDSA, not {type(signature_algorithm).__name__}"
            )
        algorithm = signature_algorithm.algorithm
        name = _hash_name(label, algorithm)
        digest = _digest(bytes(data), algorithm, name)
        raw = self._signer.sign_raw(Mechanism.ECDSA, None, digest)
        # PKCS#11 v3.0 §2.3.1: the signature is r ‖ s, each as long as the group order.
        half = len(raw) // 2
        return asym_utils.encode_dss_signature(
            int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big")
        )


class HsmEd25519PrivateKey(_NoKeyMaterial, ed25519.Ed25519PrivateKey):
    """An Ed25519 key in the token; `sign()` is pure EdDSA (RFC 8032 §5.1.6) via CKM_EDDSA."""

    def public_key(self) -> ed25519.Ed25519PublicKey:
        key = self._signer.public_key()
        assert isinstance(key, ed25519.Ed25519PublicKey)
        return key

    def private_bytes_raw(self) -> bytes:
        self._refuse("exported")

    def sign(self, data: Any) -> bytes:
        return self._signer.sign_raw(Mechanism.EDDSA, None, bytes(data))


_PKCS1v15 = padding.PKCS1v15
_PSS = padding.PSS


def for_signer(signer: RawSigner) -> base.SigningKey:
    """The `cryptography` key object matching the signer's algorithm."""
    if signer.algorithm.is_rsa:
        return HsmRSAPrivateKey(signer)
    if signer.algorithm.is_ec:
        return HsmECPrivateKey(signer)
    return HsmEd25519PrivateKey(signer)
