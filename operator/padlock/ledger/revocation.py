"""Queries for revocations: revoke, status for OCSP, revoked lists for CRLs.

Called by `padlock.ledger.ledger.Ledger` inside its transactions. One revocation per
certificate (a UNIQUE constraint): revocation is permanent, so a second request finds the
first record and changes nothing.
"""

from __future__ import annotations

import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from padlock.ledger import records, schema

_cert = schema.certificate
_rev = schema.revocation

_JOINED = sa.select(
    _rev.c.revocation_id,
    _cert.c.issuing_ca_id,
    _cert.c.serial_number,
    _rev.c.revoked_at,
    _rev.c.reason_code,
    _rev.c.reason_text,
    _rev.c.requested_by,
    _cert.c.valid_until,
).select_from(_rev.join(_cert, _rev.c.cert_id == _cert.c.cert_id))


def _record(m: sa.RowMapping) -> records.RevocationRecord:
    return records.RevocationRecord(
        revocation_id=m["revocation_id"],
        ca_id=m["issuing_ca_id"],
        serial=schema.serial_from_db(m["serial_number"]),
        revoked_at=m["revoked_at"],
        reason_code=m["reason_code"],
        reason_text=m["reason_text"],
        requested_by=m["requested_by"],
        valid_until=m["valid_until"],
    )


def find(connection: Connection, cert_id: int) -> records.RevocationRecord | None:
    row = connection.execute(_JOINED.where(_rev.c.cert_id == cert_id)).one_or_none()
    return None if row is None else _record(row._mapping)


def insert(
    connection: Connection,
    cert_id: int,
    *,
    reason_code: int,
    reason_text: str | None,
    requested_by: str,
    at: datetime.datetime,
) -> records.RevocationRecord:
    records.check_reason_code(reason_code)
    connection.execute(
        _rev.insert().values(
            cert_id=cert_id,
            revoked_at=at,
            reason_code=reason_code,
            reason_text=reason_text,
            requested_by=requested_by,
        )
    )
    connection.execute(_cert.update().where(_cert.c.cert_id == cert_id).values(status="revoked"))
    revoked = find(connection, cert_id)
    assert revoked is not None
    return revoked


def unrevoked_cert_ids(
    connection: Connection, ca_id: int, unexpired_at: datetime.datetime
) -> list[tuple[int, int]]:
    """(cert_id, serial) of every certificate of the CA with no revocation that is still valid
    at `unexpired_at`, in serial order (an expired certificate needs no revocation: RFC 5280
    §3.3 — relying parties already reject it)."""
    rows = connection.execute(
        sa.select(_cert.c.cert_id, _cert.c.serial_number)
        .select_from(_cert.outerjoin(_rev, _rev.c.cert_id == _cert.c.cert_id))
        .where(
            _cert.c.issuing_ca_id == ca_id,
            _rev.c.revocation_id.is_(None),
            _cert.c.valid_until > unexpired_at,
        )
        .order_by(_cert.c.serial_number)
    )
    return [(row.cert_id, schema.serial_from_db(row.serial_number)) for row in rows]


def status(connection: Connection, ca_id: int, serial: int) -> records.CertificateStatus:
    """RFC 6960 §2.2: good if issued and not revoked, revoked with time and reason, else unknown."""
    key = schema.serial_key(serial)
    if key is None:
        return records.CertificateStatus(records.Status.UNKNOWN)
    row = connection.execute(
        sa.select(_cert.c.cert_id, _rev.c.revoked_at, _rev.c.reason_code)
        .select_from(_cert.outerjoin(_rev, _rev.c.cert_id == _cert.c.cert_id))
        .where(
            _cert.c.issuing_ca_id == ca_id,
            _cert.c.serial_number == key,
        )
    ).one_or_none()
    if row is None:
        return records.CertificateStatus(records.Status.UNKNOWN)
    if row.revoked_at is None:
        return records.CertificateStatus(records.Status.GOOD)
    return records.CertificateStatus(records.Status.REVOKED, row.revoked_at, row.reason_code)


def since(connection: Connection, ca_id: int, cursor: int) -> list[records.RevocationRecord]:
    """Revocations with revocation_id > cursor, oldest first (the responder's refresh feed)."""
    rows = connection.execute(
        _JOINED.where(_cert.c.issuing_ca_id == ca_id, _rev.c.revocation_id > cursor).order_by(
            _rev.c.revocation_id
        )
    )
    return [_record(row._mapping) for row in rows]


def listed(
    connection: Connection, ca_id: int, *, unexpired_at: datetime.datetime | None
) -> list[records.RevocationRecord]:
    """Entries for the CA's CRL, in serial order.

    RFC 5280 §3.3: an entry may be dropped from the CRL once the certificate has expired;
    pass `unexpired_at` (the CRL's thisUpdate) to do so, or None to list every revocation.
    """
    query = _JOINED.where(_cert.c.issuing_ca_id == ca_id)
    if unexpired_at is not None:
        query = query.where(_cert.c.valid_until >= unexpired_at)
    return [
        _record(row._mapping) for row in connection.execute(query.order_by(_cert.c.serial_number))
    ]
