"""CA errors → HTTP statuses and `{"error": code, "message": ...}` bodies, in one table.

Called by the error middleware of `padlock.services.ca_http.app`. The statuses are part of the
JSON contract (`padlock.ca.client` sorts them into retryable and permanent):

- 400: malformed input or a policy refusal; the request must change. Codes
  `malformed-json`, `missing-field`, `invalid-field`, `unknown-field`, `body-too-large`,
  `unknown-profile`, `invalid-serial`, `invalid-reason`, `invalid-lifetime`, and every
  `padlock.pki.errors.Code` (`weak-key`, `no-san`, `lifetime-too-long`, ...).
- 404 `unknown-serial`: revoking a serial this CA never issued.
- 409 `idempotency-conflict`: idempotency key reused for a different request.
- 422 `lint-failed`: the request passed policy but the signed certificate failed the lint
  gate and was not released (a CA profile bug: retrying does not help). `findings` lists why.
- 429 `rate-limited`: the requester's token bucket is empty; `Retry-After` says when to retry.
- 503 `hsm-unavailable` / `ledger-unavailable` / `lint-unavailable`: HSM session lost
  (reconnecting), ledger unreachable, or the pkilint worker holding the certificate died
  (being replaced); nothing was released; retry.
- 500 `internal-error`: a bug; logged with a traceback.

Policy refusals are 400, not 422: a client cannot tell "malformed" from "refused" by status
anyway, and both are permanent; the `error` code says which.
"""

from __future__ import annotations

import math

from aiohttp import web

from padlock.ca import errors, lintpool

STATUS: dict[type[errors.CAError], int] = {
    errors.BadRequest: 400,
    errors.UnknownSerial: 404,
    errors.IdempotencyConflict: 409,
    errors.LintRefused: 422,
    errors.HsmUnavailable: 503,
    errors.LedgerUnavailable: 503,
    lintpool.LintUnavailable: 503,
}


class RateLimited(errors.CAError):
    """The requester's bucket is empty; retry after `retry_after` seconds."""

    code = "rate-limited"

    def __init__(self, requester: str, retry_after: float) -> None:
        super().__init__(
            f"requester {requester!r} is over its rate limit; retry in {retry_after:.2f}s"
        )
        self.retry_after = retry_after


def status_of(exc: errors.CAError) -> int:
    if isinstance(exc, RateLimited):
        return 429
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_response(exc: errors.CAError) -> web.Response:
    """The JSON error body for `exc`, with its status (and Retry-After for 429)."""
    status = status_of(exc)
    headers = {}
    if isinstance(exc, RateLimited):
        # RFC 9110 §10.2.3: delay-seconds, an integer; round up so a retry is never early.
        headers["Retry-After"] = str(max(1, math.ceil(exc.retry_after)))
    body: dict[str, object] = {"error": exc.code, "message": exc.message}
    if isinstance(exc, errors.LintRefused):
        body["findings"] = exc.findings
    return web.json_response(body, status=status, headers=headers)
