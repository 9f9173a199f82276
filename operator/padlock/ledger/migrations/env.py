"""Alembic environment: runs migrations on the connection `padlock.ledger.migrate` hands in.

Called by Alembic from `padlock.ledger.migrate.upgrade` (no alembic.ini at run time). The
caller has already begun the transaction and taken the migration lock, so this only wires the
connection and the target metadata (used by the tests' schema comparison).
"""

from __future__ import annotations

from alembic import context
from sqlalchemy.engine import Connection

from padlock.ledger import schema

connection = context.config.attributes.get("connection")
if not isinstance(connection, Connection):
    raise RuntimeError(
        "padlock ledger migrations run only through padlock.ledger.migrate "
        "(it passes the database connection in); there is no offline mode"
    )
context.configure(
    connection=connection,
    target_metadata=schema.metadata,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
