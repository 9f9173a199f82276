"""When to renew, and how long to wait after a failure: pure arithmetic over `now`.

Called by `padlock.controllers.issuing` (status.renewalTime, retry delays) and the renewal
scheduler. Renewal time = notAfter - renewBefore - jitter, where the jitter is a deterministic
fraction (from the Certificate's uid) of up to 10% of the renewal window, so a thousand
Certificates created together do not all renew in the same second (DESIGN.md).
"""

from __future__ import annotations

import datetime
import hashlib

from padlock.api import certificate as api

JITTER_FRACTION = 0.10
BACKOFF_BASE_SECONDS = 5.0
BACKOFF_CAP_SECONDS = 300.0


def jitter_fraction(uid: str) -> float:
    """A stable number in [0, 1) derived from `uid`."""
    digest = hashlib.sha256(uid.encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def renewal_time(
    spec: api.CertificateSpec,
    uid: str,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
) -> datetime.datetime:
    """notAfter - renewBefore - jitter, strictly after notBefore.

    The jitter takes at most half of the slack between notBefore and notAfter - renewBefore,
    so a renewBefore close to the lifetime still leaves time after issuance. When the issuer
    granted less than renewBefore (no slack at all), the default point (2/3 of the lifetime)
    is used instead: renewing at notBefore would renew in a loop.
    """
    lifetime = not_after - not_before
    window = spec.renew_before_for(lifetime)
    if window >= lifetime:
        window = lifetime * api.DEFAULT_RENEW_BEFORE_FRACTION
    slack = lifetime - window
    jitter = min(window * (JITTER_FRACTION * jitter_fraction(uid)), slack / 2)
    # Whole seconds: the status field (RFC 3339, seconds) and the scheduler agree exactly.
    return (not_after - window - jitter).replace(microsecond=0)


def backoff_seconds(failed_attempts: int) -> float:
    """Capped exponential back-off: 5 s, 10 s, 20 s, ... at most 5 minutes."""
    exponent = max(0, failed_attempts - 1)
    return min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * 2.0 ** min(exponent, 16))
