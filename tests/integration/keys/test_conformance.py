"""One conformance suite for every key backend: what the CA needs from a `Signer`.

Each test runs for software and PKCS#11 (SoftHSM) keys of every algorithm: the key must sign a
certificate, a CRL and an OCSP response through `cryptography`'s builders, and each signature
must verify with the signer's public key (and with `openssl` for certificates and CRLs).
"""

from __future__ import annotations

import datetime
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric import utils as asym_utils
from cryptography.x509 import ocsp
from cryptography.x509.oid import NameOID

from padlock.keys import base
from padlock.pki.algorithms import KeyAlgorithm

NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)


def _hash(signer: base.Signer) -> hashes.SHA256 | hashes.SHA384 | None:
    if signer.algorithm is KeyAlgorithm.ED25519:
        return None  # RFC 8410 §6: Ed25519 signs the message itself
    if signer.algorithm is KeyAlgorithm.EC_P384:
        return hashes.SHA384()
    return hashes.SHA256()


def _name(signer: base.Signer) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"conformance {signer.label}")])


def _self_signed(
    signer: base.Signer, rsa_padding: padding.PSS | padding.PKCS1v15 | None = None
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(signer))
        .issuer_name(_name(signer))
        .public_key(signer.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=5))
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(
            x509.KeyUsage(
                digital_signature=True,
                content_commitment=False,
                key_encipherment=False,
                data_encipherment=False,
                key_agreement=False,
                key_cert_sign=True,
                crl_sign=True,
                encipher_only=False,
                decipher_only=False,
            ),
            critical=True,
        )
    )
    return builder.sign(signer.private_key(), _hash(signer), rsa_padding=rsa_padding)


def _crl(signer: base.Signer) -> x509.CertificateRevocationList:
    revoked = (
        x509.RevokedCertificateBuilder()
        .serial_number(0x1234)
        .revocation_date(NOW - datetime.timedelta(hours=1))
        .add_extension(x509.CRLReason(x509.ReasonFlags.key_compromise), critical=False)
        .build()
    )
    return (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name(signer))
        .last_update(NOW)
        .next_update(NOW + datetime.timedelta(days=1))
        .add_revoked_certificate(revoked)
        .add_extension(x509.CRLNumber(1), critical=False)
        .sign(signer.private_key(), _hash(signer))
    )


def _ocsp_response(signer: base.Signer, cert: x509.Certificate) -> ocsp.OCSPResponse:
    return (
        ocsp.OCSPResponseBuilder()
        .add_response(
            cert=cert,
            issuer=cert,
            algorithm=hashes.SHA256(),
            cert_status=ocsp.OCSPCertStatus.GOOD,
            this_update=NOW,
            next_update=NOW + datetime.timedelta(hours=12),
            revocation_time=None,
            revocation_reason=None,
        )
        .responder_id(ocsp.OCSPResponderEncoding.HASH, cert)
        .sign(signer.private_key(), _hash(signer))
    )


def _verify(
    key: base.VerifyingKey,
    signature: bytes,
    data: bytes,
    hash_algorithm: hashes.HashAlgorithm | None,
    rsa_padding: padding.AsymmetricPadding | None = None,
) -> None:
    """Verify with the public key alone; raises InvalidSignature."""
    if isinstance(key, rsa.RSAPublicKey):
        assert hash_algorithm is not None
        key.verify(signature, data, rsa_padding or padding.PKCS1v15(), hash_algorithm)
    elif isinstance(key, ec.EllipticCurvePublicKey):
        assert hash_algorithm is not None
        key.verify(signature, data, ec.ECDSA(hash_algorithm))
    else:
        key.verify(signature, data)


def test_private_key_is_a_cryptography_key_whose_public_half_matches(signer: base.Signer) -> None:
    key = signer.private_key()
    assert isinstance(
        key, rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey
    )
    assert KeyAlgorithm.of_public_key(signer.public_key()) is signer.algorithm
    der = serialization.Encoding.DER
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    assert key.public_key().public_bytes(der, spki) == signer.public_key().public_bytes(der, spki)


