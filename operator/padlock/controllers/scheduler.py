"""One renewal scheduler for all Certificates: a heap of renewal times and one asyncio task.

Called by the certificate controller (`schedule` after each reconciliation, `cancel` on
deletion) and started/stopped by the operator's startup/cleanup handlers. When a renewal time
comes, the scheduler calls `due(key, when)` once; the operator's `due` sets an annotation on
the Certificate so the ordinary kopf update handler renews it, with kopf's retries. This
replaces a timer per object (kopf `docs/timers.rst`, "System resources": one task per object
and a PATCH per tick) with one sleeping task, whatever the number of Certificates.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime
import heapq
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)

Key = tuple[str, str]  # (namespace, name)
Clock = Callable[[], datetime.datetime]


def utcnow() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class RenewalScheduler:
    """Latest `schedule()` per key wins; stale heap entries are skipped when popped."""

    def __init__(
        self,
        due: Callable[[Key, datetime.datetime], Awaitable[None]],
        *,
        clock: Clock = utcnow,
        max_sleep: float = 300.0,
    ) -> None:
        self._due = due
        self._clock = clock
        self._max_sleep = max_sleep
        self._heap: list[tuple[datetime.datetime, Key]] = []
        self._wanted: dict[Key, datetime.datetime] = {}
        self._changed = asyncio.Event()

    def __len__(self) -> int:
        return len(self._wanted)

    def when(self, key: Key) -> datetime.datetime | None:
        return self._wanted.get(key)

    def schedule(self, key: Key, when: datetime.datetime) -> None:
        if self._wanted.get(key) == when:
            return
        self._wanted[key] = when
        heapq.heappush(self._heap, (when, key))
        self._changed.set()

    def cancel(self, key: Key) -> None:
        self._wanted.pop(key, None)

    def pop_due(self) -> list[tuple[Key, datetime.datetime]]:
        """Remove and return every entry whose time has come (skipping stale ones)."""
        now = self._clock()
        ready: list[tuple[Key, datetime.datetime]] = []
        while self._heap and self._heap[0][0] <= now:
            when, key = heapq.heappop(self._heap)
            if self._wanted.get(key) == when:
                del self._wanted[key]
                ready.append((key, when))
        return ready

    def seconds_to_next(self) -> float:
        while self._heap and self._wanted.get(self._heap[0][1]) != self._heap[0][0]:
            heapq.heappop(self._heap)  # drop stale heads so they do not wake us
        if not self._heap:
            return self._max_sleep
        delta = (self._heap[0][0] - self._clock()).total_seconds()
        return max(0.0, min(self._max_sleep, delta))

    async def run(self) -> None:
        """Sleep until the next renewal time (or a new schedule), fire what is due; forever."""
        while True:
            for key, when in self.pop_due():
                try:
                    await self._due(key, when)
                except Exception:
                    # The next reconciliation (resume, update) schedules it again.
                    log.exception("renewal trigger for %s/%s failed", *key)
            self._changed.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._changed.wait(), timeout=self.seconds_to_next())
