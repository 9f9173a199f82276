"""Opens the database: SQLite with durable pragmas, or PostgreSQL through psycopg 3.

Called by `padlock.ledger.ledger.Ledger` and `padlock.ledger.verify`. Also owns how a write
transaction starts, because that is what keeps concurrent writers (threads, or the CA and a
CLI in two processes) from interleaving audit appends:

- SQLite: every write transaction opens with `BEGIN IMMEDIATE`, taking the database's single
  write lock up front (https://sqlite.org/lang_transaction.html). A writer that finds the
  lock taken retries every 0.1-1 ms (`_begin_immediate`) instead of waiting in SQLite's busy
  handler, which sleeps 1, 2, 5, 10, 15 ... ms between tries and so took the lock up to 6 ms
  after another process released it (several CA workers on one file; measured in
  docs/design/20261127.ca-workers.md). Reads use a plain deferred `BEGIN` and, in WAL mode,
  never block writers.
- PostgreSQL: every write transaction first locks the one `audit_head` row with
  `SELECT ... FOR UPDATE` (see `ledger.Ledger._write`).

Durability: `journal_mode=WAL` + `synchronous=FULL`. With WAL, NORMAL already survives a
killed process (kill -9) because committed frames are in the WAL file the OS holds; it can
lose the last commits on power loss or a kernel crash. FULL fsyncs the WAL on every commit, so
a certificate the CA has returned is on disk even then. The price is one fsync per issuance,
small next to an HSM signature, and bench/bench_ledger.py measures it.
"""

from __future__ import annotations

import pathlib
import sqlite3
import time
import typing

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine

from padlock.ledger import errors

SQLITE_BUSY_TIMEOUT_MS = 30_000
"""How long a writer waits for SQLite's write lock before failing with 'database is locked'."""

WRITE_OPTION = "padlock_write"
"""Execution option marking a connection whose next transaction will write."""

SQLITE_SYNCHRONOUS = "FULL"


def parse_url(url: str) -> URL:
    """The SQLAlchemy URL padlock will use; ValueError for anything it does not support."""
    try:
        parsed = sa.make_url(url)
    except sa.exc.ArgumentError as error:
        raise ValueError(f"ledger url {url!r} is not a database URL: {error}") from None
    backend = parsed.get_backend_name()
    if backend == "sqlite":
        if parsed.drivername not in ("sqlite", "sqlite+pysqlite"):
            raise ValueError(f"ledger url: SQLite driver {parsed.drivername!r} is not supported")
        if not parsed.database or parsed.database == ":memory:":
            raise ValueError(
                "ledger url: an in-memory SQLite database would vanish with the process and "
                "is not shared between connections; give a file, e.g. sqlite:///.padlock/ledger.db"
            )
        return parsed
    if backend == "postgresql":
        if parsed.drivername == "postgresql":
            return parsed.set(drivername="postgresql+psycopg")
        if parsed.drivername != "postgresql+psycopg":
            raise ValueError(
                f"ledger url: PostgreSQL driver {parsed.drivername!r} is not supported; "
                "use postgresql+psycopg://"
            )
        return parsed
    raise ValueError(
        f"ledger url: backend {backend!r} is not supported; use sqlite:///PATH or "
        "postgresql+psycopg://USER@HOST/DB"
    )


def display_url(url: str | URL) -> str:
    """The URL with any password masked, for messages and logs."""
    parsed = sa.make_url(url) if isinstance(url, str) else url
    return parsed.render_as_string(hide_password=True)


def create_engine(url: str, *, create: bool = True) -> Engine:
    """An engine for the ledger at `url`, with padlock's connection set-up installed.

    create=False (readers): a SQLite file that does not exist is an error, not a new ledger.
    """
    parsed = parse_url(url)
    if parsed.get_backend_name() == "sqlite":
        assert parsed.database is not None  # parse_url refused the rest
        path = pathlib.Path(parsed.database)
        if not create and not path.is_file():
            raise errors.LedgerError(f"no ledger database at {path.resolve()}")
        path.parent.mkdir(parents=True, exist_ok=True)
        engine = sa.create_engine(parsed, connect_args={"timeout": SQLITE_BUSY_TIMEOUT_MS / 1000})
        event.listen(engine, "connect", _sqlite_on_connect)
        event.listen(engine, "begin", _sqlite_on_begin)
        return engine
    return sa.create_engine(parsed, pool_pre_ping=True)


def is_sqlite(connection: Connection | Engine) -> bool:
    return connection.dialect.name == "sqlite"


def _sqlite_on_connect(dbapi_connection: typing.Any, _record: typing.Any) -> None:
    # Let padlock issue BEGIN itself (the pysqlite driver would otherwise begin lazily, at the
    # first write, too late for BEGIN IMMEDIATE). SQLAlchemy documents this recipe under
    # "Serializable isolation / Savepoints / Transactional DDL" for pysqlite.
    dbapi_connection.isolation_level = None
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        mode = cursor.fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"SQLite refused journal_mode=WAL (got {mode!r})")
        cursor.execute(f"PRAGMA synchronous={SQLITE_SYNCHRONOUS}")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
    finally:
        cursor.close()


def _sqlite_on_begin(connection: Connection) -> None:
    if connection.get_execution_options().get(WRITE_OPTION):
        _begin_immediate(connection)
    else:
        connection.exec_driver_sql("BEGIN")


_RETRY_FIRST = 0.0001
_RETRY_MAX = 0.001


def _begin_immediate(connection: Connection) -> None:
    """`BEGIN IMMEDIATE`, retried every 0.1 ms growing to 1 ms while another connection holds
    the write lock (SQLITE_BUSY), for up to SQLITE_BUSY_TIMEOUT_MS. The last try goes through
    SQLAlchemy, so a failure raises its usual OperationalError ('database is locked')."""
    dbapi = connection.connection.driver_connection
    assert dbapi is not None
    deadline = time.monotonic() + SQLITE_BUSY_TIMEOUT_MS / 1000
    delay = _RETRY_FIRST
    dbapi.execute("PRAGMA busy_timeout=0")
    try:
        while time.monotonic() < deadline:
            try:
                dbapi.execute("BEGIN IMMEDIATE")
                return
            except sqlite3.OperationalError as exc:
                if getattr(exc, "sqlite_errorcode", sqlite3.SQLITE_BUSY) != sqlite3.SQLITE_BUSY:
                    break
            time.sleep(delay)
            delay = min(delay * 2, _RETRY_MAX)
        connection.exec_driver_sql("BEGIN IMMEDIATE")
    finally:
        dbapi.execute(f"PRAGMA busy_timeout={SQLITE_BUSY_TIMEOUT_MS}")
