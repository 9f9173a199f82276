"""RFC 5280 §5.3.1 CRLReason: the revocation reason names users write and the codes the CA signs.

Called by `padlock.api.revocation` (the `reason` enum of a RevocationRequest), by the CA when it
puts the reasonCode extension into a CRL entry or an OCSP response (RFC 6960 §4.2.1
`revocationReason`), and by the ledger when it stores the code.
"""

from __future__ import annotations

import enum


class RevocationReason(enum.StrEnum):
    """CRLReason ::= ENUMERATED (RFC 5280 §5.3.1). The value is the ASN.1 identifier."""

    UNSPECIFIED = "unspecified"
    KEY_COMPROMISE = "keyCompromise"
    CA_COMPROMISE = "cACompromise"
    AFFILIATION_CHANGED = "affiliationChanged"
    SUPERSEDED = "superseded"
    CESSATION_OF_OPERATION = "cessationOfOperation"
    CERTIFICATE_HOLD = "certificateHold"
    # value 7 is not used (RFC 5280 §5.3.1)
    REMOVE_FROM_CRL = "removeFromCRL"
    PRIVILEGE_WITHDRAWN = "privilegeWithdrawn"
    AA_COMPROMISE = "aACompromise"

    @property
    def code(self) -> int:
        """The integer CRLReason code, e.g. keyCompromise → 1."""
        return CODES[self]

    @classmethod
    def from_code(cls, code: int) -> RevocationReason:
        """The reason for a CRLReason code; ValueError for 7 (unused) or out of range."""
        for reason, value in CODES.items():
            if value == code:
                return reason
        raise ValueError(
            f"{code} is not an RFC 5280 CRLReason code (0-6 and 8-10 are defined; 7 is unused)"
        )


CODES: dict[RevocationReason, int] = {
    RevocationReason.UNSPECIFIED: 0,
    RevocationReason.KEY_COMPROMISE: 1,
    RevocationReason.CA_COMPROMISE: 2,
    RevocationReason.AFFILIATION_CHANGED: 3,
    RevocationReason.SUPERSEDED: 4,
    RevocationReason.CESSATION_OF_OPERATION: 5,
    RevocationReason.CERTIFICATE_HOLD: 6,
    RevocationReason.REMOVE_FROM_CRL: 8,
    RevocationReason.PRIVILEGE_WITHDRAWN: 9,
    RevocationReason.AA_COMPROMISE: 10,
}

# Reasons a RevocationRequest may ask for. removeFromCRL is left out: RFC 5280 §5.3.1 says it
# is used only in delta CRLs, to take a certificateHold entry off again; it never revokes.
REQUESTABLE: tuple[RevocationReason, ...] = tuple(
    r for r in RevocationReason if r is not RevocationReason.REMOVE_FROM_CRL
)
