"""Queries for CAs and issued certificates: register a CA, record and look up issuances.

Called by `padlock.ledger.ledger.Ledger` inside its transactions; every function takes the
open connection. The row's columns are derived from the certificate itself, so the ledger can
never disagree with what was signed.
"""

from __future__ import annotations

import datetime
import functools
import hashlib
import json
import typing

import sqlalchemy as sa
from cryptography import exceptions, x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID
from sqlalchemy.engine import Connection, Dialect

from padlock.ledger import dbapi, errors, records, schema
from padlock.pki import algorithms, der

_cert = schema.certificate
_ca = schema.certificate_authority


def public_key_sha256(certificate: x509.Certificate) -> bytes:
    """SHA-256 of the DER SubjectPublicKeyInfo (RFC 5280 §4.1.2.7): the CA's identity here."""
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(spki).digest()


def subject_cn(certificate: x509.Certificate) -> str | None:
    return _common_name(certificate.subject)


def _common_name(subject: x509.Name) -> str | None:
    names = subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    if not names:
        return None
    value = names[0].value
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def sans(certificate: x509.Certificate) -> tuple[str, ...]:
    """The subjectAltName entries (RFC 5280 §4.2.1.6) in OpenSSL's `TYPE:value` spelling."""
    try:
        extension = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName)
    except x509.ExtensionNotFound:
        return ()
    out: list[str] = []
    for name in extension.value:
        if isinstance(name, x509.DNSName):
            out.append(f"DNS:{name.value}")
        elif isinstance(name, x509.IPAddress):
            out.append(f"IP:{name.value}")
        elif isinstance(name, x509.UniformResourceIdentifier):
            out.append(f"URI:{name.value}")
        elif isinstance(name, x509.RFC822Name):
            out.append(f"email:{name.value}")
        elif isinstance(name, x509.OtherName):
            out.append(f"othername:{name.type_id.dotted_string}")
        else:
            out.append(f"{type(name).__name__}:{name.value}")
    return tuple(out)


def _pem(certificate: x509.Certificate) -> str:
    return certificate.public_bytes(serialization.Encoding.PEM).decode("ascii")


def ca_from_row(m: sa.RowMapping) -> records.CARecord:
    return records.CARecord(
        ca_id=m["ca_id"],
        ca_type=records.CAType(m["ca_type"]),
        subject_dn=m["subject_dn"],
        public_key_sha256=bytes(m["public_key_sha256"]),
        cert_pem=m["cert_pem"],
        valid_from=m["valid_from"],
        valid_until=m["valid_until"],
        parent_ca_id=m["parent_ca_id"],
        is_active=bool(m["is_active"]),
    )


def certificate_from_row(m: sa.RowMapping) -> records.CertificateRecord:
    return records.CertificateRecord(
        cert_id=m["cert_id"],
        ca_id=m["issuing_ca_id"],
        serial=schema.serial_from_db(m["serial_number"]),
        cert_type=records.CertType(m["cert_type"]),
        subject_dn=m["subject_dn"],
        subject_cn=m["subject_cn"],
        sans=tuple(json.loads(m["san_list"])),
        key_algorithm=m["key_algorithm"],
        public_key_sha256=bytes(m["public_key_sha256"]),
        cert_pem=m["cert_pem"],
        valid_from=m["valid_from"],
        valid_until=m["valid_until"],
        issued_at=m["issued_at"],
        requester=m["requester"],
        idempotency_key=m["idempotency_key"],
        status=m["status"],
    )


def find_ca_by_key(connection: Connection, key_sha256: bytes) -> int | None:
    return connection.execute(
        sa.select(_ca.c.ca_id).where(_ca.c.public_key_sha256 == key_sha256)
    ).scalar_one_or_none()


def get_ca(connection: Connection, ca_id: int) -> records.CARecord:
    row = connection.execute(sa.select(_ca).where(_ca.c.ca_id == ca_id)).one_or_none()
    if row is None:
        raise errors.UnknownCA(ca_id)
    return ca_from_row(row._mapping)


def insert_ca(
    connection: Connection,
    certificate: x509.Certificate,
    *,
    ca_type: records.CAType,
    parent_ca_id: int | None,
    hsm_slot_id: str | None,
    at: datetime.datetime,
) -> int:
    if parent_ca_id is not None:
        get_ca(connection, parent_ca_id)
    ca_id = connection.execute(
        _ca.insert()
        .values(
            common_name=subject_cn(certificate),
            subject_dn=certificate.subject.rfc4514_string(),
            ca_type=ca_type.value,
            parent_ca_id=parent_ca_id,
            public_key_sha256=public_key_sha256(certificate),
            cert_pem=_pem(certificate),
            valid_from=certificate.not_valid_before_utc,
            valid_until=certificate.not_valid_after_utc,
            hsm_slot_id=hsm_slot_id,
            created_at=at,
        )
        .returning(_ca.c.ca_id)
    ).scalar_one()
    return int(ca_id)


