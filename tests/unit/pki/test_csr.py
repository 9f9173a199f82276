"""CSR refusals: malformed, forged signature, SHA-1, weak or disallowed keys."""

from __future__ import annotations

import ipaddress
import pathlib

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa

from padlock.pki import csr
from padlock.pki.algorithms import KeyAlgorithm
from padlock.pki.errors import Code, PolicyError
from tests.unit.pki.csrs import make_csr, openssl_sha1_csr


def refusal(excinfo: pytest.ExceptionInfo[PolicyError]) -> tuple[str, str]:
    return excinfo.value.code.value, excinfo.value.message


def test_csr_loads_from_pem_and_der() -> None:
    request = make_csr([x509.DNSName("a.padlock.test")])
    pem = request.public_bytes(serialization.Encoding.PEM)
    der = request.public_bytes(serialization.Encoding.DER)
    assert csr.load_csr(pem) == csr.load_csr(der) == request


def test_garbage_is_refused_as_malformed() -> None:
    with pytest.raises(PolicyError) as exc:
        csr.load_csr(b"not a csr")
    assert exc.value.code is Code.CSR_MALFORMED
    assert exc.value.message.startswith("CSR is neither a PEM nor a DER PKCS#10 request (")


def test_forged_signature_is_refused() -> None:
    der = bytearray(
        make_csr([x509.DNSName("a.padlock.test")]).public_bytes(serialization.Encoding.DER)
    )
    der[-5] ^= 0x01  # inside the signature BIT STRING, which ends the DER
    forged = csr.load_csr(bytes(der))
    with pytest.raises(PolicyError) as exc:
        csr.check_csr(forged)
    assert refusal(exc) == (
        "csr-signature-invalid",
        "CSR signature does not verify with the CSR's own public key "
        "(proof of possession failed, RFC 2986 §3)",
    )


_RSA = rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _signed(kind: str) -> x509.CertificateSigningRequest:
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([]))
    builder = builder.add_extension(
        x509.SubjectAlternativeName([x509.DNSName("a.padlock.test")]), critical=False
    )
    if kind == "rsa-pss":
        pss = padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH)
        return builder.sign(_RSA, hashes.SHA256(), rsa_padding=pss)
    keys = {
        "p256": ec.generate_private_key(ec.SECP256R1()),
        "p384": ec.generate_private_key(ec.SECP384R1()),
        "rsa-pkcs1": _RSA,
        "ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    return make_csr([x509.DNSName("a.padlock.test")], key=keys[kind])


@pytest.mark.parametrize("kind", ["p256", "p384", "rsa-pkcs1", "rsa-pss", "ed25519"])
def test_proof_of_possession_agrees_with_cryptography_for_every_key_type(kind: str) -> None:
    """The signature check reuses the loaded key; its verdict must be `is_signature_valid`'s
    for a good CSR and for one with a flipped signature bit."""
    good = _signed(kind)
    der = bytearray(good.public_bytes(serialization.Encoding.DER))
    der[-5] ^= 0x01  # inside the signature BIT STRING, which ends the DER
    forged = csr.load_csr(bytes(der))
    assert good.is_signature_valid and not forged.is_signature_valid
    key, _algorithm = csr.checked_key(good)
    assert key == good.public_key()
    with pytest.raises(PolicyError) as exc:
        csr.checked_key(forged)
    assert exc.value.code is Code.CSR_SIGNATURE_INVALID


def test_sha1_signed_csr_is_refused(tmp_path: pathlib.Path) -> None:
    request = csr.load_csr(openssl_sha1_csr(tmp_path))
    with pytest.raises(PolicyError) as exc:
        csr.check_csr(request)
    assert refusal(exc) == (
        "weak-signature",
        "CSR is signed with SHA-1; sign it with SHA-256 or stronger",
    )


def test_rsa_1024_is_refused_as_weak_key() -> None:
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)  # noqa: S505
    with pytest.raises(PolicyError) as exc:
        csr.check_csr(make_csr([x509.DNSName("a.padlock.test")], key=weak))
    assert refusal(exc) == (
        "weak-key",
        "RSA key size 1024 is too small (minimum 2048 bits)",
    )


def test_p521_is_refused_as_not_allowed() -> None:
    key = ec.generate_private_key(ec.SECP521R1())
    with pytest.raises(PolicyError) as exc:
        csr.check_csr(make_csr([x509.DNSName("a.padlock.test")], key=key))
    assert refusal(exc) == (
        "key-not-allowed",
        "elliptic curve secp521r1 is not allowed (use P-256 or P-384)",
    )


@pytest.mark.parametrize(
    ("key", "expected"),
    [
        (ec.generate_private_key(ec.SECP256R1()), KeyAlgorithm.EC_P256),
        (ec.generate_private_key(ec.SECP384R1()), KeyAlgorithm.EC_P384),
        (ed25519.Ed25519PrivateKey.generate(), KeyAlgorithm.ED25519),
    ],
)
def test_strong_keys_are_accepted(
    key: ec.EllipticCurvePrivateKey | ed25519.Ed25519PrivateKey, expected: KeyAlgorithm
) -> None:
    assert csr.check_csr(make_csr([x509.DNSName("a.padlock.test")], key=key)) is expected


def test_requested_names_come_from_the_san_extension() -> None:
    request = make_csr(
        [
            x509.DNSName("a.padlock.test"),
            x509.IPAddress(ipaddress.ip_address("10.0.0.1")),
            x509.UniformResourceIdentifier("spiffe://td/x"),
            x509.RFC822Name("ops@padlock.test"),
        ]
    )
    names = csr.requested_names(request)
    assert names.dns_names == ("a.padlock.test",)
    assert names.ip_addresses == ("10.0.0.1",)
    assert names.uris == ("spiffe://td/x",)
    assert names.email_addresses == ("ops@padlock.test",)


def test_directory_name_san_is_refused() -> None:
    request = make_csr([x509.DirectoryName(x509.Name([]))])
    with pytest.raises(PolicyError) as exc:
        csr.requested_names(request)
    assert refusal(exc) == (
        "unsupported-san",
        "subjectAltName type DirectoryName is not supported "
        "(use DNS names, IP addresses, URIs or email addresses)",
    )


def test_common_name_is_read_from_the_subject() -> None:
    assert csr.common_name(make_csr(common_name="cn.padlock.test")) == "cn.padlock.test"
    assert csr.common_name(make_csr()) is None
