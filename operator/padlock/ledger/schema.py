"""The ledger's tables, defined once for SQLite and PostgreSQL (SQLAlchemy Core).

Called by the query modules (issuance, revocation, crls, ocsp_cache, audit) and by the tests
that check the Alembic history in `migrations/` builds exactly this schema. Adapted from the
seed schema: SQLite has no arrays (SANs are JSON text), no INET (text), and the requester of a
padlock certificate is a Kubernetes object or ACME account (text), not a customer number.

Serials are stored as 20-octet big-endian bytes (the seed's BYTEA): fixed width, so they
compare and sort as numbers in both databases. RFC 5280 §4.1.2.2 caps them at 20 octets.
"""

from __future__ import annotations

import datetime
import typing

import sqlalchemy as sa
from sqlalchemy.engine import Dialect

from padlock.pki import serials

SERIAL_OCTETS = serials.SERIAL_OCTETS
GENESIS_HASH = "0" * 64
"""prev_hash of the first audit row: SHA-256 hex width, no predecessor."""

CERT_TYPES = (
    "tls-server",
    "tls-client",
    "tls-server-client",
    "spiffe-svid",
    "ocsp-responder",
    "intermediate-ca",
)
CA_TYPES = ("root", "intermediate")
CERT_STATUSES = ("active", "revoked", "expired", "hold")
OCSP_STATUSES = ("good", "revoked", "unknown")
DCV_METHODS = ("http-01", "dns-01", "tls-alpn-01")
REASON_CODES_SQL = "0, 1, 2, 3, 4, 5, 9, 10"


def serial_to_db(serial: int) -> bytes:
    """The stored form of a serial; ValueError if it is not a legal RFC 5280 serial."""
    return serials.serial_to_bytes(serial)


def serial_key(serial: int) -> bytes | None:
    """The stored form to look a serial up by, or None if no stored serial can equal it.

    Lookups (an OCSP request carries any integer) answer "not found" for such serials
    instead of raising; only writes refuse them.
    """
    try:
        return serials.serial_to_bytes(serial)
    except ValueError:
        return None


def serial_from_db(raw: bytes) -> int:
    return serials.serial_from_bytes(raw)


class UTCDateTime(sa.types.TypeDecorator[datetime.datetime]):
    """Timezone-aware UTC in, timezone-aware UTC out, on both databases.

    PostgreSQL stores TIMESTAMPTZ; SQLite stores naive UTC text that sorts chronologically.
    Naive datetimes are refused: a timestamp without a zone is a bug waiting to happen.
    """

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None or value.utcoffset() is None:
            raise ValueError(f"naive datetime {value.isoformat()} given; use a UTC-aware one")
        value = value.astimezone(datetime.UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def process_result_value(
        self, value: datetime.datetime | None, dialect: Dialect
    ) -> datetime.datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=datetime.UTC)
        return value.astimezone(datetime.UTC)


def _id() -> sa.types.TypeEngine[int]:
    """BIGINT identity on PostgreSQL, INTEGER (the rowid alias) on SQLite."""
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def _in(column: str, values: typing.Iterable[str]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
        "pk": "pk_%(table_name)s",
    }
)

