"""The per-requester token bucket, stepped with a fake clock."""

from __future__ import annotations

import dataclasses

import pytest

from padlock.services.ca_http import ratelimit


@dataclasses.dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def test_bucket_refills_at_the_configured_rate_and_never_above_burst() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(rate=10, burst=2, clock=clock)
    assert [limiter.acquire("x") for _ in range(2)] == [0.0, 0.0]
    assert limiter.acquire("x") == pytest.approx(0.1)
    clock.now += 60  # long idle: still only `burst` tokens
    assert [limiter.acquire("x") for _ in range(3)][2] > 0


def test_requesters_have_separate_buckets() -> None:
    clock = FakeClock()
    limiter = ratelimit.RateLimiter(rate=1, burst=1, clock=clock)
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") == pytest.approx(1.0)
    assert limiter.acquire("b") == 0.0
