"""The renewal scheduler: one heap, the latest schedule per Certificate wins."""

from __future__ import annotations

import asyncio
import datetime

from padlock.controllers.scheduler import RenewalScheduler

from .conftest import NOW, Clock


async def _ignore(key: tuple[str, str], when: datetime.datetime) -> None:
    return None


def test_only_due_entries_pop_and_a_reschedule_replaces_the_old_time() -> None:
    clock = Clock()
    scheduler = RenewalScheduler(_ignore, clock=clock)
    hour = datetime.timedelta(hours=1)
    scheduler.schedule(("ns", "a"), NOW + hour)
    scheduler.schedule(("ns", "b"), NOW + 2 * hour)
    scheduler.schedule(("ns", "a"), NOW + 3 * hour)  # spec changed: renew later
    assert scheduler.pop_due() == []
    clock.advance(2 * hour)
    assert scheduler.pop_due() == [(("ns", "b"), NOW + 2 * hour)]
    clock.advance(hour)
    assert scheduler.pop_due() == [(("ns", "a"), NOW + 3 * hour)]
    assert len(scheduler) == 0


def test_cancelled_entries_never_fire_and_do_not_shorten_the_sleep() -> None:
    clock = Clock()
    scheduler = RenewalScheduler(_ignore, clock=clock, max_sleep=600)
    scheduler.schedule(("ns", "gone"), NOW + datetime.timedelta(seconds=10))
    scheduler.cancel(("ns", "gone"))
    assert scheduler.seconds_to_next() == 600
    clock.advance(datetime.timedelta(seconds=20))
    assert scheduler.pop_due() == []


async def test_run_fires_each_due_renewal_once() -> None:
    clock = Clock()
    fired: list[tuple[str, str]] = []
    done = asyncio.Event()

    async def due(key: tuple[str, str], when: datetime.datetime) -> None:
        fired.append(key)
        done.set()

    scheduler = RenewalScheduler(due, clock=clock, max_sleep=0.01)
    scheduler.schedule(("ns", "a"), NOW - datetime.timedelta(seconds=1))
    scheduler.schedule(("ns", "b"), NOW + datetime.timedelta(days=1))
    task = asyncio.create_task(scheduler.run())
    await asyncio.wait_for(done.wait(), timeout=5)
    await asyncio.sleep(0.05)  # a few more loop turns: nothing else is due
    task.cancel()
    assert fired == [("ns", "a")]