certificate_authority = sa.Table(
    "certificate_authority",
    metadata,
    sa.Column("ca_id", _id(), primary_key=True, autoincrement=True),
    sa.Column("common_name", sa.Text, nullable=True),
    sa.Column("subject_dn", sa.Text, nullable=False),
    sa.Column("ca_type", sa.Text, nullable=False),
    sa.Column("parent_ca_id", _id(), sa.ForeignKey("certificate_authority.ca_id")),
    sa.Column("public_key_sha256", sa.LargeBinary, nullable=False, unique=True),
    sa.Column("cert_pem", sa.Text, nullable=False),
    sa.Column("valid_from", UTCDateTime, nullable=False),
    sa.Column("valid_until", UTCDateTime, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("hsm_slot_id", sa.Text, nullable=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.CheckConstraint(_in("ca_type", CA_TYPES), name="ca_type"),
)

certificate = sa.Table(
    "certificate",
    metadata,
    sa.Column("cert_id", _id(), primary_key=True, autoincrement=True),
    sa.Column("serial_number", sa.LargeBinary, nullable=False),
    sa.Column(
        "issuing_ca_id",
        _id(),
        sa.ForeignKey("certificate_authority.ca_id"),
        nullable=False,
    ),
    sa.Column("subject_cn", sa.Text, nullable=True),
    sa.Column("subject_dn", sa.Text, nullable=False),
    sa.Column("cert_type", sa.Text, nullable=False),
    sa.Column("san_list", sa.Text, nullable=False, server_default="[]"),
    sa.Column("key_algorithm", sa.Text, nullable=False),
    sa.Column("public_key_sha256", sa.LargeBinary, nullable=False),
    sa.Column("cert_pem", sa.Text, nullable=False),
    sa.Column("valid_from", UTCDateTime, nullable=False),
    sa.Column("valid_until", UTCDateTime, nullable=False),
    sa.Column("issued_at", UTCDateTime, nullable=False),
    sa.Column("requester", sa.Text, nullable=False),
    sa.Column("idempotency_key", sa.Text, nullable=True),
    sa.Column("domain_validated_at", UTCDateTime, nullable=True),
    sa.Column("status", sa.Text, nullable=False, server_default="active"),
    sa.UniqueConstraint("issuing_ca_id", "serial_number"),
    sa.UniqueConstraint("issuing_ca_id", "idempotency_key"),
    sa.CheckConstraint(_in("cert_type", CERT_TYPES), name="cert_type"),
    sa.CheckConstraint(_in("status", CERT_STATUSES), name="status"),
    sa.CheckConstraint(f"length(serial_number) = {SERIAL_OCTETS}", name="serial_length"),
    sa.Index(
        "ix_certificate_expiring",
        "valid_until",
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    ),
    sa.Index(None, "requester"),
)

revocation = sa.Table(
    "revocation",
    metadata,
    sa.Column("revocation_id", _id(), primary_key=True, autoincrement=True),
    sa.Column(
        "cert_id",
        _id(),
        sa.ForeignKey("certificate.cert_id"),
        nullable=False,
        unique=True,
    ),
    sa.Column("revoked_at", UTCDateTime, nullable=False),
    sa.Column("reason_code", sa.Integer, nullable=False),
    sa.Column("reason_text", sa.Text, nullable=True),
    sa.Column("requested_by", sa.Text, nullable=False),
    sa.Column("ocsp_next_update", UTCDateTime, nullable=True),
    sa.Column("crl_published_at", UTCDateTime, nullable=True),
    sa.CheckConstraint(f"reason_code IN ({REASON_CODES_SQL})", name="reason_code"),
)

dcv_event = sa.Table(
    "dcv_event",
    metadata,
    sa.Column("dcv_id", _id(), primary_key=True, autoincrement=True),
    sa.Column("cert_id", _id(), sa.ForeignKey("certificate.cert_id"), nullable=True),
    sa.Column("domain", sa.Text, nullable=False),
    sa.Column("method", sa.Text, nullable=False),
    sa.Column("challenge_token", sa.Text, nullable=False),
    sa.Column("challenge_value", sa.Text, nullable=False),
    sa.Column("validated_at", UTCDateTime, nullable=True),
    sa.Column("expires_at", UTCDateTime, nullable=False),
    sa.Column("ip_logged", sa.Text, nullable=True),
    sa.CheckConstraint(_in("method", DCV_METHODS), name="method"),
)

ocsp_response_cache = sa.Table(
    "ocsp_response_cache",
    metadata,
    sa.Column("cert_id", _id(), sa.ForeignKey("certificate.cert_id"), primary_key=True),
    sa.Column(
        "ca_id",
        _id(),
        sa.ForeignKey("certificate_authority.ca_id"),
        nullable=False,
    ),
    sa.Column("this_update", UTCDateTime, nullable=False),
    sa.Column("next_update", UTCDateTime, nullable=False),
    sa.Column("ocsp_status", sa.Text, nullable=False),
    sa.Column("signed_response", sa.LargeBinary, nullable=False),
    sa.CheckConstraint(_in("ocsp_status", OCSP_STATUSES), name="ocsp_status"),
    sa.Index(None, "next_update"),
)

crl = sa.Table(
    "crl",
    metadata,
    sa.Column(
        "ca_id",
        _id(),
        sa.ForeignKey("certificate_authority.ca_id"),
        primary_key=True,
    ),
    sa.Column("shard", sa.Integer, primary_key=True, autoincrement=False),
    # RFC 5280 §5.2.3: the last CRL number handed out; next_crl_number() increments it.
    sa.Column("last_number", sa.BigInteger, nullable=False),
    # The newest CRL stored with put_crl(); NULL until one is published.
    sa.Column("published_number", sa.BigInteger, nullable=True),
    sa.Column("this_update", UTCDateTime, nullable=True),
    sa.Column("next_update", UTCDateTime, nullable=True),
    sa.Column("crl_der", sa.LargeBinary, nullable=True),
    sa.CheckConstraint("shard >= 0", name="shard"),
    sa.CheckConstraint("last_number >= 1", name="last_number"),
)

audit_event = sa.Table(
    "audit_event",
    metadata,
    # Assigned by the appender as head + 1 under the write lock: contiguous, so a deleted row
    # shows up as a gap (an identity column may skip numbers on rollback).
    sa.Column("event_id", sa.BigInteger, primary_key=True, autoincrement=False),
    sa.Column("at", UTCDateTime, nullable=False),
    sa.Column("kind", sa.Text, nullable=False),
    sa.Column("actor", sa.Text, nullable=False),
    sa.Column("details", sa.Text, nullable=False),
    sa.Column("prev_hash", sa.String(64), nullable=False),
    sa.Column("row_hash", sa.String(64), nullable=False),
)

audit_head = sa.Table(
    "audit_head",
    metadata,
    # One row. Every write transaction locks it first (PostgreSQL: SELECT ... FOR UPDATE), so
    # audit appends are serial and the chain stays linear. It also anchors the chain's end, so
    # deleting the newest rows is detected.
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    sa.Column("last_event_id", sa.BigInteger, nullable=False),
    sa.Column("last_hash", sa.String(64), nullable=False),
    sa.CheckConstraint("id = 1", name="single_row"),
)
