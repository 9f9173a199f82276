"""Shared software-key fixtures for the pki unit tests: a root, an intermediate, leaves."""

from __future__ import annotations

import dataclasses
import datetime
from collections.abc import Sequence

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
    CertificatePublicKeyTypes,
)
from cryptography.x509.oid import NameOID

from padlock.pki import profiles, serials

NOW = datetime.datetime(2026, 6, 1, 12, 0, tzinfo=datetime.UTC)
ENDPOINTS = profiles.Endpoints(
    ocsp_urls=("http://ocsp.padlock.test/",),
    ca_issuers_urls=("http://ca.padlock.test/intermediate.der",),
    crl_urls=("http://ca.padlock.test/crl/0.crl",),
)


@dataclasses.dataclass(frozen=True)
class Issued:
    cert: x509.Certificate
    key: CertificateIssuerPrivateKeyTypes


def name(cn: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "padlock test"),
            x509.NameAttribute(NameOID.COMMON_NAME, cn),
        ]
    )


def issue(
    profile: profiles.Profile,
    issuer: Issued,
    *,
    sans: Sequence[x509.GeneralName],
    subject: x509.Name | None = None,
    key: CertificateIssuerPrivateKeyTypes | None = None,
    lifetime: datetime.timedelta = datetime.timedelta(days=30),
    endpoints: profiles.Endpoints = ENDPOINTS,
) -> Issued:
    key = key or ec.generate_private_key(ec.SECP256R1())
    public: CertificatePublicKeyTypes = key.public_key()
    cert = profiles.build_certificate(
        profile,
        subject=subject if subject is not None else x509.Name([]),
        public_key=public,
        sans=sans,
        issuer=issuer.cert,
        issuer_key=issuer.key,
        serial=serials.new_serial(),
        not_before=NOW - datetime.timedelta(minutes=5),
        not_after=NOW + lifetime,
        endpoints=endpoints,
    )
    return Issued(cert, key)


def make_root() -> Issued:
    key = ec.generate_private_key(ec.SECP384R1())
    cert = profiles.build_certificate(
        profiles.ROOT_CA,
        subject=name("padlock test root"),
        public_key=key.public_key(),
        sans=(),
        issuer=None,
        issuer_key=key,
        serial=serials.new_serial(),
        not_before=NOW - datetime.timedelta(days=1),
        not_after=NOW + datetime.timedelta(days=3650),
    )
    return Issued(cert, key)


def make_intermediate(root: Issued) -> Issued:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = profiles.build_certificate(
        profiles.INTERMEDIATE_CA,
        subject=name("padlock test intermediate"),
        public_key=key.public_key(),
        sans=(),
        issuer=root.cert,
        issuer_key=root.key,
        serial=serials.new_serial(),
        not_before=NOW - datetime.timedelta(days=1),
        not_after=NOW + datetime.timedelta(days=1825),
        endpoints=profiles.Endpoints(crl_urls=("http://ca.padlock.test/root.crl",)),
    )
    return Issued(cert, key)


def make_leaves(intermediate: Issued, rsa_key: rsa.RSAPrivateKey) -> dict[str, Issued]:
    """One leaf per leaf profile, issued by the intermediate."""
    return {
        "tls-server": issue(
            profiles.TLS_SERVER,
            intermediate,
            subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "api.padlock.test")]),
            sans=[x509.DNSName("api.padlock.test"), x509.DNSName("*.api.padlock.test")],
        ),
        "tls-server-rsa": issue(
            profiles.TLS_SERVER,
            intermediate,
            sans=[x509.DNSName("rsa.padlock.test")],
            key=rsa_key,
        ),
        "tls-client": issue(
            profiles.TLS_CLIENT,
            intermediate,
            sans=[x509.DNSName("client.padlock.test")],
        ),
        "svid": issue(
            profiles.SPIFFE_SVID,
            intermediate,
            sans=[x509.UniformResourceIdentifier("spiffe://cluster.local/ns/default/sa/api")],
            lifetime=datetime.timedelta(hours=1),
        ),
        "ocsp-responder": issue(
            profiles.OCSP_RESPONDER,
            intermediate,
            subject=name("padlock test OCSP responder"),
            sans=(),
            endpoints=profiles.Endpoints(
                ca_issuers_urls=("http://ca.padlock.test/intermediate.der",)
            ),
        ),
    }


@pytest.fixture(scope="session")
def root() -> Issued:
    return make_root()


@pytest.fixture(scope="session")
def intermediate(root: Issued) -> Issued:
    return make_intermediate(root)


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def leaves(intermediate: Issued, rsa_key: rsa.RSAPrivateKey) -> dict[str, Issued]:
    return make_leaves(intermediate, rsa_key)
