"""The rate-limit table CA workers share: the configured rate is the total over all of them.

Two `SharedRateLimiter`s on one file behave like two worker processes (each opens the file
itself, so they lock and map it independently, exactly as separate processes do).
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from padlock.services.ca_http import ratelimit


@dataclasses.dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


def _pair(
    path: Path, clock: FakeClock, rate: float, burst: int
) -> tuple[ratelimit.SharedRateLimiter, ratelimit.SharedRateLimiter]:
    return (
        ratelimit.SharedRateLimiter(path, rate, burst, clock),
        ratelimit.SharedRateLimiter(path, rate, burst, clock),
    )


def test_two_workers_share_one_bucket_per_requester(tmp_path: Path) -> None:
    clock = FakeClock()
    a, b = _pair(tmp_path / "rl", clock, rate=1, burst=4)
    granted = [w.acquire("ns/app") == 0.0 for w in (a, b, a, b, a, b)]
    assert granted == [True, True, True, True, False, False]
    clock.now += 1.0  # one token refilled, for either worker
    assert b.acquire("ns/app") == 0.0
    assert a.acquire("ns/app") == pytest.approx(1.0)


def test_shared_buckets_are_per_requester(tmp_path: Path) -> None:
    clock = FakeClock()
    a, b = _pair(tmp_path / "rl", clock, rate=1, burst=1)
    assert a.acquire("x") == 0.0
    assert b.acquire("y") == 0.0
    assert b.acquire("x") == pytest.approx(1.0)


def test_more_requesters_than_slots_each_get_their_burst_once_idle_buckets_are_reused(
    tmp_path: Path,
) -> None:
    clock = FakeClock()
    limiter = ratelimit.SharedRateLimiter(tmp_path / "rl", 10, 2, clock)
    # More requesters than slots: each one's bucket is full again after burst/rate = 0.2 s.
    for n in range(ratelimit.SLOTS + 100):
        clock.now += 0.001
        assert limiter.acquire(f"req-{n}") == 0.0
    clock.now += 1.0
    assert [limiter.acquire("req-0") for _ in range(3)][:2] == [0.0, 0.0]


def test_a_new_worker_sees_the_buckets_already_spent(tmp_path: Path) -> None:
    """A replaced worker maps the same file: a restart does not refill anyone's bucket."""
    clock = FakeClock()
    first = ratelimit.SharedRateLimiter(tmp_path / "rl", 1, 2, clock)
    assert [first.acquire("r") for _ in range(2)] == [0.0, 0.0]
    first.close()
    replacement = ratelimit.SharedRateLimiter(tmp_path / "rl", 1, 2, clock)
    assert replacement.acquire("r") == pytest.approx(1.0)
