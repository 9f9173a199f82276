"""Key algorithms padlock accepts, named once for the CRDs, the CA, the HSM and the tests.

Called by `padlock.pki.policy` (what a CSR may carry), `padlock.keys` (what a backend can
generate) and the operator (what `privateKey.algorithm/size` asks for).
"""

from __future__ import annotations

import enum

from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import PublicKeyTypes


class KeyAlgorithm(enum.Enum):
    """A key type and size. Values are the spellings used in config files and the CLI."""

    RSA_2048 = "rsa-2048"
    RSA_3072 = "rsa-3072"
    RSA_4096 = "rsa-4096"
    EC_P256 = "ec-p256"
    EC_P384 = "ec-p384"
    ED25519 = "ed25519"

    @property
    def is_rsa(self) -> bool:
        return self.value.startswith("rsa-")

    @property
    def is_ec(self) -> bool:
        return self.value.startswith("ec-")

    @property
    def rsa_bits(self) -> int:
        if not self.is_rsa:
            raise ValueError(f"{self.value} is not an RSA algorithm")
        return int(self.value.removeprefix("rsa-"))

    @property
    def curve(self) -> ec.EllipticCurve:
        curves: dict[KeyAlgorithm, ec.EllipticCurve] = {
            KeyAlgorithm.EC_P256: ec.SECP256R1(),
            KeyAlgorithm.EC_P384: ec.SECP384R1(),
        }
        if self not in curves:
            raise ValueError(f"{self.value} is not an elliptic-curve algorithm")
        return curves[self]

    @classmethod
    def of_public_key(cls, key: PublicKeyTypes) -> KeyAlgorithm:
        """The algorithm of an accepted public key; ValueError names what was refused."""
        if isinstance(key, rsa.RSAPublicKey):
            try:
                return cls(f"rsa-{key.key_size}")
            except ValueError:
                raise ValueError(
                    f"RSA key size {key.key_size} is not allowed (use 2048, 3072 or 4096 bits)"
                ) from None
        if isinstance(key, ec.EllipticCurvePublicKey):
            name = {"secp256r1": cls.EC_P256, "secp384r1": cls.EC_P384}.get(key.curve.name)
            if name is None:
                raise ValueError(
                    f"elliptic curve {key.curve.name} is not allowed (use P-256 or P-384)"
                )
            return name
        if isinstance(key, ed25519.Ed25519PublicKey):
            return cls.ED25519
        raise ValueError(f"key type {type(key).__name__} is not allowed")
