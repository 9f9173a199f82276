"""Jobs for tests/unit/ca/test_lintpool.py, in their own module: a pool's workers import their
job by name, and should not import a test module (and pytest) to do so."""

from __future__ import annotations

import os
import time
from typing import Any

WARMED: list[int] = []
"""Filled by `warm_up` in a worker process (empty in the test process)."""


def nothing() -> None:
    """A warm-up that costs nothing, so a test pool starts in milliseconds."""


def warm_up() -> None:
    WARMED.append(os.getpid())


def fail_warm_up() -> None:
    raise RuntimeError("this worker cannot warm up")


def echo(der: bytes, flag: bool) -> tuple[bytes, bool, int]:
    """What the worker got, and its pid. `b"hang"` blocks for a minute (to be killed while
    it holds a batch), `b"slow"` for a moment, `b"raise"` raises."""
    if der == b"hang":
        time.sleep(60)
    if der == b"slow":
        time.sleep(0.3)
    if der == b"raise":
        raise ValueError("cannot parse this certificate")
    return der, flag, os.getpid()


def warmed(der: bytes, flag: bool) -> list[int]:
    """The pids `warm_up` recorded in this worker before the job ran."""
    return list(WARMED)


def hang(der: bytes, flag: bool) -> list[Any]:
    """A lint job that never answers in time (tests kill the worker holding it)."""
    time.sleep(60)
    return []


def hang_warm_up() -> None:
    """A warm-up that does not finish in time."""
    time.sleep(60)
