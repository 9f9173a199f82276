"""Initial ledger schema: CAs, certificates, revocations, DCV, OCSP cache, CRLs, audit chain.

Revision ID: 0001
Revises:
Create Date: 2026-11-27

Frozen copy of padlock.ledger.schema as of this revision (migrations never import the live
schema module). tests/integration/ledger checks the two agree.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def _id() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "certificate_authority",
        sa.Column("ca_id", _id(), primary_key=True, autoincrement=True),
        sa.Column("common_name", sa.Text(), nullable=True),
        sa.Column("subject_dn", sa.Text(), nullable=False),
        sa.Column("ca_type", sa.Text(), nullable=False),
        sa.Column("parent_ca_id", _id(), nullable=True),
        sa.Column("public_key_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("valid_from", _TS, nullable=False),
        sa.Column("valid_until", _TS, nullable=False),
        sa.Column("is_active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("hsm_slot_id", sa.Text(), nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.CheckConstraint(
            "ca_type IN ('root', 'intermediate')", name="ck_certificate_authority_ca_type"
        ),
        sa.ForeignKeyConstraint(
            ["parent_ca_id"],
            ["certificate_authority.ca_id"],
            name="fk_certificate_authority_parent_ca_id_certificate_authority",
        ),
        sa.PrimaryKeyConstraint("ca_id", name="pk_certificate_authority"),
        sa.UniqueConstraint("public_key_sha256", name="uq_certificate_authority_public_key_sha256"),
    )
    op.create_table(
        "certificate",
        sa.Column("cert_id", _id(), primary_key=True, autoincrement=True),
        sa.Column("serial_number", sa.LargeBinary(), nullable=False),
        sa.Column("issuing_ca_id", _id(), nullable=False),
        sa.Column("subject_cn", sa.Text(), nullable=True),
        sa.Column("subject_dn", sa.Text(), nullable=False),
        sa.Column("cert_type", sa.Text(), nullable=False),
        sa.Column("san_list", sa.Text(), server_default="[]", nullable=False),
        sa.Column("key_algorithm", sa.Text(), nullable=False),
        sa.Column("public_key_sha256", sa.LargeBinary(), nullable=False),
        sa.Column("cert_pem", sa.Text(), nullable=False),
        sa.Column("valid_from", _TS, nullable=False),
        sa.Column("valid_until", _TS, nullable=False),
        sa.Column("issued_at", _TS, nullable=False),
        sa.Column("requester", sa.Text(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=True),
        sa.Column("domain_validated_at", _TS, nullable=True),
        sa.Column("status", sa.Text(), server_default="active", nullable=False),
        sa.CheckConstraint(
            "cert_type IN ('tls-server', 'tls-client', 'tls-server-client', 'spiffe-svid', "
            "'ocsp-responder', 'intermediate-ca')",
            name="ck_certificate_cert_type",
        ),
        sa.CheckConstraint(
            "status IN ('active', 'revoked', 'expired', 'hold')", name="ck_certificate_status"
        ),
        sa.CheckConstraint("length(serial_number) = 20", name="ck_certificate_serial_length"),
        sa.ForeignKeyConstraint(
            ["issuing_ca_id"],
            ["certificate_authority.ca_id"],
            name="fk_certificate_issuing_ca_id_certificate_authority",
        ),
        sa.PrimaryKeyConstraint("cert_id", name="pk_certificate"),
        sa.UniqueConstraint(
            "issuing_ca_id", "serial_number", name="uq_certificate_issuing_ca_id_serial_number"
        ),
        sa.UniqueConstraint(
            "issuing_ca_id",
            "idempotency_key",
            name="uq_certificate_issuing_ca_id_idempotency_key",
        ),
    )
    op.create_index(
        "ix_certificate_expiring",
        "certificate",
        ["valid_until"],
        sqlite_where=sa.text("status = 'active'"),
        postgresql_where=sa.text("status = 'active'"),
    )
    op.create_index("ix_certificate_requester", "certificate", ["requester"])
    op.create_table(
        "revocation",
        sa.Column("revocation_id", _id(), primary_key=True, autoincrement=True),
        sa.Column("cert_id", _id(), nullable=False),
        sa.Column("revoked_at", _TS, nullable=False),
        sa.Column("reason_code", sa.Integer(), nullable=False),
        sa.Column("reason_text", sa.Text(), nullable=True),
        sa.Column("requested_by", sa.Text(), nullable=False),
        sa.Column("ocsp_next_update", _TS, nullable=True),
        sa.Column("crl_published_at", _TS, nullable=True),
        sa.CheckConstraint(
            "reason_code IN (0, 1, 2, 3, 4, 5, 9, 10)", name="ck_revocation_reason_code"
        ),
        sa.ForeignKeyConstraint(
            ["cert_id"], ["certificate.cert_id"], name="fk_revocation_cert_id_certificate"
        ),
        sa.PrimaryKeyConstraint("revocation_id", name="pk_revocation"),
        sa.UniqueConstraint("cert_id", name="uq_revocation_cert_id"),
    )
    op.create_table(
        "dcv_event",
        sa.Column("dcv_id", _id(), primary_key=True, autoincrement=True),
        sa.Column("cert_id", _id(), nullable=True),
        sa.Column("domain", sa.Text(), nullable=False),
        sa.Column("method", sa.Text(), nullable=False),
        sa.Column("challenge_token", sa.Text(), nullable=False),
        sa.Column("challenge_value", sa.Text(), nullable=False),
        sa.Column("validated_at", _TS, nullable=True),
        sa.Column("expires_at", _TS, nullable=False),
        sa.Column("ip_logged", sa.Text(), nullable=True),
        sa.CheckConstraint(
            "method IN ('http-01', 'dns-01', 'tls-alpn-01')", name="ck_dcv_event_method"
        ),
        sa.ForeignKeyConstraint(
            ["cert_id"], ["certificate.cert_id"], name="fk_dcv_event_cert_id_certificate"
        ),
        sa.PrimaryKeyConstraint("dcv_id", name="pk_dcv_event"),
    )
    op.create_table(
        "ocsp_response_cache",
        sa.Column("cert_id", _id(), nullable=False),
        sa.Column("ca_id", _id(), nullable=False),
        sa.Column("this_update", _TS, nullable=False),
        sa.Column("next_update", _TS, nullable=False),
        sa.Column("ocsp_status", sa.Text(), nullable=False),
        sa.Column("signed_response", sa.LargeBinary(), nullable=False),
        sa.CheckConstraint(
            "ocsp_status IN ('good', 'revoked', 'unknown')",
            name="ck_ocsp_response_cache_ocsp_status",
        ),
        sa.ForeignKeyConstraint(
            ["ca_id"],
            ["certificate_authority.ca_id"],
            name="fk_ocsp_response_cache_ca_id_certificate_authority",
        ),
        sa.ForeignKeyConstraint(
            ["cert_id"],
            ["certificate.cert_id"],
            name="fk_ocsp_response_cache_cert_id_certificate",
        ),
        sa.PrimaryKeyConstraint("cert_id", name="pk_ocsp_response_cache"),
    )
    op.create_index("ix_ocsp_response_cache_next_update", "ocsp_response_cache", ["next_update"])
    op.create_table(
        "crl",
        sa.Column("ca_id", _id(), nullable=False),
        sa.Column("shard", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.Column("published_number", sa.BigInteger(), nullable=True),
        sa.Column("this_update", _TS, nullable=True),
        sa.Column("next_update", _TS, nullable=True),
        sa.Column("crl_der", sa.LargeBinary(), nullable=True),
        sa.CheckConstraint("shard >= 0", name="ck_crl_shard"),
        sa.CheckConstraint("last_number >= 1", name="ck_crl_last_number"),
        sa.ForeignKeyConstraint(
            ["ca_id"], ["certificate_authority.ca_id"], name="fk_crl_ca_id_certificate_authority"
        ),
        sa.PrimaryKeyConstraint("ca_id", "shard", name="pk_crl"),
    )
    op.create_table(
        "audit_event",
        sa.Column("event_id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("at", _TS, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column("details", sa.Text(), nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("row_hash", sa.String(length=64), nullable=False),
        sa.PrimaryKeyConstraint("event_id", name="pk_audit_event"),
    )
    audit_head = op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("last_event_id", sa.BigInteger(), nullable=False),
        sa.Column("last_hash", sa.String(length=64), nullable=False),
        sa.CheckConstraint("id = 1", name="ck_audit_head_single_row"),
        sa.PrimaryKeyConstraint("id", name="pk_audit_head"),
    )
    # The empty chain: no rows, head hash is the genesis value (64 zeros).
    op.bulk_insert(audit_head, [{"id": 1, "last_event_id": 0, "last_hash": "0" * 64}])


def downgrade() -> None:
    for table in (
        "audit_head",
        "audit_event",
        "crl",
        "ocsp_response_cache",
        "dcv_event",
        "revocation",
        "certificate",
        "certificate_authority",
    ):
        op.drop_table(table)
