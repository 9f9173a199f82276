"""Per-requester token buckets for `POST /v1/sign` (config `rate_limit`).

Called by `padlock.services.ca_http.handlers` before a sign request reaches the pipeline, so a
runaway requester (a crash-looping controller, a misconfigured SVID agent) cannot starve the
others or fill the ledger. The clock is a seam (`clock`, monotonic seconds) so tests step time
instead of sleeping.

- `RateLimiter`: the buckets in this process's memory (one CA process, `workers: 1`).
- `SharedRateLimiter`: the buckets in a file every CA worker maps (`workers` > 1), so the
  configured rate is the total a requester gets from the CA, whichever worker accepts its
  connection (a keep-alive connection sticks to one worker; dividing the rate by the number
  of workers would cut such a requester to 1/N). Every `acquire` takes an exclusive `flock`
  on the file for a few microseconds. CLOCK_MONOTONIC (`time.monotonic`) is one clock for
  every process of the machine, so the workers' bucket times compare.
"""

from __future__ import annotations

import dataclasses
import fcntl
import hashlib
import mmap
import os
import struct
import time
from collections.abc import Callable
from pathlib import Path

# Buckets untouched this long are full again; drop them so the map cannot grow without bound.
_IDLE_SECONDS = 600.0
_SWEEP_EVERY = 1024


@dataclasses.dataclass
class _Bucket:
    tokens: float
    updated: float


def _take(bucket: _Bucket, now: float, rate: float, burst: int) -> float:
    """Refill `bucket` up to `now` and take one token: 0.0 if granted, else the wait."""
    bucket.tokens = min(burst, bucket.tokens + max(0.0, now - bucket.updated) * rate)
    bucket.updated = max(now, bucket.updated)
    if bucket.tokens >= 1.0:
        bucket.tokens -= 1.0
        return 0.0
    return (1.0 - bucket.tokens) / rate


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
        return _take(bucket, now, self.rate, self.burst)

    def close(self) -> None:
        """Nothing to release for in-memory buckets."""

    def _sweep(self, now: float) -> None:
        idle = [k for k, b in self._buckets.items() if now - b.updated > _IDLE_SECONDS]
        for key in idle:
            del self._buckets[key]


SLOTS = 4096
"""Buckets in the shared file: an open-addressing table keyed by a 64-bit requester hash."""
PROBES = 32
_SLOT = struct.Struct("<Qdd")  # requester hash (0 = empty), tokens, updated


def _requester_hash(requester: str) -> int:
    # The same in every process (Python's hash() of a str differs per process); never 0.
    digest = hashlib.blake2b(requester.encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") or 1


class SharedRateLimiter(RateLimiter):
    """The same buckets, in `path` (created if missing), shared by every process mapping it.

    A bucket idle for `burst / rate` seconds is full again, so its slot is free for another
    requester; only when all `PROBES` slots of a requester's hash are busy refilling does the
    stalest one give way (its requester then starts again from a full bucket). That needs
    thousands of requesters active at once; the table holds `SLOTS` of them.
    """

    def __init__(
        self,
        path: Path,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(rate, burst, clock)
        size = SLOTS * _SLOT.size
        self._fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            try:
                if os.fstat(self._fd).st_size < size:
                    os.ftruncate(self._fd, size)
            finally:
                fcntl.flock(self._fd, fcntl.LOCK_UN)
            self._map = mmap.mmap(self._fd, size)
        except BaseException:
            os.close(self._fd)
            raise
        self._full_after = burst / rate

    def acquire(self, requester: str) -> float:
        key = _requester_hash(requester)
        now = self._clock()
        fcntl.flock(self._fd, fcntl.LOCK_EX)
        try:
            offset = self._slot(key, now)
            stored, tokens, updated = _SLOT.unpack_from(self._map, offset)
            if stored != key:
                tokens, updated = float(self.burst), now
            bucket = _Bucket(tokens, updated)
            wait = _take(bucket, now, self.rate, self.burst)
            _SLOT.pack_into(self._map, offset, key, bucket.tokens, bucket.updated)
            return wait
        finally:
            fcntl.flock(self._fd, fcntl.LOCK_UN)

    def _slot(self, key: int, now: float) -> int:
        """Offset of `key`'s slot: its own, else the first free one, else the stalest."""
        free: int | None = None
        stalest, stalest_at = 0, float("inf")
        start = key % SLOTS
        for probe in range(PROBES):
            offset = ((start + probe) % SLOTS) * _SLOT.size
            stored, _tokens, updated = _SLOT.unpack_from(self._map, offset)
            if stored == key:
                return offset
            if free is None and (stored == 0 or now - updated >= self._full_after):
                free = offset
            if updated < stalest_at:
                stalest, stalest_at = offset, updated
        return stalest if free is None else free

    def close(self) -> None:
        self._map.close()
        os.close(self._fd)
