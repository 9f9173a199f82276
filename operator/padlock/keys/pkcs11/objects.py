"""What padlock keys look like inside a PKCS#11 token: generation templates, public-key reading.

Called by `padlock.keys.pkcs11.token` (generate and load). Attribute names and encodings follow
PKCS#11 v3.0 "Current Mechanisms" §2.1 (RSA), §2.3 (EC: CKA_EC_PARAMS is DER ECParameters,
CKA_EC_POINT a DER OCTET STRING holding the point) and §2.3.5 (Edwards keys, RFC 8410 OIDs).
"""

from __future__ import annotations

from typing import Any, cast

import pkcs11
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from pkcs11 import Attribute, KeyType, Mechanism, MechanismFlag, ObjectClass

from padlock.keys import base
from padlock.pki.algorithms import KeyAlgorithm

# DER ECParameters namedCurve OIDs: RFC 5480 §2.1.1.1 (P-256, P-384), RFC 8410 §3 (Ed25519).
_EC_PARAMS: dict[KeyAlgorithm, bytes] = {
    KeyAlgorithm.EC_P256: bytes.fromhex("06082a8648ce3d030107"),
    KeyAlgorithm.EC_P384: bytes.fromhex("06052b81040022"),
    KeyAlgorithm.ED25519: bytes.fromhex("06032b6570"),
}
_ALGORITHM_OF_PARAMS = {der: alg for alg, der in _EC_PARAMS.items()}
# Some tokens name Edwards curves by PrintableString instead (PKCS#11 v3.0 §2.3.5).
_ALGORITHM_OF_PARAMS[bytes.fromhex("130c656477617264733235353139")] = KeyAlgorithm.ED25519

# The private key never leaves the token: sensitive, never extractable, a token object that
# needs a login (PKCS#11 v3.0 base §4.9 "Private key objects").
_PRIVATE_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: True,
    Attribute.SENSITIVE: True,
    Attribute.EXTRACTABLE: False,
    Attribute.SIGN: True,
    Attribute.DECRYPT: False,
    Attribute.UNWRAP: False,
    Attribute.DERIVE: False,
}
_PUBLIC_TEMPLATE: dict[Attribute, Any] = {
    Attribute.TOKEN: True,
    Attribute.PRIVATE: False,
    Attribute.VERIFY: True,
    Attribute.ENCRYPT: False,
    Attribute.WRAP: False,
}


def generate_keypair(
    session: pkcs11.Session, label: str, algorithm: KeyAlgorithm
) -> tuple[pkcs11.PublicKey, pkcs11.PrivateKey]:
    """Generate a key pair on the token, both halves stored with CKA_LABEL = CKA_ID = label."""
    key_id = label.encode()
    public_template = dict(_PUBLIC_TEMPLATE)
    common: dict[str, Any] = {
        "id": key_id,
        "label": label,
        "store": True,
        "capabilities": MechanismFlag.SIGN | MechanismFlag.VERIFY,
        "private_template": dict(_PRIVATE_TEMPLATE),
    }
    if algorithm.is_rsa:
        return session.generate_keypair(
            KeyType.RSA, algorithm.rsa_bits, public_template=public_template, **common
        )
    public_template[Attribute.EC_PARAMS] = _EC_PARAMS[algorithm]
    key_type = KeyType.EC_EDWARDS if algorithm is KeyAlgorithm.ED25519 else KeyType.EC
    return session.generate_keypair(key_type, public_template=public_template, **common)


def required_mechanisms(algorithm: KeyAlgorithm) -> tuple[Mechanism, ...]:
    """What the token must offer to generate and sign with `algorithm` (see `hsm_key`)."""
    if algorithm.is_rsa:
        return (Mechanism.RSA_PKCS_KEY_PAIR_GEN, Mechanism.SHA256_RSA_PKCS)
    if algorithm.is_ec:
        return (Mechanism.EC_KEY_PAIR_GEN, Mechanism.ECDSA)
    return (Mechanism.EC_EDWARDS_KEY_PAIR_GEN, Mechanism.EDDSA)


def algorithm_of(public: pkcs11.PublicKey) -> KeyAlgorithm:
    """The padlock algorithm of a token public key; KeyBackendError for anything else."""
    key_type = public.key_type
    if key_type == KeyType.RSA:
        bits = int.from_bytes(public[Attribute.MODULUS], "big").bit_length()
        try:
            return KeyAlgorithm(f"rsa-{bits}")
        except ValueError:
            raise base.KeyBackendError(
                f"key {public.label!r} is RSA-{bits}; padlock signs with 2048, 3072 or 4096 bits"
            ) from None
    if key_type in (KeyType.EC, KeyType.EC_EDWARDS):
        params = bytes(public[Attribute.EC_PARAMS])
        if params in _ALGORITHM_OF_PARAMS:
            return _ALGORITHM_OF_PARAMS[params]
        raise base.KeyBackendError(
            f"key {public.label!r} uses curve parameters {params.hex()}, "
            "not P-256, P-384 or Ed25519"
        )
    raise base.KeyBackendError(f"key {public.label!r} has unsupported key type {key_type!r}")


def _unwrap_octet_string(point: bytes) -> bytes:
    """CKA_EC_POINT is a DER OCTET STRING (PKCS#11 v3.0 §2.3.3); some tokens give it raw."""
    if len(point) >= 2 and point[0] == 0x04:
        length = point[1]
        if length < 0x80 and length == len(point) - 2:
            return point[2:]
        if length == 0x81 and point[2] == len(point) - 3:
            return point[3:]
    return point


def read_public_key(public: pkcs11.PublicKey, algorithm: KeyAlgorithm) -> base.VerifyingKey:
    """Build the `cryptography` public key from the token's public-key object."""
    if algorithm.is_rsa:
        n = int.from_bytes(public[Attribute.MODULUS], "big")
        e = int.from_bytes(public[Attribute.PUBLIC_EXPONENT], "big")
        return rsa.RSAPublicNumbers(e, n).public_key()
    point = _unwrap_octet_string(bytes(public[Attribute.EC_POINT]))
    if algorithm is KeyAlgorithm.ED25519:
        return ed25519.Ed25519PublicKey.from_public_bytes(point)
    return ec.EllipticCurvePublicKey.from_encoded_point(algorithm.curve, point)


def find_public(session: pkcs11.Session, label: str) -> pkcs11.PublicKey | None:
    """The public-key object labelled `label`, or None."""
    found = list(
        session.get_objects({Attribute.CLASS: ObjectClass.PUBLIC_KEY, Attribute.LABEL: label})
    )
    if len(found) > 1:
        raise base.KeyBackendError(f"token holds {len(found)} public keys labelled {label!r}")
    return cast(pkcs11.PublicKey, found[0]) if found else None


def find_private(session: pkcs11.Session, label: str) -> pkcs11.PrivateKey | None:
    """The private-key object labelled `label`, or None."""
    found = list(
        session.get_objects({Attribute.CLASS: ObjectClass.PRIVATE_KEY, Attribute.LABEL: label})
    )
    if len(found) > 1:
        raise base.KeyBackendError(f"token holds {len(found)} private keys labelled {label!r}")
    return cast(pkcs11.PrivateKey, found[0]) if found else None
