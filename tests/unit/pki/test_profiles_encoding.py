"""`profiles.build_certificate` encodes issued certificates from precomputed parts; the result
must be exactly what `cryptography`'s CertificateBuilder (`build_with_cryptography`) writes.

The TBSCertificate is compared byte for byte (ECDSA and RSA PKCS#1 v1.5 signatures over it are
then equally valid); with an Ed25519 issuer the signature is deterministic (RFC 8032), so
the whole certificate must be identical.
"""

from __future__ import annotations

import datetime
import ipaddress
import itertools
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.x509.oid import NameOID

from padlock.pki import profiles, serials
from tests.unit.pki.conftest import ENDPOINTS, NOW, name

_RSA_2048 = rsa.generate_private_key(65537, 2048)
_KEYS: dict[str, CertificateIssuerPrivateKeyTypes] = {
    "p256": ec.generate_private_key(ec.SECP256R1()),
    "p384": ec.generate_private_key(ec.SECP384R1()),
    "rsa2048": _RSA_2048,
    "ed25519": ed25519.Ed25519PrivateKey.generate(),
}
_LEAF_PROFILES = (
    profiles.TLS_SERVER,
    profiles.TLS_CLIENT,
    profiles.SPIFFE_SVID,
    profiles.OCSP_RESPONDER,
    profiles.INTERMEDIATE_CA,
)


def _issuer(key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    return profiles.build_certificate(
        profiles.ROOT_CA,
        subject=name("padlock encoding test CA"),
        public_key=key.public_key(),
        sans=(),
        issuer=None,
        issuer_key=key,
        serial=serials.new_serial(),
        not_before=NOW - datetime.timedelta(days=1),
        not_after=NOW + datetime.timedelta(days=3650),
    )


_ISSUERS = {label: (_issuer(key), key) for label, key in _KEYS.items()}


def _inputs(
    profile: profiles.Profile, subject_key: str, issuer_key: str, named: bool
) -> dict[str, Any]:
    issuer, key = _ISSUERS[issuer_key]
    sans: tuple[x509.GeneralName, ...] = ()
    if profile.exactly_one_uri_san:
        sans = (x509.UniformResourceIdentifier("spiffe://cluster.local/ns/a/sa/b"),)
    elif profile.requires_san:
        sans = (x509.DNSName("api.padlock.test"), x509.IPAddress(ipaddress.ip_address("10.0.0.1")))
    subject = x509.Name([])
    if named or not sans:
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.padlock.test")])
    endpoints = ENDPOINTS
    if not profile.allows_ocsp_url:
        endpoints = profiles.Endpoints(ca_issuers_urls=ENDPOINTS.ca_issuers_urls)
    return {
        "subject": subject,
        "public_key": _KEYS[subject_key].public_key(),
        "sans": sans,
        "issuer": issuer,
        "issuer_key": key,
        "serial": serials.new_serial(),
        "not_before": NOW - datetime.timedelta(minutes=1),
        "not_after": NOW + datetime.timedelta(hours=20),
        "endpoints": endpoints,
    }


@pytest.mark.parametrize(
    ("profile", "subject_key", "issuer_key", "named"),
    [
        (p, s, i, n)
        for p, s, i, n in itertools.product(_LEAF_PROFILES, _KEYS, _KEYS, (True, False))
        if n or p.requires_san  # a certificate without SAN needs a subject name
    ],
    ids=lambda v: v.name if isinstance(v, profiles.Profile) else str(v),
)
def test_issued_certificate_tbs_is_byte_identical_to_cryptographys_builder(
    profile: profiles.Profile, subject_key: str, issuer_key: str, named: bool
) -> None:
    inputs = _inputs(profile, subject_key, issuer_key, named)
    fast = profiles.build_certificate(profile, **inputs)
    reference = profiles.build_with_cryptography(profile, **inputs)

    assert fast.tbs_certificate_bytes == reference.tbs_certificate_bytes
    assert fast.signature_algorithm_oid == reference.signature_algorithm_oid
    fast.verify_directly_issued_by(inputs["issuer"])
    if issuer_key == "ed25519":
        der = serialization.Encoding.DER
        assert fast.public_bytes(der) == reference.public_bytes(der)


def test_validity_after_2049_is_generalized_time_like_the_reference() -> None:
    """RFC 5280 §4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050."""
    inputs = _inputs(profiles.INTERMEDIATE_CA, "p256", "p256", True)
    inputs["not_before"] = datetime.datetime(2049, 6, 1, tzinfo=datetime.UTC)
    inputs["not_after"] = datetime.datetime(2051, 6, 1, tzinfo=datetime.UTC)
    fast = profiles.build_certificate(profiles.INTERMEDIATE_CA, **inputs)
    reference = profiles.build_with_cryptography(profiles.INTERMEDIATE_CA, **inputs)
    assert fast.tbs_certificate_bytes == reference.tbs_certificate_bytes
    assert b"\x18\x0f20510601000000Z" in fast.tbs_certificate_bytes


def test_each_crl_shard_gets_its_own_distribution_point_from_the_parts_cache() -> None:
    urls = []
    for shard in (3, 4, 3):
        inputs = _inputs(profiles.TLS_SERVER, "p256", "p256", False)
        inputs["endpoints"] = profiles.Endpoints(crl_urls=(f"http://ca.padlock.test/{shard}.crl",))
        cert = profiles.build_certificate(profiles.TLS_SERVER, **inputs)
        cdp = cert.extensions.get_extension_for_class(x509.CRLDistributionPoints).value
        full_name = cdp[0].full_name
        assert full_name is not None
        urls.append(full_name[0].value)
    assert urls == [
        "http://ca.padlock.test/3.crl",
        "http://ca.padlock.test/4.crl",
        "http://ca.padlock.test/3.crl",
    ]


def test_an_issuer_key_not_matching_the_issuer_certificate_is_still_refused() -> None:
    inputs = _inputs(profiles.TLS_SERVER, "p256", "p256", False)
    inputs["issuer_key"] = ec.generate_private_key(ec.SECP256R1())
    with pytest.raises(ValueError, match="issuer_key does not match"):
        profiles.build_certificate(profiles.TLS_SERVER, **inputs)
