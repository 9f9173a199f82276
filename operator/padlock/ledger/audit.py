"""The append-only, hash-chained audit log: append a row, verify the chain.

Called by the other ledger modules inside their write transactions (every issuance, revocation
and CA registration appends a row in the same transaction as the change it records), by
`Ledger.append_audit` for events outside the ledger (key ceremonies, policy refusals), and by
`padlock.ledger.verify`.

Each row stores SHA-256 over a canonical encoding of its own fields plus the previous row's
hash, so changing, deleting or reordering any row breaks the chain at that row. `audit_head`
anchors the end of the chain, so deleting the newest rows is detected too. This is tamper
*evidence* against anyone who edits rows, not against someone who can rewrite the whole chain
and the head: export the head hash elsewhere (logs, a CRL, a signed checkpoint) for that.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import typing

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from padlock.ledger import dbapi, records, schema

JsonValue: typing.TypeAlias = (
    str | int | float | bool | list["JsonValue"] | dict[str, "JsonValue"] | None
)

ENCODING_VERSION = "padlock-audit-v1"


def canonical_details(details: typing.Mapping[str, JsonValue]) -> str:
    """Details as canonical JSON: sorted keys, no spaces, ASCII only, no NaN."""
    return json.dumps(
        dict(details), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=False
    )


def row_hash(
    *,
    event_id: int,
    at: datetime.datetime,
    kind: str,
    actor: str,
    details_json: str,
    prev_hash: str,
) -> str:
    """SHA-256 (hex) over the canonical encoding of one row and its predecessor's hash.

    The encoding is a JSON array, so field boundaries are unambiguous; the timestamp is UTC
    ISO 8601 with microseconds, which both databases store exactly.
    """
    encoded = json.dumps(
        [
            ENCODING_VERSION,
            event_id,
            at.astimezone(datetime.UTC).isoformat(timespec="microseconds"),
            kind,
            actor,
            details_json,
            prev_hash,
        ],
        separators=(",", ":"),
        ensure_ascii=True,
    )
    return hashlib.sha256(encoded.encode("ascii")).hexdigest()


Head: typing.TypeAlias = tuple[int, str]
"""The chain's end as `audit_head` holds it: (last event id, last row hash)."""


def lock_head(connection: Connection) -> Head | None:
    """Serialize this write transaction against every other ledger writer (PostgreSQL), and
    return the head the locking read saw (`append_many` takes it instead of reading again).

    SQLite needs nothing here (None): the transaction began with BEGIN IMMEDIATE (engine.py).
    """
    if connection.dialect.name == "sqlite":
        return None
    rows = dbapi.fetch(
        connection, "SELECT last_event_id, last_hash FROM audit_head WHERE id = 1 FOR UPDATE", ()
    )
    if len(rows) != 1:
        raise sa.exc.NoResultFound("audit_head has no row 1: the ledger is not migrated")
    return int(rows[0][0]), str(rows[0][1])


def append(
    connection: Connection,
    *,
    kind: str,
    actor: str,
    details: typing.Mapping[str, JsonValue],
    at: datetime.datetime,
) -> records.AuditEvent:
    """Append one row after the current head. The caller holds the write lock (lock_head)."""
    return append_many(connection, [(kind, actor, details)], at=at)[0]


def append_many(
    connection: Connection,
    events: typing.Sequence[tuple[str, str, typing.Mapping[str, JsonValue]]],
    *,
    at: datetime.datetime,
    head: Head | None = None,
) -> list[records.AuditEvent]:
    """Append several (kind, actor, details) rows, chained in order, with three statements
    whatever their number (read head, insert all, move head): the group commit of
    `Ledger.record_issuances`. The caller holds the write lock (lock_head).

    head: what `lock_head` returned in this same transaction, if nothing was appended since
    (spares reading it again); None reads it."""
    if not events:
        return []
    if head is None:
        ((event_id, prev_hash),) = dbapi.fetch(
            connection, "SELECT last_event_id, last_hash FROM audit_head WHERE id = 1", ()
        )
    else:
        event_id, prev_hash = head
    at = at.astimezone(datetime.UTC)
    out: list[records.AuditEvent] = []
    for kind, actor, details in events:
        if not kind or not actor:
            raise ValueError("an audit event needs a kind and an actor")
        event_id += 1
        details_json = canonical_details(details)
        digest = row_hash(
            event_id=event_id,
            at=at,
            kind=kind,
            actor=actor,
            details_json=details_json,
            prev_hash=prev_hash,
        )
        out.append(records.AuditEvent(event_id, at, kind, actor, details_json, prev_hash, digest))
        prev_hash = digest
    dbapi.insert(
        connection,
        _event_insert(connection.dialect),
        [
            {
                "event_id": e.event_id,
                "at": e.at,
                "kind": e.kind,
                "actor": e.actor,
                "details": e.details_json,
                "prev_hash": e.prev_hash,
                "row_hash": e.row_hash,
            }
            for e in out
        ],
    )
    dbapi.fetch(
        connection,
        dbapi.sql(
            connection.dialect,
            "UPDATE audit_head SET last_event_id = ?, last_hash = ? WHERE id = 1",
        ),
        (event_id, prev_hash),
    )
    return out


