"""SQLite writers wait for the write lock in a short-sleep loop, not SQLite's busy handler.

Several CA worker processes write one SQLite file: `padlock.ledger.engine` retries
`BEGIN IMMEDIATE` every 0.1-1 ms while another connection (here a raw sqlite3 one, as another
process would be) holds the lock, and leaves the connection's busy_timeout as it found it.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

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
    with eng.connect() as connection:
        connection.execution_options(**{engines.WRITE_OPTION: True})
        with connection.begin():
            connection.exec_driver_sql("INSERT INTO t VALUES (1)")
            timeout: int = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
            return timeout


def _lag_after_release(eng: sa.Engine, path: Path, hold: float) -> float:
    """Seconds between another connection's COMMIT and our write getting the lock."""
    other = _holder(path)
    released: list[float] = []

    def release() -> None:
        time.sleep(hold)
        released.append(time.monotonic())
        other.execute("COMMIT")

    thread = threading.Thread(target=release)
    thread.start()
    timeout = _write(eng)
    got = time.monotonic()
    thread.join()
    other.close()
    assert released, "the write went through while the other connection held the lock"
    assert timeout == engines.SQLITE_BUSY_TIMEOUT_MS  # restored inside the transaction
    return got - released[0]


def test_a_writer_gets_the_lock_soon_after_another_connection_releases_it(
    tmp_path: Path,
) -> None:
    eng = _engine(tmp_path / "l.db")
    lags = sorted(_lag_after_release(eng, tmp_path / "l.db", 0.04) for _ in range(5))
    eng.dispose()
    # SQLite's busy handler tries after 1, 3, 8, 18, 33, 53 ms: a lock released at 40 ms is
    # taken at 53 ms, 13 ms late. The loop retries at least every millisecond.
    assert lags[2] < 0.006, lags


def test_a_lock_held_past_the_timeout_fails_with_database_is_locked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    eng = _engine(tmp_path / "l.db")
    other = _holder(tmp_path / "l.db")
    monkeypatch.setattr(engines, "SQLITE_BUSY_TIMEOUT_MS", 50)
    started = time.monotonic()
    with pytest.raises(sa.exc.OperationalError, match="database is locked"):
        _write(eng)
    assert time.monotonic() - started < 5
    with eng.connect() as connection:
        busy = connection.exec_driver_sql("PRAGMA busy_timeout").scalar_one()
    assert busy == 50  # restored after the failed try
    other.close()
    eng.dispose()
