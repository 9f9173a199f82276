"""Keys, CSRs and the Secret/spec checks of the certificate controller."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

from padlock.api.certificate import CertificateSpec, KeyEncoding, PrivateKey
from padlock.controllers import crypto

from .conftest import NOW, Clock, InMemoryCA


def _spec(**extra: object) -> CertificateSpec:
    return CertificateSpec.from_dict(
        {
            "secretName": "s",
            "issuerRef": {"name": "ca"},
            "commonName": "web",
            "dnsNames": ["web.example.test"],
            "ipAddresses": ["10.0.0.1"],
            "uris": ["spiffe://cluster.local/ns/apps/sa/web"],
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("settings", "kind"),
    [
        ({}, ec.EllipticCurvePrivateKey),
        ({"algorithm": "ECDSA", "size": 384}, ec.EllipticCurvePrivateKey),
        ({"algorithm": "RSA", "size": 2048}, rsa.RSAPrivateKey),
        ({"algorithm": "Ed25519"}, ed25519.Ed25519PrivateKey),
    ],
)
def test_keys_follow_the_spec_and_fit_it(settings: dict[str, object], kind: type) -> None:
    spec = PrivateKey.from_dict(settings)
    key = crypto.generate_key(spec)
    assert isinstance(key, kind)
    assert crypto.key_fits_spec(key, spec)
    assert not crypto.key_fits_spec(key, PrivateKey.from_dict({"algorithm": "RSA", "size": 4096}))


def test_pem_encodings_are_pkcs1_or_pkcs8_and_round_trip() -> None:
    key = crypto.generate_key(PrivateKey())
    assert crypto.encode_key(key, KeyEncoding.PKCS1).startswith(b"-----BEGIN EC PRIVATE KEY")
    pkcs8 = crypto.encode_key(key, KeyEncoding.PKCS8)
    assert pkcs8.startswith(b"-----BEGIN PRIVATE KEY")
    assert crypto.load_key(pkcs8).private_numbers() == key.private_numbers()  # type: ignore[union-attr]


def test_an_unreadable_key_is_refused_without_echoing_it() -> None:
    with pytest.raises(ValueError, match="not an unencrypted PEM private key") as info:
        crypto.load_key(b"-----BEGIN PRIVATE KEY-----\nc2VjcmV0\n-----END PRIVATE KEY-----\n")
    assert "c2VjcmV0" not in str(info.value)


def test_the_csr_carries_every_name_in_the_san_extension() -> None:
    spec = _spec()
    key = crypto.generate_key(PrivateKey())
    csr = x509.load_pem_x509_csr(crypto.build_csr(key, spec))
    assert csr.is_signature_valid
    san = csr.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.DNSName) == ["web.example.test"]
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["10.0.0.1"]
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [
        "spiffe://cluster.local/ns/apps/sa/web"
    ]
    assert csr.subject.rfc4514_string() == "CN=web"


def test_a_certificate_for_other_names_is_a_mismatch() -> None:
    key = crypto.generate_key(PrivateKey())
    cert = x509.load_pem_x509_certificate(crypto.self_sign(key, _spec(), NOW))
    assert crypto.mismatch(cert, _spec()) is None
    assert crypto.key_matches_cert(key, cert)
    other = _spec(dnsNames=["other.example.test"])
    assert "DNS names" in (crypto.mismatch(cert, other) or "")
    assert not crypto.key_matches_cert(crypto.generate_key(PrivateKey()), cert)


def test_spec_hash_ignores_secret_template_and_renew_before_only() -> None:
    base = {"secretName": "s", "issuerRef": {"name": "ca"}, "dnsNames": ["a.test"]}
    same = crypto.spec_hash(base)
    assert crypto.spec_hash({**base, "secretTemplate": {"labels": {"a": "b"}}}) == same
    assert crypto.spec_hash({**base, "renewBefore": "24h"}) == same
    assert crypto.spec_hash({**base, "dnsNames": ["b.test"]}) != same
    assert crypto.spec_hash({**base, "issuerRef": {"name": "other"}}) != same


def test_check_chain_accepts_the_cas_chain_and_refuses_a_wrong_order_or_expiry() -> None:
    ca = InMemoryCA(Clock())
    good = ca.pem(ca.intermediate) + ca.pem(ca.root)
    crypto.check_chain(good, NOW)
    with pytest.raises(ValueError, match="is not signed by"):
        crypto.check_chain(ca.pem(ca.intermediate) + ca.pem(ca.intermediate), NOW)
    with pytest.raises(ValueError, match="is not valid now"):
        crypto.check_chain(good, NOW + datetime.timedelta(days=4000))