def test_self_signed_certificate_signature_verifies_with_the_public_key(
    signer: base.Signer,
) -> None:
    cert = _self_signed(signer)
    _verify(
        signer.public_key(),
        cert.signature,
        cert.tbs_certificate_bytes,
        cert.signature_hash_algorithm,
    )
    cert.verify_directly_issued_by(cert)


def test_a_changed_certificate_body_fails_verification(signer: base.Signer) -> None:
    cert = _self_signed(signer)
    tampered = bytearray(cert.tbs_certificate_bytes)
    tampered[-5] ^= 0x01
    with pytest.raises(InvalidSignature):
        _verify(signer.public_key(), cert.signature, bytes(tampered), cert.signature_hash_algorithm)


def test_crl_signature_verifies_with_the_public_key(signer: base.Signer) -> None:
    crl = _crl(signer)
    assert crl.is_signature_valid(signer.public_key())
    _verify(
        signer.public_key(), crl.signature, crl.tbs_certlist_bytes, crl.signature_hash_algorithm
    )


def test_ocsp_response_signature_verifies_with_the_public_key(signer: base.Signer) -> None:
    cert = _self_signed(signer)
    response = ocsp.load_der_ocsp_response(
        _ocsp_response(signer, cert).public_bytes(serialization.Encoding.DER)
    )
    assert response.response_status is ocsp.OCSPResponseStatus.SUCCESSFUL
    _verify(
        signer.public_key(),
        response.signature,
        response.tbs_response_bytes,
        response.signature_hash_algorithm,
    )


def test_openssl_verifies_the_certificate_and_the_crl(signer: base.Signer, tmp_path: Path) -> None:
    cert = _self_signed(signer)
    cert_pem = tmp_path / "ca.pem"
    cert_pem.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    crl_pem = tmp_path / "crl.pem"
    crl_pem.write_bytes(_crl(signer).public_bytes(serialization.Encoding.PEM))
    at = ["-attime", str(int(NOW.timestamp()))]
    verified = subprocess.run(
        ["openssl", "verify", *at, "-CAfile", cert_pem, cert_pem],
        capture_output=True,
        text=True,
    )
    assert verified.returncode == 0, verified.stderr
    crl_checked = subprocess.run(
        ["openssl", "crl", "-in", crl_pem, "-CAfile", cert_pem, "-noout"],
        capture_output=True,
        text=True,
    )
    assert crl_checked.returncode == 0, crl_checked.stderr
    assert "verify OK" in crl_checked.stdout + crl_checked.stderr


def test_rsa_pss_certificate_verifies(signer: base.Signer) -> None:
    if not signer.algorithm.is_rsa:
        pytest.skip("RSA-PSS applies to RSA keys only")
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.DIGEST_LENGTH)
    cert = _self_signed(signer, rsa_padding=pss)
    assert isinstance(cert.signature_algorithm_parameters, padding.PSS)
    cert.verify_directly_issued_by(cert)


def test_prehashed_signature_verifies(signer: base.Signer) -> None:
    key = signer.private_key()
    digest = hashes.Hash(hashes.SHA384())
    digest.update(b"padlock conformance")
    prehashed = asym_utils.Prehashed(hashes.SHA384())
    if isinstance(key, rsa.RSAPrivateKey):
        signature = key.sign(digest.finalize(), padding.PKCS1v15(), prehashed)
    elif isinstance(key, ec.EllipticCurvePrivateKey):
        signature = key.sign(digest.finalize(), ec.ECDSA(prehashed))
    else:
        pytest.skip("Ed25519 signs whole messages only (RFC 8032 PureEdDSA)")
    _verify(signer.public_key(), signature, b"padlock conformance", hashes.SHA384())


def test_builders_refuse_a_hash_that_does_not_fit_the_key(signer: base.Signer) -> None:
    wrong = hashes.SHA256() if signer.algorithm is KeyAlgorithm.ED25519 else None
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(_name(signer))
        .last_update(NOW)
        .next_update(NOW + datetime.timedelta(days=1))
    )
    with pytest.raises((ValueError, TypeError)):
        builder.sign(signer.private_key(), wrong)
