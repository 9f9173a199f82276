"""Reading the CA chain file, and the per-certificate revocation URLs."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from padlock.ca import authority
from padlock.ca import config as ca_config
from padlock.pki import profiles, serials

NOW = datetime.datetime(2026, 1, 2, tzinfo=datetime.UTC)


def _ca(
    name: str,
    profile: profiles.Profile,
    issuer: tuple[x509.Certificate, ec.EllipticCurvePrivateKey] | None,
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = profiles.build_certificate(
        profile,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]),
        public_key=key.public_key(),
        sans=(),
        issuer=issuer[0] if issuer else None,
        issuer_key=issuer[1] if issuer else key,
        serial=serials.new_serial(),
        not_before=NOW,
        not_after=NOW + datetime.timedelta(days=365),
    )
    return cert, key


ROOT = _ca("root", profiles.ROOT_CA, None)
INTERMEDIATE = _ca("intermediate", profiles.INTERMEDIATE_CA, ROOT)


def _pem(*certs: x509.Certificate) -> bytes:
    return b"".join(c.public_bytes(serialization.Encoding.PEM) for c in certs)


@pytest.mark.parametrize("order", ["intermediate-first", "root-first"])
def test_chain_file_in_any_order_yields_root_and_issuing_ca(tmp_path: Path, order: str) -> None:
    certs = (
        (INTERMEDIATE[0], ROOT[0]) if order == "intermediate-first" else (ROOT[0], INTERMEDIATE[0])
    )
    (tmp_path / "chain.pem").write_bytes(_pem(*certs))
    root, intermediates = authority.load_chain(tmp_path / "chain.pem")
    assert root == ROOT[0]
    assert intermediates == (INTERMEDIATE[0],)


def test_chain_file_without_a_root_is_refused_with_the_file_name(tmp_path: Path) -> None:
    path = tmp_path / "chain.pem"
    path.write_bytes(_pem(INTERMEDIATE[0]))
    with pytest.raises(ValueError, match=r"chain\.pem must hold the root"):
        authority.load_chain(path)


def test_each_certificate_names_its_crl_shard_and_the_ocsp_url() -> None:
    ca = authority.Authority(
        name="t",
        ca_id=1,
        certificate=INTERMEDIATE[0],
        intermediates=(INTERMEDIATE[0],),
        root=ROOT[0],
        urls=ca_config.UrlConfig(ocsp="http://ocsp.test", crl_base="http://crl.test/ca/"),
    )
    endpoints = ca.endpoints(authority.CRL_SHARDS + 3)
    assert endpoints.ocsp_urls == ("http://ocsp.test",)
    assert endpoints.crl_urls == ("http://crl.test/ca/3.crl",)
