"""SQLite connections are set up for durability and integrity (see padlock.ledger.engine)."""

from __future__ import annotations

import pathlib

from padlock.ledger import Ledger, engine


def test_every_sqlite_connection_is_wal_full_sync_with_foreign_keys(tmp_path: pathlib.Path) -> None:
    url = f"sqlite:///{tmp_path / 'nested' / 'ledger.db'}"
    Ledger(url).close()  # creates the parent directory and the schema
    ledger_engine = engine.create_engine(url)
    try:
        with ledger_engine.connect() as connection:
            pragma = connection.exec_driver_sql
            assert pragma("PRAGMA journal_mode").scalar() == "wal"
            assert pragma("PRAGMA synchronous").scalar() == 2  # FULL
            assert pragma("PRAGMA foreign_keys").scalar() == 1
            assert pragma("PRAGMA busy_timeout").scalar() == engine.SQLITE_BUSY_TIMEOUT_MS
    finally:
        ledger_engine.dispose()
