"""Brings a ledger database to the current schema with the Alembic history in migrations/.

Called by `Ledger(url)` on open (the CA process), and by `Ledger(url, migrate=False)` users
(the read-only OCSP responder, `padlock ledger verify`) to check the schema is current. Runs
Alembic through its API with an in-memory config: no alembic.ini is needed at run time.
"""

from __future__ import annotations

import pathlib
import threading

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from padlock.ledger import engine as engines
from padlock.ledger import errors

MIGRATIONS = pathlib.Path(__file__).parent / "migrations"

_PG_MIGRATION_LOCK = 0x7061646C6F636B  # "padlock": one advisory lock id for all migrators

# Alembic keeps the running migration's context in a module global (`alembic.context`), so two
# threads of one process must not run commands at once, even on different databases.
_ALEMBIC_LOCK = threading.Lock()


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic config pointing at the packaged migrations (and at `connection`, if given)."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    if head is None:
        raise RuntimeError(f"no Alembic revisions found in {MIGRATIONS}")
    return head


def current_revision(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade(engine: Engine, revision: str = "head") -> None:
    """Apply every pending migration in one transaction, serialized against other migrators.

    Two processes opening an empty PostgreSQL ledger at once must not both create tables: a
    transaction-scoped advisory lock makes the second wait, then find nothing to do. SQLite's
    BEGIN IMMEDIATE (a write transaction) does the same.
    """
    with engine.connect() as connection:
        connection.execution_options(**{engines.WRITE_OPTION: True})
        with connection.begin():
            if not engines.is_sqlite(connection):
                connection.execute(
                    sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_MIGRATION_LOCK}
                )
            with _ALEMBIC_LOCK:
                command.upgrade(alembic_config(connection), revision)


def downgrade(engine: Engine, revision: str) -> None:
    """Undo migrations down to `revision` ("base" empties the database). For tests and repair."""
    with engine.connect() as connection:
        connection.execution_options(**{engines.WRITE_OPTION: True})
        with connection.begin(), _ALEMBIC_LOCK:
            command.downgrade(alembic_config(connection), revision)


def check_current(engine: Engine) -> None:
    """Raise SchemaNotCurrent unless the database is at this padlock's head revision."""
    with engine.connect() as connection:
        current = current_revision(connection)
    head = head_revision()
    if current != head:
        raise errors.SchemaNotCurrent(engines.display_url(engine.url), current, head)
