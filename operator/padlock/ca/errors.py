"""Why the CA refused or could not serve a request: one class per answer a client can act on.

Raised by `padlock.ca.pipeline`, `padlock.ca.revocation` and `padlock.ca.hsm`; mapped to HTTP
statuses in exactly one place (`padlock.services.ca_http.errors`). Every error carries a
stable, machine-readable `code` (hyphenated, like `padlock.pki.errors.Code`) and an exact
message; the operator copies both into the Certificate's Ready condition.
"""

from __future__ import annotations


class CAError(Exception):
    """Base of the CA's deliberate errors."""

    code = "ca-error"

    def __init__(self, message: str, code: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code

    def __str__(self) -> str:
        return self.message


class BadRequest(CAError):
    """The request is malformed or refused by policy; it must change before a retry.

    `code` is one of ours (`malformed-json`, `missing-field`, `body-too-large`,
    `unknown-profile`, ...) or a `padlock.pki.errors.Code` value (`weak-key`, `no-san`, ...).
    """

    code = "bad-request"


class IdempotencyConflict(CAError):
    """The idempotency key was already used for a different request (other key or names)."""

    code = "idempotency-conflict"


class LintRefused(CAError):
    """The signed certificate failed the lint gate and was not released (nor recorded)."""

    code = "lint-failed"

    def __init__(self, message: str, findings: list[dict[str, str]]) -> None:
        super().__init__(message)
        self.findings = findings


class HsmUnavailable(CAError):
    """The token session is gone; the CA is reconnecting. Retry later."""

    code = "hsm-unavailable"


class LedgerUnavailable(CAError):
    """The ledger database cannot be reached or written; nothing was released. Retry later."""

    code = "ledger-unavailable"


class UnknownSerial(CAError):
    """This CA never issued a certificate with that serial."""

    code = "unknown-serial"