def find_by_idempotency_key(
    connection: Connection, ca_id: int, key: str
) -> records.CertificateRecord | None:
    row = connection.execute(
        sa.select(_cert).where(_cert.c.issuing_ca_id == ca_id, _cert.c.idempotency_key == key)
    ).one_or_none()
    return None if row is None else certificate_from_row(row._mapping)


def find_by_serial(
    connection: Connection, ca_id: int, serial: int
) -> records.CertificateRecord | None:
    key = schema.serial_key(serial)
    if key is None:
        return None
    row = connection.execute(
        sa.select(_cert).where(_cert.c.issuing_ca_id == ca_id, _cert.c.serial_number == key)
    ).one_or_none()
    return None if row is None else certificate_from_row(row._mapping)


def check_issued_by(
    ca: records.CARecord, certificate: x509.Certificate, *, signature_verified: bool = False
) -> None:
    """ValueError unless `certificate` was signed by this CA (RFC 5280 §6.1.3 (a)(1), (a)(4)).

    `signature_verified`: the caller verified the signature with this CA's certificate
    already (the CA's lint gate, before the commit); then only the issuer name is compared
    (§6.1.3 (a)(4)), sparing a second public-key operation per certificate.
    """
    error: str
    try:
        if not signature_verified:
            certificate.verify_directly_issued_by(ca.certificate)
            return
        expected = _subject_der(ca.certificate)
        # The issuer as encoded in the TBSCertificate first (no Name objects built); if those
        # bytes differ, the re-encoded Name is compared, as always.
        if _issuer_der(certificate) == expected or certificate.issuer.public_bytes() == expected:
            return
        error = "the certificate's issuer name is not the CA's subject"
    except (ValueError, TypeError, exceptions.InvalidSignature) as exc:
        error = str(exc) or type(exc).__name__
    raise ValueError(
        f"certificate serial {certificate.serial_number:#x} (issuer "
        f"{certificate.issuer.rfc4514_string()!r}) was not issued by CA {ca.ca_id} "
        f"({ca.subject_dn!r}): {error}"
    )


def _issuer_der(certificate: x509.Certificate) -> bytes | None:
    """The issuer Name's DER exactly as it appears in the TBSCertificate (RFC 5280 §4.1:
    [0] version, serialNumber, signature, issuer, ...); None if that cannot be read."""
    try:
        fields = der.read(certificate.tbs_certificate_bytes).children()
        field = next(fields)
        if field.tag == der.context(0):  # version; then serialNumber
            next(fields)
        next(fields)  # signature AlgorithmIdentifier
        return next(fields).encoded
    except (der.DerError, StopIteration):
        return None


@functools.lru_cache(maxsize=32)
def _subject_der(ca_certificate: x509.Certificate) -> bytes:
    """The CA's subject as DER, to compare issuer names as bytes (RFC 5280 §7.1 name
    matching is exact for the names padlock itself encodes)."""
    return ca_certificate.subject.public_bytes()


# -- group commit (Ledger.record_issuances) -------------------------------------------------


def certificate_values(
    ca_id: int,
    certificate: x509.Certificate,
    *,
    cert_type: records.CertType,
    requester: str,
    idempotency_key: str | None,
    domain_validated_at: datetime.datetime | None,
    at: datetime.datetime,
) -> dict[str, object]:
    """The certificate row's columns, all derived from the signed certificate (no I/O: the
    group commit computes them before it takes the write lock)."""
    public_key = certificate.public_key()
    spki = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    subject = certificate.subject  # one Name object for both columns
    names = sans(certificate)
    return {
        "serial_number": schema.serial_to_db(certificate.serial_number),
        "issuing_ca_id": ca_id,
        "subject_cn": _common_name(subject),
        "subject_dn": subject.rfc4514_string(),
        "cert_type": cert_type.value,
        "san_list": json.dumps(list(names)),
        _SANS: names,
        _SERIAL: certificate.serial_number,
        "key_algorithm": algorithms.KeyAlgorithm.of_public_key(public_key).value,
        "public_key_sha256": hashlib.sha256(spki).digest(),
        "cert_pem": _pem(certificate),
        "valid_from": certificate.not_valid_before_utc,
        "valid_until": certificate.not_valid_after_utc,
        "issued_at": at,
        "requester": requester,
        "idempotency_key": idempotency_key,
        "domain_validated_at": domain_validated_at,
        "status": "active",
    }


_SANS = "(sans)"
_SERIAL = "(serial)"
"""Keys of `certificate_values` that are no column: the SAN tuple and the serial as given,
so `record_from_values` need not decode them again (`dbapi.Insert.row` reads columns only)."""


