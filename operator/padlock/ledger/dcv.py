"""Queries for domain-control validations (ACME challenges, RFC 8555 §8).

Called by `padlock.ledger.ledger.Ledger` for the ACME server: a challenge is recorded when it
is offered, marked validated when the check passes, and a still-valid validation of a domain
can be reused until it expires (RFC 8555 §7.1.4 authorization lifetime).
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from padlock.ledger import records, schema

_dcv = schema.dcv_event


def _record(m: sa.RowMapping) -> records.DcvRecord:
    return records.DcvRecord(
        dcv_id=m["dcv_id"],
        domain=m["domain"],
        method=m["method"],
        challenge_token=m["challenge_token"],
        challenge_value=m["challenge_value"],
        validated_at=m["validated_at"],
        expires_at=m["expires_at"],
        ip_logged=m["ip_logged"],
    )


def get(connection: Connection, dcv_id: int) -> records.DcvRecord | None:
    row = connection.execute(sa.select(_dcv).where(_dcv.c.dcv_id == dcv_id)).one_or_none()
    return None if row is None else _record(row._mapping)


def insert(
    connection: Connection,
    *,
    domain: str,
    method: str,
    challenge_token: str,
    challenge_value: str,
    expires_at: datetime.datetime,
) -> records.DcvRecord:
    if method not in schema.DCV_METHODS:
        raise ValueError(f"DCV method {method!r} is not one of {', '.join(schema.DCV_METHODS)}")
    dcv_id = connection.execute(
        _dcv.insert()
        .values(
            domain=domain.lower(),
            method=method,
            challenge_token=challenge_token,
            challenge_value=challenge_value,
            expires_at=expires_at,
        )
        .returning(_dcv.c.dcv_id)
    ).scalar_one()
    created = get(connection, int(dcv_id))
    assert created is not None
    return created


def mark_validated(
    connection: Connection, dcv_id: int, *, at: datetime.datetime, ip: str | None
) -> records.DcvRecord | None:
    """Set validated_at once; None if there is no such challenge."""
    connection.execute(
        _dcv.update()
        .where(_dcv.c.dcv_id == dcv_id, _dcv.c.validated_at.is_(None))
        .values(validated_at=at, ip_logged=ip)
    )
    return get(connection, dcv_id)


def latest_valid(
    connection: Connection, domain: str, *, now: datetime.datetime
) -> records.DcvRecord | None:
    """The newest validation of `domain` that has not expired at `now`."""
    row = connection.execute(
        sa.select(_dcv)
        .where(
            _dcv.c.domain == domain.lower(),
            _dcv.c.validated_at.is_not(None),
            _dcv.c.expires_at > now,
        )
        .order_by(_dcv.c.validated_at.desc(), _dcv.c.dcv_id.desc())
        .limit(1)
    ).one_or_none()
    return None if row is None else _record(row._mapping)
