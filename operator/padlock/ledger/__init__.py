"""The issuance database: schema, migrations and queries on SQLite (default) or PostgreSQL.

Called by the CA pipeline (`Ledger`: record issuances, revoke, number CRLs), the OCSP/CRL
responder (read only) and `padlock ledger verify` (`verify_chain`). Modules:

- engine: connection set-up (SQLite WAL + synchronous=FULL + foreign keys + busy_timeout)
- schema: the tables (SQLAlchemy Core); migrations/: the one Alembic history for both backends
- migrate: runs Alembic programmatically on open
- issuance, revocation, publication, dcv, audit: the queries, each taking an open connection
- ledger: `Ledger`, one transaction per operation
- records, errors: what callers get back or catch
"""

from __future__ import annotations

from padlock.ledger.errors import (
    IdempotencyKeyReused,
    LedgerError,
    SchemaNotCurrent,
    SerialCollision,
    UnknownCA,
    UnknownCertificate,
)
from padlock.ledger.ledger import Ledger
from padlock.ledger.records import VerifyResult
from padlock.ledger.verify import verify_chain

__all__ = [
    "IdempotencyKeyReused",
    "Ledger",
    "LedgerError",
    "SchemaNotCurrent",
    "SerialCollision",
    "UnknownCA",
    "UnknownCertificate",
    "VerifyResult",
    "verify_chain",
]
