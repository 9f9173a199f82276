"""Loading, fingerprints and `describe_certificate` (what `padlock inspect` prints)."""

from __future__ import annotations

import json
import subprocess

import pytest
from cryptography.hazmat.primitives import serialization

from padlock.pki import pem
from tests.unit.pki.conftest import Issued


def test_pem_bundle_and_der_load(intermediate: Issued, leaves: dict[str, Issued]) -> None:
    leaf = leaves["tls-server"].cert
    bundle = pem.certificates_to_pem([leaf, intermediate.cert])
    assert pem.load_certificates(bundle) == [leaf, intermediate.cert]
    assert pem.load_certificate(leaf.public_bytes(serialization.Encoding.DER)) == leaf
    with pytest.raises(ValueError, match="expected one certificate, found 2"):
        pem.load_certificate(bundle)


def test_garbage_is_refused() -> None:
    with pytest.raises(ValueError, match="neither a PEM bundle nor a DER certificate"):
        pem.load_certificates(b"\x00\x01junk")
    with pytest.raises(ValueError, match="PEM data holds no readable certificate"):
        pem.load_certificates(b"-----BEGIN NOTHING-----\n")


def test_fingerprint_matches_openssl(leaves: dict[str, Issued]) -> None:
    cert = leaves["tls-server"].cert
    out = subprocess.run(
        ["openssl", "x509", "-noout", "-fingerprint", "-sha256"],
        input=cert.public_bytes(serialization.Encoding.PEM),
        capture_output=True,
        check=True,
    ).stdout.decode()
    assert out.strip() == f"sha256 Fingerprint={pem.fingerprint_sha256(cert)}"


def test_describe_tls_server_leaf(leaves: dict[str, Issued]) -> None:
    cert = leaves["tls-server"].cert
    info = pem.describe_certificate(cert)
    json.dumps(info)  # JSON-ready as is
    assert info["subject"] == "CN=api.padlock.test"
    assert info["issuer"] == "CN=padlock test intermediate,O=padlock test"
    assert str(info["serial"]) == str(info["serial"]).upper()
    assert len(str(info["serial"])) % 2 == 0
    assert int(str(info["serial"]), 16) == cert.serial_number
    assert info["notAfter"] == "2026-07-01T12:00:00+00:00"
    assert info["sans"] == {"dns": ["api.padlock.test", "*.api.padlock.test"]}
    assert info["keyAlgorithm"] == "ECDSA P-256"
    assert info["signatureAlgorithm"] == "ecdsa-with-SHA256"
    assert info["isCA"] is False
    assert info["keyUsage"] == ["digital_signature"]
    assert info["extendedKeyUsage"] == ["serverAuth"]
    assert info["aia"] == {
        "ocsp": ["http://ocsp.padlock.test/"],
        "caIssuers": ["http://ca.padlock.test/intermediate.der"],
    }
    assert info["crlDistributionPoints"] == ["http://ca.padlock.test/crl/0.crl"]
    assert info["sha256Fingerprint"] == pem.fingerprint_sha256(cert)


def test_describe_root_and_svid(root: Issued, leaves: dict[str, Issued]) -> None:
    root_info = pem.describe_certificate(root.cert)
    assert root_info["isCA"] is True
    assert root_info["pathLen"] is None
    assert root_info["keyAlgorithm"] == "ECDSA P-384"
    assert root_info["keyUsage"] == ["key_cert_sign", "crl_sign"]
    assert root_info["aia"] == {}
    svid = pem.describe_certificate(leaves["svid"].cert)
    assert svid["subject"] == ""
    assert svid["sans"] == {"uri": ["spiffe://cluster.local/ns/default/sa/api"]}
    assert svid["extendedKeyUsage"] == ["serverAuth", "clientAuth"]


def test_describe_rsa_key(leaves: dict[str, Issued]) -> None:
    info = pem.describe_certificate(leaves["tls-server-rsa"].cert)
    assert info["keyAlgorithm"] == "RSA 2048"
    assert info["keyUsage"] == ["digital_signature", "key_encipherment"]
