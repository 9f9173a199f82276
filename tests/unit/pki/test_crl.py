"""padlock.pki.crl: shard CRLs read back by cryptography, openssl and pkilint (RFC 5280 §5)."""

from __future__ import annotations

import datetime
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509

from padlock.pki import crl
from tests.unit.pki.conftest import NOW, Issued

DAY = datetime.timedelta(days=1)
URL = "http://ca.padlock.test/crl/3.crl"
LINT_CRL = [sys.executable, "-m", "pkilint.bin.lint_crl", "lint", "-t", "CRL", "-p", "PKIX"]


def build(intermediate: Issued, entries: list[crl.Entry], **changes: object) -> bytes:
    args: dict[str, object] = {
        "issuer": intermediate.cert,
        "key": intermediate.key,
        "entries": entries,
        "crl_number": 42,
        "this_update": NOW,
        "next_update": NOW + DAY,
        "distribution_point": URL,
    }
    args.update(changes)
    return crl.build_crl(**args)  # type: ignore[arg-type]


def test_crl_carries_number_aki_idp_and_entries_with_reasons(intermediate: Issued) -> None:
    entries = [crl.Entry(5, NOW - DAY, 1), crl.Entry(6, NOW - DAY, 0), crl.Entry(7, NOW, None)]
    parsed = x509.load_der_x509_crl(build(intermediate, entries))
    assert parsed.is_signature_valid(intermediate.cert.public_key())  # type: ignore[arg-type]
    assert parsed.issuer == intermediate.cert.subject
    assert parsed.last_update_utc == NOW and parsed.next_update_utc == NOW + DAY
    assert parsed.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 42
    ski = intermediate.cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    aki = parsed.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ski.digest
    idp = parsed.extensions.get_extension_for_class(x509.IssuingDistributionPoint)
    assert idp.critical
    assert idp.value.full_name == [x509.UniformResourceIdentifier(URL)]
    assert idp.value.only_contains_user_certs
    got = {r.serial_number: r for r in parsed}
    assert set(got) == {5, 6, 7}
    assert got[5].extensions.get_extension_for_class(x509.CRLReason).value.reason is (
        x509.ReasonFlags.key_compromise
    )
    # RFC 5280 §5.3.1: unspecified SHOULD be absent.
    assert len(got[6].extensions) == 0 and len(got[7].extensions) == 0
    assert got[5].revocation_date_utc == NOW - DAY


def test_empty_crl_omits_the_revoked_list(intermediate: Issued) -> None:
    parsed = x509.load_der_x509_crl(build(intermediate, []))
    assert len(parsed) == 0
    assert parsed.is_signature_valid(intermediate.cert.public_key())  # type: ignore[arg-type]


def test_dates_from_2050_use_generalized_time(intermediate: Issued) -> None:
    late = datetime.datetime(2050, 1, 2, tzinfo=datetime.UTC)
    raw = build(intermediate, [crl.Entry(9, late)], this_update=late, next_update=late + DAY)
    assert b"\x18\x0f20500102000000Z" in raw
    assert x509.load_der_x509_crl(raw).last_update_utc == late


def test_bad_inputs_are_refused(intermediate: Issued, root: Issued) -> None:
    with pytest.raises(ValueError, match="nextUpdate"):
        build(intermediate, [], next_update=NOW)
    with pytest.raises(ValueError, match="CRL number"):
        build(intermediate, [], crl_number=-1)


def test_crl_lints_clean_and_openssl_reads_it(intermediate: Issued, tmp_path: Path) -> None:
    path = tmp_path / "shard.crl"
    path.write_bytes(build(intermediate, [crl.Entry(5, NOW - DAY, 1), crl.Entry(6, NOW, 4)]))
    lint = subprocess.run(
        [*LINT_CRL, "-s", "WARNING", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (lint.stdout + lint.stderr).strip() == ""
    text = subprocess.run(
        ["openssl", "crl", "-inform", "DER", "-in", str(path), "-noout", "-text"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "Only User Certificates" in text and URL in text and "Key Compromise" in text
