"""padlock's own structural lint checks, and pkilint's verdict, on software-signed certificates."""

from __future__ import annotations

import dataclasses
import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from padlock.ca import lintgate
from padlock.pki import profiles, serials

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
CA_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = ec.generate_private_key(ec.SECP256R1())
LEAF_KEY = ec.generate_private_key(ec.SECP256R1())
CA = profiles.build_certificate(
    profiles.ROOT_CA,
    subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lint test CA")]),
    public_key=CA_KEY.public_key(),
    sans=(),
    issuer=None,
    issuer_key=CA_KEY,
    serial=serials.new_serial(),
    not_before=NOW,
    not_after=NOW + datetime.timedelta(days=30),
)
SANS = (x509.DNSName("app.example.test"),)


def _expected(serial: int) -> lintgate.Expected:
    return lintgate.Expected(
        profile=profiles.TLS_SERVER,
        public_key=LEAF_KEY.public_key(),
        subject=x509.Name([]),
        sans=SANS,
        serial=serial,
        not_before=NOW,
        not_after=NOW + datetime.timedelta(days=1),
    )


def _leaf(expected: lintgate.Expected, **changes: object) -> x509.Certificate:
    kwargs: dict[str, object] = {
        "subject": expected.subject,
        "public_key": expected.public_key,
        "sans": expected.sans,
        "issuer": CA,
        "issuer_key": CA_KEY,
        "serial": expected.serial,
        "not_before": expected.not_before,
        "not_after": expected.not_after,
    }
    profile = changes.pop("profile", expected.profile)
    kwargs.update(changes)
    return profiles.build_certificate(profile, **kwargs)  # type: ignore[arg-type]


def test_a_certificate_exactly_as_requested_has_no_findings() -> None:
    expected = _expected(serials.new_serial())
    assert lintgate.structural_findings(_leaf(expected), CA, expected) == []


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"sans": (x509.DNSName("evil.example.test"),)}, "subject_alt_name"),
        ({"public_key": OTHER_KEY.public_key()}, "public_key"),
        ({"serial": 12345}, "serial"),
        ({"subject": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "x")])}, "subject"),
        ({"not_after": NOW + datetime.timedelta(days=2)}, "validity"),
        (
            {
                "profile": dataclasses.replace(profiles.TLS_SERVER, is_ca=True, path_length=0),
                "subject": x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "a CA")]),
            },
            "basic_constraints",
        ),
        (
            {"profile": dataclasses.replace(
                profiles.TLS_SERVER, key_usages=frozenset({"digital_signature", "key_cert_sign"})
            )},
            "key_usage",
        ),
        (
            {"profile": dataclasses.replace(profiles.TLS_SERVER, extended_key_usages=())},
            "extended_key_usage",
        ),
    ],
)  # fmt: skip
def test_a_certificate_that_differs_from_the_request_is_flagged(
    changes: dict[str, object], code: str
) -> None:
    expected = _expected(serials.new_serial())
    findings = lintgate.structural_findings(_leaf(expected, **changes), CA, expected)
    assert code in {f.code for f in lintgate.blocking(findings)}


def test_a_signature_by_another_key_is_flagged() -> None:
    expected = _expected(serials.new_serial())
    other_ca = profiles.build_certificate(
        profiles.ROOT_CA,
        subject=CA.subject,  # same name, other key: only the signature check can tell
        public_key=OTHER_KEY.public_key(),
        sans=(),
        issuer=None,
        issuer_key=OTHER_KEY,
        serial=serials.new_serial(),
        not_before=NOW,
        not_after=NOW + datetime.timedelta(days=30),
    )
    forged = _leaf(expected, issuer=other_ca, issuer_key=OTHER_KEY)
    codes = {f.code for f in lintgate.structural_findings(forged, CA, expected)}
    assert "signature" in codes


def test_pkilint_passes_a_good_leaf_and_fails_one_without_key_usage_bits() -> None:
    expected = _expected(serials.new_serial())
    good = _leaf(expected).public_bytes(serialization.Encoding.DER)
    bad = _leaf(
        expected, profile=dataclasses.replace(profiles.TLS_SERVER, key_usages=frozenset())
    ).public_bytes(serialization.Encoding.DER)
    assert lintgate.blocking(lintgate.pkilint_findings(good, cabf_serverauth=False)) == []
    assert {f.code for f in lintgate.blocking(lintgate.pkilint_findings(bad, False))} == {
        "pkix.no_ku_bits_set"
    }


def test_cabf_mode_applies_the_ca_browser_forum_validators() -> None:
    """With `lint.cabf_serverauth`, tls-server leaves are held to the CA/B Forum TLS BRs.
    The certificatePolicies finding is waived for a private CA (padlock.pki.lint), but a leaf
    without AIA (BR §7.1.2.7.7) is still refused: the switch is off by default."""
    expected = _expected(serials.new_serial())
    der = _leaf(expected).public_bytes(serialization.Encoding.DER)
    findings = lintgate.pkilint_findings(der, True)
    codes = {f.code for f in lintgate.blocking(findings)}
    assert "cabf.serverauth.subscriber.authority_info_access_extension_absent" in codes
    waived = {f.code for f in findings if f.waiver}
    assert "cabf.serverauth.subscriber.certificate_policies_extension_absent" in waived


def test_pkilint_false_positives_are_waived_not_blocking() -> None:
    """pkilint refuses single-label cluster names and wildcards; padlock's own name check
    accepts them, so the gate waives (and records) the finding instead of refusing."""
    expected = _expected(serials.new_serial())
    expected = dataclasses.replace(
        expected, sans=(x509.DNSName("web"), x509.DNSName("*.web.example.internal"))
    )
    der = _leaf(expected).public_bytes(serialization.Encoding.DER)
    findings = lintgate.pkilint_findings(der, cabf_serverauth=False)
    assert lintgate.blocking(findings) == []
    assert {f.code for f in findings if f.waiver} == {"pkix.invalid_domain_name_syntax"}
