"""padlock.api.reasons: RFC 5280 §5.3.1 CRLReason names and codes."""

from __future__ import annotations

import pytest
from cryptography import x509

from padlock.api.reasons import CODES, REQUESTABLE, RevocationReason

# RFC 5280 §5.3.1, as written in the ASN.1 module.
RFC5280 = {
    "unspecified": 0,
    "keyCompromise": 1,
    "cACompromise": 2,
    "affiliationChanged": 3,
    "superseded": 4,
    "cessationOfOperation": 5,
    "certificateHold": 6,
    "removeFromCRL": 8,
    "privilegeWithdrawn": 9,
    "aACompromise": 10,
}


def test_names_and_codes_are_those_of_rfc5280() -> None:
    assert {r.value: r.code for r in RevocationReason} == RFC5280
    assert set(CODES) == set(RevocationReason)


@pytest.mark.parametrize(("name", "code"), sorted(RFC5280.items()))
def test_from_code_inverts_code(name: str, code: int) -> None:
    assert RevocationReason.from_code(code) is RevocationReason(name)


@pytest.mark.parametrize("code", [7, -1, 11])
def test_from_code_refuses_undefined_codes(code: int) -> None:
    with pytest.raises(ValueError, match=f"{code} is not an RFC 5280 CRLReason code"):
        RevocationReason.from_code(code)


def test_codes_match_the_crl_entry_extension_pyca_writes() -> None:
    # cryptography's ReasonFlags spell the same reasons; the CA maps through the code.
    by_code = {
        0: x509.ReasonFlags.unspecified,
        1: x509.ReasonFlags.key_compromise,
        2: x509.ReasonFlags.ca_compromise,
        3: x509.ReasonFlags.affiliation_changed,
        4: x509.ReasonFlags.superseded,
        5: x509.ReasonFlags.cessation_of_operation,
        6: x509.ReasonFlags.certificate_hold,
        8: x509.ReasonFlags.remove_from_crl,
        9: x509.ReasonFlags.privilege_withdrawn,
        10: x509.ReasonFlags.aa_compromise,
    }
    for reason in RevocationReason:
        assert by_code[reason.code].value == reason.value


def test_remove_from_crl_cannot_be_requested() -> None:
    assert RevocationReason.REMOVE_FROM_CRL not in REQUESTABLE
    assert len(REQUESTABLE) == len(RevocationReason) - 1
