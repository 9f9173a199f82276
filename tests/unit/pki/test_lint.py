"""padlock.pki.lint: pkilint findings, and waivers that are re-checked, not blanket."""

from __future__ import annotations

import datetime

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from padlock.pki import lint, profiles
from tests.unit.pki.conftest import NOW, Issued, issue


def der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def test_spiffe_uri_finding_is_waived_because_padlock_checks_it(leaves: dict[str, Issued]) -> None:
    findings = lint.lint_certificate(der(leaves["svid"].cert))
    uri = [f for f in findings if f.code == "pkix.invalid_uri_syntax"]
    assert len(uri) == 1  # pkilint really complains about spiffe://
    assert uri[0].severity == "ERROR"
    assert uri[0].waiver is not None
    assert lint.blocking(findings) == []


def test_wildcard_finding_is_waived_but_still_reported(leaves: dict[str, Issued]) -> None:
    findings = lint.lint_certificate(der(leaves["tls-server"].cert))
    wildcard = [f for f in findings if f.code == "pkix.invalid_domain_name_syntax"]
    assert [f.message for f in wildcard] == ['Invalid domain name syntax: "*.api.padlock.test"']
    assert not wildcard[0].blocking


def test_a_real_error_still_blocks(intermediate: Issued) -> None:
    # RFC 5280 §4.2.1.6: with an empty subject the SAN MUST be critical. The builder cannot
    # make this mistake, so go through cryptography directly.
    key = intermediate.key
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([]))
        .issuer_name(intermediate.cert.subject)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("a.test")]), critical=False)
        .sign(key, profiles.signature_hash(key))
    )
    blocking = lint.blocking(lint.lint_certificate(der(cert)))
    assert {f.code for f in blocking} == {
        "pkix.san_extension_not_critical_empty_subject",
        "pkix.authority_key_identifier_extension_absent",
    }


def test_uri_waiver_does_not_cover_a_broken_spiffe_id(intermediate: Issued) -> None:
    # Built past the policy on purpose: the builder does not re-validate SPIFFE IDs.
    bad = issue(
        profiles.SPIFFE_SVID,
        intermediate,
        sans=[x509.UniformResourceIdentifier("spiffe://TD/x")],
        lifetime=datetime.timedelta(hours=1),
    )
    blocking = lint.blocking(lint.lint_certificate(der(bad.cert)))
    assert [f.code for f in blocking] == ["pkix.invalid_uri_syntax"]


def test_cabf_private_pki_waivers_apply_only_to_their_codes(leaves: dict[str, Issued]) -> None:
    findings = lint.lint_certificate(der(leaves["tls-server"].cert), cabf_serverauth=True)
    cabf = [f for f in findings if f.linter == "cabf-serverauth"]
    assert {f.code for f in cabf if f.waiver} == {
        "cabf.internal_domain_name",
        "cabf.serverauth.subscriber.certificate_policies_extension_absent",
    }
    assert lint.blocking(findings) == []


def test_garbage_der_raises() -> None:
    with pytest.raises(ValueError, match="Substrate is not DER-encoded"):
        lint.lint_certificate(b"not der")
