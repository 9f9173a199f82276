"""The one error type for refused CSRs and issuance requests, with machine-readable codes.

Raised by `padlock.pki.csr`, `padlock.pki.names` and `padlock.pki.policy`; the CA turns it into
an HTTP 4xx body `{"code": ..., "message": ...}` and the operator copies both into the
Certificate's `Ready=False` condition (reason = code), so users and alerts can match on codes.
"""

from __future__ import annotations

import enum


class Code(enum.StrEnum):
    """Why a request was refused. Values are stable: they appear in API responses."""

    CSR_MALFORMED = "csr-malformed"
    CSR_SIGNATURE_INVALID = "csr-signature-invalid"
    WEAK_SIGNATURE = "weak-signature"
    WEAK_KEY = "weak-key"
    KEY_NOT_ALLOWED = "key-not-allowed"
    PROFILE_NOT_ALLOWED = "profile-not-allowed"
    NO_SAN = "no-san"
    UNSUPPORTED_SAN = "unsupported-san"
    INVALID_DNS_NAME = "invalid-dns-name"
    INVALID_WILDCARD = "invalid-wildcard"
    INVALID_IDNA = "invalid-idna"
    INVALID_IP = "invalid-ip"
    INVALID_URI = "invalid-uri"
    INVALID_EMAIL = "invalid-email"
    INVALID_SPIFFE_ID = "invalid-spiffe-id"
    INVALID_COMMON_NAME = "invalid-common-name"
    COMMON_NAME_NOT_IN_SAN = "common-name-not-in-san"
    SVID_NEEDS_ONE_URI = "svid-needs-one-uri"
    INVALID_LIFETIME = "invalid-lifetime"
    LIFETIME_TOO_LONG = "lifetime-too-long"
    LIFETIME_EXCEEDS_ISSUER = "lifetime-exceeds-issuer"
    NAME_NOT_PERMITTED = "name-not-permitted"
    NAME_EXCLUDED = "name-excluded"


class PolicyError(ValueError):
    """A request padlock refuses to sign. Final, not retryable: the input must change."""

    def __init__(self, code: Code, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __repr__(self) -> str:
        return f"PolicyError(code={self.code.value!r}, message={self.message!r})"

    def as_dict(self) -> dict[str, str]:
        """The JSON body the CA returns and the operator records."""
        return {"code": self.code.value, "message": self.message}