@functools.lru_cache(maxsize=8)
def _event_insert(dialect: Dialect) -> dbapi.Insert:
    """append_many's INSERT (it runs for every group commit), with SQLAlchemy's bind
    processing of `schema.audit_event`'s types (`at`: schema.UTCDateTime)."""
    return dbapi.Insert.of(schema.audit_event, dialect)


def checkpoint(connection: Connection) -> records.AuditCheckpoint:
    """The chain's current end, to keep outside the database (logs, a signed note)."""
    head = connection.execute(
        sa.select(schema.audit_head.c.last_event_id, schema.audit_head.c.last_hash)
    ).one()
    return records.AuditCheckpoint(event_id=head.last_event_id, row_hash=head.last_hash)


def verify(
    connection: Connection, checkpoints: typing.Iterable[records.AuditCheckpoint] = ()
) -> records.VerifyResult:
    """Walk the chain from the first row; name the first row where it breaks, and why.

    `checkpoints` taken earlier with `checkpoint()` and kept elsewhere also catch a chain
    rewritten from the start, which the chain alone cannot: the row a checkpoint names must
    still have the hash it had then.
    """
    pinned = {c.event_id: c.row_hash for c in checkpoints if c.event_id > 0}
    expected_id = 1
    expected_prev = schema.GENESIS_HASH
    previous: records.AuditEvent | None = None
    checked = 0
    rows = connection.execution_options(yield_per=1000).execute(
        sa.select(schema.audit_event).order_by(schema.audit_event.c.event_id)
    )
    for row in rows:
        event = records.AuditEvent(
            row.event_id, row.at, row.kind, row.actor, row.details, row.prev_hash, row.row_hash
        )
        if event.event_id != expected_id:
            return _bad(
                checked,
                expected_id,
                f"row {expected_id} is missing (deleted); the chain jumps to row {event.event_id}",
            )
        recomputed = row_hash(
            event_id=event.event_id,
            at=event.at,
            kind=event.kind,
            actor=event.actor,
            details_json=event.details_json,
            prev_hash=event.prev_hash,
        )
        if recomputed != event.row_hash:
            return _bad(
                checked,
                event.event_id,
                f"row {event.event_id}'s fields do not match its stored hash (a field was changed)",
            )
        if event.prev_hash != expected_prev:
            if previous is None:
                return _bad(
                    checked,
                    event.event_id,
                    f"row {event.event_id} does not start from the genesis hash (rewritten)",
                )
            # The row is self-consistent, so it was hashed after a predecessor whose hash was
            # prev_hash: the predecessor has since been rewritten, hash and all.
            return _bad(
                checked,
                previous.event_id,
                f"row {previous.event_id} was rewritten: its hash no longer matches the "
                f"prev_hash recorded by row {event.event_id}",
            )
        if event.event_id in pinned and pinned[event.event_id] != event.row_hash:
            return _bad(
                checked,
                event.event_id,
                f"row {event.event_id}'s hash differs from the checkpoint taken earlier "
                f"({pinned[event.event_id][:16]}...): the chain was rewritten up to this row",
            )
        expected_prev = event.row_hash
        expected_id += 1
        previous = event
        checked += 1
    head = connection.execute(
        sa.select(schema.audit_head.c.last_event_id, schema.audit_head.c.last_hash)
    ).one()
    if head.last_event_id != expected_id - 1 or head.last_hash != expected_prev:
        if head.last_event_id >= expected_id:
            return _bad(
                checked,
                expected_id,
                f"the chain ends at row {expected_id - 1} but audit_head records "
                f"{head.last_event_id} rows: the newest rows were deleted",
            )
        return _bad(
            checked,
            expected_id - 1 if expected_id > 1 else None,
            f"audit_head (row {head.last_event_id}, hash {head.last_hash[:16]}...) does not "
            f"match the chain's last row {expected_id - 1}: the head or the last row was edited",
        )
    beyond = [event_id for event_id in pinned if event_id >= expected_id]
    if beyond:
        return _bad(
            checked,
            expected_id,
            f"a checkpoint names row {min(beyond)} but the chain ends at row "
            f"{expected_id - 1}: rows were deleted and the head rewritten",
        )
    return records.VerifyResult(ok=True, rows_checked=checked)


def _bad(checked: int, event_id: int | None, reason: str) -> records.VerifyResult:
    return records.VerifyResult(
        ok=False, rows_checked=checked, first_bad_id=event_id, reason=reason
    )
