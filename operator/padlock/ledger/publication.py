"""Queries for what the revocation responder publishes: CRL numbers and CRLs, OCSP responses.

Called by `padlock.ledger.ledger.Ledger`. The CA writes (next CRL number, stored CRL,
pre-signed OCSP responses); the responder, possibly another process on PostgreSQL, reads.
"""

from __future__ import annotations

import datetime
import functools
import typing

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect

from padlock.ledger import dbapi, errors, records, schema

_crl = schema.crl
_ocsp = schema.ocsp_response_cache
_cert = schema.certificate


def next_crl_number(connection: Connection, ca_id: int, shard: int) -> int:
    """The next CRL number of (CA, shard): 1, 2, 3, ... never repeated (RFC 5280 §5.2.3).

    The caller holds the write lock, so read-then-write cannot race.
    """
    if shard < 0:
        raise ValueError(f"CRL shard must be >= 0, got {shard}")
    current = connection.execute(
        sa.select(_crl.c.last_number).where(_crl.c.ca_id == ca_id, _crl.c.shard == shard)
    ).scalar_one_or_none()
    if current is None:
        connection.execute(_crl.insert().values(ca_id=ca_id, shard=shard, last_number=1))
        return 1
    number = int(current) + 1
    connection.execute(
        _crl.update().where(_crl.c.ca_id == ca_id, _crl.c.shard == shard).values(last_number=number)
    )
    return number


def put_crl(connection: Connection, crl: records.CrlRecord) -> bool:
    """Store a signed CRL unless a newer one is stored already; True if it was stored."""
    row = connection.execute(
        sa.select(_crl.c.last_number, _crl.c.published_number).where(
            _crl.c.ca_id == crl.ca_id, _crl.c.shard == crl.shard
        )
    ).one_or_none()
    if row is None or crl.crl_number > row.last_number:
        raise ValueError(
            f"CRL number {crl.crl_number} for CA {crl.ca_id} shard {crl.shard} was never "
            "handed out by next_crl_number()"
        )
    if row.published_number is not None and row.published_number >= crl.crl_number:
        return False
    connection.execute(
        _crl.update()
        .where(_crl.c.ca_id == crl.ca_id, _crl.c.shard == crl.shard)
        .values(
            published_number=crl.crl_number,
            this_update=crl.this_update,
            next_update=crl.next_update,
            crl_der=crl.crl_der,
        )
    )
    return True


def get_crl(connection: Connection, ca_id: int, shard: int) -> records.CrlRecord | None:
    row = connection.execute(
        sa.select(_crl).where(
            _crl.c.ca_id == ca_id, _crl.c.shard == shard, _crl.c.published_number.is_not(None)
        )
    ).one_or_none()
    if row is None:
        return None
    return records.CrlRecord(
        ca_id=row.ca_id,
        shard=row.shard,
        crl_number=row.published_number,
        this_update=row.this_update,
        next_update=row.next_update,
        crl_der=bytes(row.crl_der),
    )


def _cert_id(connection: Connection, ca_id: int, serial: int) -> int:
    key = schema.serial_key(serial)
    if key is None:
        raise errors.UnknownCertificate(ca_id, serial)
    cert_id = connection.execute(
        sa.select(_cert.c.cert_id).where(
            _cert.c.issuing_ca_id == ca_id, _cert.c.serial_number == key
        )
    ).scalar_one_or_none()
    if cert_id is None:
        raise errors.UnknownCertificate(ca_id, serial)
    return int(cert_id)


def _ocsp_values(entry: records.OcspCacheEntry) -> dict[str, object]:
    """The ocsp_cache columns of `entry` but cert_id."""
    return {
        "ca_id": entry.ca_id,
        "this_update": entry.this_update,
        "next_update": entry.next_update,
        "ocsp_status": entry.status.value,
        "signed_response": entry.response_der,
    }


def put_ocsp(connection: Connection, entry: records.OcspCacheEntry) -> None:
    """Insert or replace the cached response of one certificate."""
    cert_id = _cert_id(connection, entry.ca_id, entry.serial)
    values = _ocsp_values(entry)
    updated = connection.execute(
        _ocsp.update().where(_ocsp.c.cert_id == cert_id).values(**values)
    ).rowcount
    if not updated:
        connection.execute(_ocsp.insert().values(cert_id=cert_id, **values))


def _ocsp_entry(m: sa.RowMapping) -> records.OcspCacheEntry:
    return records.OcspCacheEntry(
        ca_id=m["ca_id"],
        serial=schema.serial_from_db(m["serial_number"]),
        status=records.Status(m["ocsp_status"]),
        this_update=m["this_update"],
        next_update=m["next_update"],
        response_der=bytes(m["signed_response"]),
    )


_OCSP_JOINED = sa.select(
    _ocsp.c.ca_id,
    _cert.c.serial_number,
    _ocsp.c.ocsp_status,
    _ocsp.c.this_update,
    _ocsp.c.next_update,
    _ocsp.c.signed_response,
).select_from(_ocsp.join(_cert, _ocsp.c.cert_id == _cert.c.cert_id))


def get_ocsp(connection: Connection, ca_id: int, serial: int) -> records.OcspCacheEntry | None:
    key = schema.serial_key(serial)
    if key is None:
        return None
    row = connection.execute(
        _OCSP_JOINED.where(_ocsp.c.ca_id == ca_id, _cert.c.serial_number == key)
    ).one_or_none()
    return None if row is None else _ocsp_entry(row._mapping)


def list_ocsp(
    connection: Connection, ca_id: int, *, expiring_before: datetime.datetime | None
) -> list[records.OcspCacheEntry]:
    """Every cached response of the CA (to load the responder's memory), or only those whose
    nextUpdate is before `expiring_before` (to find what to re-sign)."""
    query = _OCSP_JOINED.where(_ocsp.c.ca_id == ca_id)
    if expiring_before is not None:
        query = query.where(_ocsp.c.next_update < expiring_before)
    return [_ocsp_entry(row._mapping) for row in connection.execute(query)]


@functools.lru_cache(maxsize=8)
def _ocsp_insert(dialect: Dialect) -> dbapi.Insert:
    return dbapi.Insert.of(_ocsp, dialect)


def insert_new_ocsp(
    connection: Connection, entries: typing.Sequence[tuple[int, records.OcspCacheEntry]]
) -> None:
    """Store the first pre-signed response of certificates inserted in this same transaction
    ((cert_id, entry) pairs; nothing to replace, so one `dbapi.insert` for all)."""
    if not entries:
        return
    dbapi.insert(
        connection,
        _ocsp_insert(connection.dialect),
        [{"cert_id": cert_id, **_ocsp_values(entry)} for cert_id, entry in entries],
    )