def record_from_values(cert_id: int, values: dict[str, object]) -> records.CertificateRecord:
    """The committed row as a record, without reading it back (the values are what was
    inserted, and both backends store them exactly: see schema.UTCDateTime); the same
    record `certificate_from_row` makes of the stored row."""
    v: dict[str, typing.Any] = values
    return records.CertificateRecord(
        cert_id=cert_id,
        ca_id=v["issuing_ca_id"],
        serial=v[_SERIAL],
        cert_type=records.CertType(v["cert_type"]),
        subject_dn=v["subject_dn"],
        subject_cn=v["subject_cn"],
        sans=v[_SANS],
        key_algorithm=v["key_algorithm"],
        public_key_sha256=v["public_key_sha256"],
        cert_pem=v["cert_pem"],
        valid_from=v["valid_from"],
        valid_until=v["valid_until"],
        issued_at=v["issued_at"],
        requester=v["requester"],
        idempotency_key=v["idempotency_key"],
        status=v["status"],
    )


def taken(
    connection: Connection,
    ca_id: int,
    keys: typing.Collection[str],
    serials: typing.Collection[int],
) -> tuple[dict[str, records.CertificateRecord], set[int]]:
    """Which of these idempotency keys and serials the CA already used:
    ({key: its certificate}, {serial, ...}). One statement on the DB-API cursor (`dbapi`):
    the UNION ALL of two indexed queries (with an OR between them SQLite would walk every
    certificate of the CA). Only keys found (a replay: rare) are read again as records."""
    # PostgreSQL gets each list as one array parameter (`= ANY(?)`): the statement's text
    # and parameter count stay fixed, so psycopg's query cache and prepared statements serve
    # every batch size. SQLite (no arrays) gets IN lists.
    arrays = connection.dialect.paramstyle != "qmark"
    branches: list[str] = []
    params: list[object] = []
    sizes: list[int] = []
    for template, listed in (
        (_KEYS_USED, list(keys)),
        (_SERIALS_USED, [schema.serial_to_db(s) for s in serials]),
    ):
        if not listed:
            continue
        if arrays:
            branches.append(template.replace("IN ({in})", "= ANY(?)"))
            params += [ca_id, listed]
        else:
            branches.append(template)
            params += [ca_id, *listed]
            sizes.append(len(listed))
    if not branches:
        return {}, set()
    statement = dbapi.sql(connection.dialect, " UNION ALL ".join(branches), *sizes)
    found = dbapi.fetch(connection, statement, params)
    found_keys = [key for key, raw in found if raw is None]
    used = {schema.serial_from_db(bytes(raw)) for _key, raw in found if raw is not None}
    by_key: dict[str, records.CertificateRecord] = {}
    if found_keys:
        for row in connection.execute(_KEYS_TAKEN, {"ca_id": ca_id, "keys": found_keys}):
            record = certificate_from_row(row._mapping)
            by_key[typing.cast(str, record.idempotency_key)] = record
    return by_key, used


_KEYS_USED = (
    "SELECT idempotency_key, NULL FROM certificate"
    " WHERE issuing_ca_id = ? AND idempotency_key IN ({in})"
)
_SERIALS_USED = (
    "SELECT NULL, serial_number FROM certificate"
    " WHERE issuing_ca_id = ? AND serial_number IN ({in})"
)
# Built once: the group commit runs them for every batch (SQLAlchemy then reuses the compiled
# form without rebuilding and re-hashing the statement).
_KEYS_TAKEN = sa.select(_cert).where(
    _cert.c.issuing_ca_id == sa.bindparam("ca_id"),
    _cert.c.idempotency_key.in_(sa.bindparam("keys", expanding=True)),
)


@functools.lru_cache(maxsize=8)
def _certificate_insert(dialect: Dialect) -> dbapi.Insert:
    return dbapi.Insert.of(_cert, dialect, skip=("cert_id",))


def insert_certificates(
    connection: Connection, rows: typing.Sequence[dict[str, object]]
) -> list[int]:
    """Insert several certificate rows; their cert_ids, in order. The caller holds the write
    lock and checked serials and keys with `taken()`.

    `INSERT ... RETURNING cert_id, issuing_ca_id, serial_number` on the DB-API cursor
    (`dbapi.insert`: one multi-row statement, or psycopg's pipelined executemany): rows go
    in in order, and the returned rows are paired with `rows` by (CA, serial), the UNIQUE
    key, not by their order (which a multi-row INSERT does not promise)."""
    if not rows:
        return []
    returned = dbapi.insert(
        connection,
        _certificate_insert(connection.dialect),
        rows,
        returning="cert_id, issuing_ca_id, serial_number",
    )
    ids = {(int(ca_id), bytes(serial)): int(cert_id) for cert_id, ca_id, serial in returned}
    return [
        ids[(typing.cast(int, row["issuing_ca_id"]), typing.cast(bytes, row["serial_number"]))]
        for row in rows
    ]
