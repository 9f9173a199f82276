"""Each profile's extensions, and the builder's refusals of malformed inputs."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, ExtensionOID

from padlock.pki import profiles
from tests.unit.pki.conftest import NOW, Issued, issue, name


def ext(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> x509.Extension[x509.ExtensionType]:
    return cert.extensions.get_extension_for_oid(oid)


def has(cert: x509.Certificate, oid: x509.ObjectIdentifier) -> bool:
    try:
        cert.extensions.get_extension_for_oid(oid)
    except x509.ExtensionNotFound:
        return False
    return True


def key_usage(cert: x509.Certificate) -> x509.KeyUsage:
    value = ext(cert, ExtensionOID.KEY_USAGE).value
    assert isinstance(value, x509.KeyUsage)
    return value


def test_root_is_self_signed_ca_without_eku_aia_or_pathlen(root: Issued) -> None:
    cert = root.cert
    assert cert.subject == cert.issuer
    cert.verify_directly_issued_by(cert)
    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert bc.critical and bc.value == x509.BasicConstraints(ca=True, path_length=None)
    assert ext(cert, ExtensionOID.KEY_USAGE).critical
    ku = key_usage(cert)
    assert ku.key_cert_sign and ku.crl_sign and not ku.digital_signature
    assert not has(cert, ExtensionOID.EXTENDED_KEY_USAGE)
    assert not has(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS)
    ski = ext(cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    aki = ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value
    assert isinstance(ski, x509.SubjectKeyIdentifier)
    assert isinstance(aki, x509.AuthorityKeyIdentifier)
    assert aki.key_identifier == ski.digest
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA384)  # P-384 root key


def test_intermediate_has_pathlen_zero_and_aki_from_root_ski(
    root: Issued, intermediate: Issued
) -> None:
    cert = intermediate.cert
    cert.verify_directly_issued_by(root.cert)
    assert ext(cert, ExtensionOID.BASIC_CONSTRAINTS).value == x509.BasicConstraints(
        ca=True, path_length=0
    )
    root_ski = ext(root.cert, ExtensionOID.SUBJECT_KEY_IDENTIFIER).value
    aki = ext(cert, ExtensionOID.AUTHORITY_KEY_IDENTIFIER).value
    assert isinstance(root_ski, x509.SubjectKeyIdentifier)
    assert isinstance(aki, x509.AuthorityKeyIdentifier)
    assert aki.key_identifier == root_ski.digest
    assert key_usage(cert).key_cert_sign
    cdp = ext(cert, ExtensionOID.CRL_DISTRIBUTION_POINTS).value
    assert isinstance(cdp, x509.CRLDistributionPoints)
    assert cdp[0].full_name == [x509.UniformResourceIdentifier("http://ca.padlock.test/root.crl")]


@pytest.mark.parametrize(
    ("profile", "ekus"),
    [
        ("tls-server", [ExtendedKeyUsageOID.SERVER_AUTH]),
        ("tls-client", [ExtendedKeyUsageOID.CLIENT_AUTH]),
        ("svid", [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
        ("ocsp-responder", [ExtendedKeyUsageOID.OCSP_SIGNING]),
    ],
)
def test_leaf_profiles_are_end_entities_with_their_eku(
    leaves: dict[str, Issued], intermediate: Issued, profile: str, ekus: list[x509.ObjectIdentifier]
) -> None:
    cert = leaves[profile].cert
    cert.verify_directly_issued_by(intermediate.cert)
    bc = ext(cert, ExtensionOID.BASIC_CONSTRAINTS)
    assert bc.critical and bc.value == x509.BasicConstraints(ca=False, path_length=None)
    ku = key_usage(cert)
    assert ku.digital_signature and not ku.key_cert_sign and not ku.crl_sign
    assert not ku.key_encipherment  # EC keys: key transport is meaningless
    assert list(ext(cert, ExtensionOID.EXTENDED_KEY_USAGE).value) == ekus  # type: ignore[call-overload]
    assert isinstance(cert.signature_hash_algorithm, hashes.SHA256)  # P-256 intermediate


def test_rsa_tls_server_also_gets_key_encipherment(leaves: dict[str, Issued]) -> None:
    assert key_usage(leaves["tls-server-rsa"].cert).key_encipherment


def test_leaf_with_empty_subject_has_critical_san(leaves: dict[str, Issued]) -> None:
    cert = leaves["svid"].cert
    assert len(cert.subject) == 0
    san = ext(cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    assert san.critical
    assert list(san.value) == [  # type: ignore[call-overload]
        x509.UniformResourceIdentifier("spiffe://cluster.local/ns/default/sa/api")
    ]


def test_leaf_with_common_name_has_non_critical_san(leaves: dict[str, Issued]) -> None:
    assert not ext(leaves["tls-server"].cert, ExtensionOID.SUBJECT_ALTERNATIVE_NAME).critical


def test_leaf_carries_aia_and_cdp(leaves: dict[str, Issued]) -> None:
    aia = ext(leaves["tls-server"].cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    assert isinstance(aia, x509.AuthorityInformationAccess)
    assert [(d.access_method.dotted_string, d.access_location.value) for d in aia] == [
        ("1.3.6.1.5.5.7.48.1", "http://ocsp.padlock.test/"),
        ("1.3.6.1.5.5.7.48.2", "http://ca.padlock.test/intermediate.der"),
    ]
    assert has(leaves["tls-server"].cert, ExtensionOID.CRL_DISTRIBUTION_POINTS)


def test_ocsp_responder_has_nocheck_and_no_ocsp_url(leaves: dict[str, Issued]) -> None:
    cert = leaves["ocsp-responder"].cert
    assert has(cert, ExtensionOID.OCSP_NO_CHECK)
    aia = ext(cert, ExtensionOID.AUTHORITY_INFORMATION_ACCESS).value
    assert isinstance(aia, x509.AuthorityInformationAccess)
    assert [d.access_method.dotted_string for d in aia] == ["1.3.6.1.5.5.7.48.2"]


def test_ed25519_issuer_signs_without_a_hash() -> None:
    key = ed25519.Ed25519PrivateKey.generate()
    cert = profiles.build_certificate(
        profiles.ROOT_CA,
        subject=name("ed root"),
        public_key=key.public_key(),
        sans=(),
        issuer=None,
        issuer_key=key,
        serial=1,
        not_before=NOW,
        not_after=NOW + datetime.timedelta(days=1),
    )
    assert cert.signature_hash_algorithm is None
    cert.verify_directly_issued_by(cert)


def test_builder_refuses_lifetime_over_profile_maximum(intermediate: Issued) -> None:
    with pytest.raises(ValueError, match="exceeds the svid profile maximum 1 day, 0:00:00"):
        issue(
            profiles.SPIFFE_SVID,
            intermediate,
            sans=[x509.UniformResourceIdentifier("spiffe://td/x")],
            lifetime=datetime.timedelta(days=2),
        )


def test_builder_refuses_two_uri_sans_for_svid(intermediate: Issued) -> None:
    with pytest.raises(ValueError, match="profile svid needs exactly one URI SAN, got 2"):
        issue(
            profiles.SPIFFE_SVID,
            intermediate,
            sans=[
                x509.UniformResourceIdentifier("spiffe://td/a"),
                x509.UniformResourceIdentifier("spiffe://td/b"),
            ],
            lifetime=datetime.timedelta(hours=1),
        )


def test_builder_refuses_mismatched_issuer_key(intermediate: Issued) -> None:
    wrong = Issued(intermediate.cert, ec.generate_private_key(ec.SECP256R1()))
    with pytest.raises(ValueError, match="issuer_key does not match the issuer certificate"):
        issue(profiles.TLS_CLIENT, wrong, sans=[x509.DNSName("a.test")])


def test_builder_refuses_ocsp_url_on_ocsp_responder(intermediate: Issued) -> None:
    with pytest.raises(ValueError, match="profile ocsp-responder must not carry an AIA OCSP URL"):
        issue(profiles.OCSP_RESPONDER, intermediate, subject=name("r"), sans=())


def test_builder_refuses_leaf_without_san(intermediate: Issued) -> None:
    with pytest.raises(ValueError, match="profile tls-server needs at least one subjectAltName"):
        issue(profiles.TLS_SERVER, intermediate, subject=name("x"), sans=())


def test_builder_refuses_bad_serial(intermediate: Issued) -> None:
    with pytest.raises(ValueError, match="serial number must be positive, got 0"):
        profiles.build_certificate(
            profiles.TLS_CLIENT,
            subject=name("x"),
            public_key=intermediate.key.public_key(),
            sans=[x509.DNSName("a.test")],
            issuer=intermediate.cert,
            issuer_key=intermediate.key,
            serial=0,
            not_before=NOW,
            not_after=NOW + datetime.timedelta(days=1),
        )


def test_endpoints_refuse_non_http_urls() -> None:
    with pytest.raises(ValueError, match="must be an http:// URI, got 'https://x/'"):
        profiles.Endpoints(ocsp_urls=("https://x/",))


def test_get_profile_names_the_known_profiles() -> None:
    assert profiles.get_profile("svid") is profiles.SPIFFE_SVID
    with pytest.raises(ValueError, match="unknown certificate profile 'web' \\(known: "):
        profiles.get_profile("web")


def test_rsa_svid_has_no_key_encipherment(intermediate: Issued, rsa_key: rsa.RSAPrivateKey) -> None:
    # SPIFFE X.509-SVID §4.3: keyEncipherment MAY be set but is usually not needed.
    svid = issue(
        profiles.SPIFFE_SVID,
        intermediate,
        sans=[x509.UniformResourceIdentifier("spiffe://td/rsa")],
        key=rsa_key,
        lifetime=datetime.timedelta(hours=1),
    )
    ku = key_usage(svid.cert)
    assert ku.digital_signature and not ku.key_encipherment
