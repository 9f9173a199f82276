"""Benchmark: how late a SQLite writer gets the write lock after another process releases it.

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_sqlite_writers.py`);
prints a Markdown section. Several CA worker processes (`padlock ca serve` with `workers` > 1)
write one SQLite ledger; each write transaction starts with BEGIN IMMEDIATE. A second process
holds the write lock for H ms (a group commit's transaction), and this process asks for it
meanwhile, either through SQLite's own busy handler (busy_timeout: sleeps 1, 2, 5, 10, 15,
20, 25 ... ms between tries) or through `padlock.ledger.engine` (retries every 0.1 ms growing
to 1 ms). The figure is the lag between the holder's COMMIT and our BEGIN returning: time the
lock sits free while a writer waits. It depends on sleep granularity, not CPU speed, so it is
stable on a busy machine.
"""

from __future__ import annotations

import multiprocessing
import os
import pathlib
import sqlite3
import sys
import tempfile
import time
from multiprocessing.synchronize import Event
from typing import Any

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "operator"), str(REPO)]

from padlock.ledger import engine as engines  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_SQLITE_ROUNDS", "30"))
HOLDS_MS = (2, 4, 12)


def _holder(path: str, hold: float, go: Event, held: Event, released: Any, rounds: int) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    for _ in range(rounds):
        go.wait()
        go.clear()
        conn.execute("BEGIN IMMEDIATE")
        held.set()
        time.sleep(hold)
        conn.execute("COMMIT")
        released.value = time.monotonic()


def measure(path: str, how: str, hold_ms: int) -> list[float]:
    ctx = multiprocessing.get_context("spawn")
    go, held = ctx.Event(), ctx.Event()
    released = ctx.Value("d", 0.0)
    proc = ctx.Process(target=_holder, args=(path, hold_ms / 1000, go, held, released, ROUNDS))
    proc.start()
    raw = sqlite3.connect(path, isolation_level=None, timeout=30)
    engine = engines.create_engine(f"sqlite:///{path}")
    lags = []
    for _ in range(ROUNDS):
        held.clear()
        go.set()
        held.wait()
        if how == "busy handler":
            raw.execute("BEGIN IMMEDIATE")
            got = time.monotonic()
            raw.execute("COMMIT")
        else:
            with engine.connect() as connection:
                connection.execution_options(**{engines.WRITE_OPTION: True})
                with connection.begin():
                    got = time.monotonic()
        lags.append((got - released.value) * 1000)
    proc.join()
    raw.close()
    engine.dispose()
    return sorted(lags)


def main() -> None:
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = str(pathlib.Path(tmp) / "ledger.db")
        init = sqlite3.connect(path, isolation_level=None)
        init.execute("PRAGMA journal_mode=WAL")
        init.close()
        for how in ("busy handler", "padlock.ledger.engine"):
            for hold in HOLDS_MS:
                lags = measure(path, how, hold)
                rows.append((how, hold, lags[len(lags) // 2], lags[int(len(lags) * 0.9)]))
    print("### SQLite: write-lock hand-over between processes\n")
    print(f"`.venv/bin/python bench/bench_sqlite_writers.py` ({ROUNDS} hand-overs per row)\n")
    print("| waiting in | lock held ms | p50 lag after release ms | p90 lag ms |")
    print("|---|---:|---:|---:|")
    for how, hold, p50, p90 in rows:
        print(f"| {how} | {hold} | {p50:.2f} | {p90:.2f} |")
    print()


if __name__ == "__main__":
    main()
