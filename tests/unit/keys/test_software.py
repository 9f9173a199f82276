"""The software backend: encrypted PKCS#8 files for the offline root and self-signed issuers."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from padlock.keys import base, software
from padlock.pki.algorithms import KeyAlgorithm


@pytest.mark.parametrize("algorithm", [KeyAlgorithm.EC_P256, KeyAlgorithm.ED25519])
def test_saved_key_loads_back_with_its_passphrase(algorithm: KeyAlgorithm, tmp_path: Path) -> None:
    signer = software.generate("root", algorithm)
    path = tmp_path / "root.pem"
    signer.save(path, b"correct horse")
    assert path.read_bytes().startswith(b"-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = software.load(path, b"correct horse")
    assert loaded.label == "root"
    assert loaded.algorithm is algorithm
    der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    assert loaded.public_key().public_bytes(der, spki) == signer.public_key().public_bytes(
        der, spki
    )


def test_wrong_passphrase_raises_wrong_passphrase_error() -> None:
    pem = software.generate("root", KeyAlgorithm.EC_P256).to_pem(b"right")
    with pytest.raises(base.WrongPassphraseError, match="cannot decrypt key 'root'") as caught:
        software.from_pem("root", pem, b"wrong")
    assert "wrong" not in str(caught.value).replace("wrong passphrase", "")


def test_unencrypted_key_is_refused() -> None:
    key = software.generate("root", KeyAlgorithm.EC_P256).private_key()
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    with pytest.raises(base.KeyBackendError, match="is not encrypted"):
        software.from_pem("root", pem, b"pass")


def test_text_that_is_not_a_key_is_named_as_such() -> None:
    with pytest.raises(base.KeyBackendError, match="is not a PEM private key"):
        software.from_pem("root", b"hello", b"pass")


def test_empty_passphrase_is_refused_both_ways() -> None:
    signer = software.generate("root", KeyAlgorithm.EC_P256)
    with pytest.raises(ValueError, match="without a passphrase"):
        signer.to_pem(b"")
    with pytest.raises(ValueError, match="passphrase is required"):
        software.from_pem("root", signer.to_pem(b"x"), b"")


def test_save_never_overwrites_an_existing_file(tmp_path: Path) -> None:
    path = tmp_path / "root.pem"
    path.write_bytes(b"precious")
    with pytest.raises(FileExistsError):
        software.generate("root", KeyAlgorithm.EC_P256).save(path, b"pass")
    assert path.read_bytes() == b"precious"


def test_a_disallowed_key_size_is_refused() -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    pem = small.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.BestAvailableEncryption(b"pass"),
    )
    with pytest.raises(base.KeyBackendError, match="RSA key size 1024 is not allowed"):
        software.from_pem("old", pem, b"pass")


def test_repr_shows_no_key_material() -> None:
    signer = software.generate("root", KeyAlgorithm.EC_P256)
    assert repr(signer) == "SoftwareSigner(label='root', algorithm=ec-p256)"
    assert isinstance(signer, base.Signer)
