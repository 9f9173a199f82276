"""SQLite writers wait for the write lock in a short-sleep loop, not SQLite's busy handler.

Several CA worker processes write one SQLite file: `padlock.ledger.engine` retries
`BEGIN IMMEDIATE` every 0.1-1 ms while another connection (here a raw sqlite3 one, as another
process would be) holds the lock, and leaves the connection's busy_timeout as it found it.

These tests assert what the loop does (how many tries, which sleeps it asks for, in which
order the lock changes hands), not how late it wakes: wall-clock lag depends on the machine's
load. The lag itself (loop vs. busy handler) is measured by bench/bench_sqlite_writers.py.
"""

from __future__ import annotations

import sqlite3
import threading
import time
import types
from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy import event

from padlock.ledger import engine as engines


def _engine(path: Path) -> sa.Engine:
    eng = engines.create_engine(f"sqlite:///{path}")
    with eng.connect() as connection, connection.begin():
        connection.exec_driver_sql("CREATE TABLE t (x INTEGER)")
    return eng


def _holder(path: Path) -> sqlite3.Connection:
    other = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN IMMEDIATE")
    return other


def _write(eng: sa.Engine) -> int:
    """One write transaction; the busy_timeout in force inside it."""
    with eng.connect() as connection:
        connection.execution_options(**{engines.WRITE_OPTION: True})
        with connection.begin():
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            timeout: int = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
            return timeout


def _trace_statements(eng: sa.Engine, into: list[str]) -> None:
    """Record every statement SQLite starts on the engine's new connections (one entry per
    `sqlite3_step` start: a retry inside SQLite's busy handler would not add one)."""

    def on_connect(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.set_trace_callback(into.append)

    eng.dispose()  # connections made from now on are traced
    event.listen(eng, "connect", on_connect)


def test_a_waiting_writer_retries_begin_immediate_itself_every_millisecond_at_most(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The other connection commits during the writer's 5th sleep; the writer's 6th
    `BEGIN IMMEDIATE` takes the lock. With SQLite's busy handler there is one `BEGIN
    IMMEDIATE`, no sleep through the engine, the lock is never released, and the write fails
    with 'database is locked' after the (shortened) timeout."""
    monkeypatch.setattr(engines, "SQLITE_BUSY_TIMEOUT_MS", 5_000)
    eng = _engine(tmp_path / "l.db")
    statements: list[str] = []
    _trace_statements(eng, statements)
    other = _holder(tmp_path / "l.db")
    sleeps: list[float] = []
    events: list[str] = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        events.append("sleep")
        if len(sleeps) == 5:
            other.execute("COMMIT")
            events.append("released")
        time.sleep(seconds)

    monkeypatch.setattr(
        engines, "time", types.SimpleNamespace(monotonic=time.monotonic, sleep=sleep)
    )
    timeout = _write(eng)
    events.append("written")
    other.close()
    eng.dispose()

    tries = [s for s in statements if s == "BEGIN IMMEDIATE"]
    assert len(tries) == 6, statements
    assert events == ["sleep"] * 4 + ["sleep", "released", "written"]
    assert sleeps[0] == pytest.approx(0.0001)
    assert sleeps == sorted(sleeps), "the delay between tries shrank"
    assert max(sleeps) <= 0.001, f"a try waited longer than 1 ms: {sleeps}"
    assert timeout == 5_000  # restored inside the transaction


def test_a_writer_waiting_on_another_connection_writes_once_that_connection_commits(
    tmp_path: Path,
) -> None:
    """Real threads, no seam: the write goes through only after the other connection's
    COMMIT, and the connection's busy_timeout is back to its set value inside the write."""
    eng = _engine(tmp_path / "l.db")
    other = _holder(tmp_path / "l.db")
    released = threading.Event()

    def release() -> None:
        time.sleep(0.04)  # the writer is waiting by then (or still starting: same outcome)
        released.set()
        other.execute("COMMIT")

    thread = threading.Thread(target=release)
    thread.start()
    timeout = _write(eng)
    assert released.is_set(), "the write went through while the other connection held the lock"
    thread.join()
    other.close()
    with eng.connect() as connection:
        assert connection.exec_driver_sql("SELECT count(*) FROM t").scalar_one() == 1
    eng.dispose()
    assert timeout == engines.SQLITE_BUSY_TIMEOUT_MS


def test_a_lock_held_past_the_timeout_fails_with_database_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = _engine(tmp_path / "l.db")
    other = _holder(tmp_path / "l.db")
    monkeypatch.setattr(engines, "SQLITE_BUSY_TIMEOUT_MS", 50)
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="database is locked"):
        _write(eng)
    assert time.monotonic() - started < 5  # 50 ms asked; 100 times that for a loaded machine
    with eng.connect() as connection:
        busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    assert busy == 50  # restored after the failed try
    other.close()
    eng.dispose()
