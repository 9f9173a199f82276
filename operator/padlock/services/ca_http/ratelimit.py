"""Per-requester token buckets for `POST /v1/sign` (config `rate_limit`).

Called by `padlock.services.ca_http.handlers` before a sign request reaches the pipeline, so a
runaway requester (a crash-looping controller, a misconfigured SVID agent) cannot starve the
others or fill the ledger. The clock is a seam (`clock`, monotonic seconds) so tests step time
instead of sleeping.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable

# Buckets untouched this long are full again; drop them so the map cannot grow without bound.
_IDLE_SECONDS = 600.0
_SWEEP_EVERY = 1024


@dataclasses.dataclass
class _Bucket:
    tokens: float
    updated: float


class RateLimiter:
    """A token bucket per requester: `burst` tokens, refilled at `rate` tokens per second."""

    def __init__(
        self, rate: float, burst: int, clock: Callable[[], float] = time.monotonic
    ) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError(f"rate must be > 0 and burst >= 1, got rate={rate} burst={burst}")
        self.rate = rate
        self.burst = burst
        self._clock = clock
        self._buckets: dict[str, _Bucket] = {}
        self._calls = 0

    def acquire(self, requester: str) -> float:
        """Take one token for `requester`: 0.0 if granted, else the seconds until one is free."""
        now = self._clock()
        self._calls += 1
        if self._calls % _SWEEP_EVERY == 0:
            self._sweep(now)
        bucket = self._buckets.get(requester)
        if bucket is None:
            bucket = self._buckets[requester] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1.0:
            bucket.tokens -= 1.0
            return 0.0
        return (1.0 - bucket.tokens) / self.rate

    def _sweep(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if now - b.updated > _IDLE_SECONDS]
        for key in idle:
            del self._buckets[key]
