"""The group commit's DB-API path (`padlock.ledger.dbapi`) stores what SQLAlchemy Core would.

`Ledger.record_issuances` runs its hot statements on the driver's cursor. These tests write a
batch that way, then, in a transaction rolled back afterwards, delete it and write the same
batch again with plain SQLAlchemy Core statements and the column and audit formulas the
ledger had before (the specification here), and compare the rows byte for byte as the
driver returns them (no SQLAlchemy type processing). Both backends; with and without a
cursor-event listener (which switches the path to `exec_driver_sql`). A database error on
the cursor path is SQLAlchemy's error and commits nothing.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import typing
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import NameOID

from padlock.ledger import Ledger, audit, records, schema
from padlock.ledger import ledger as ledger_mod
from padlock.pki import algorithms
from tests.integration.ledger import certs

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
TABLES = (
    ("certificate", "cert_id"),
    ("ocsp_response_cache", "cert_id"),
    ("audit_event", "event_id"),
    ("audit_head", "id"),
)


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger(ledger_url, clock=lambda: NOW) as opened:
        yield opened


def _batch(ca_id: int, ca: certs.SoftwareCA) -> list[ledger_mod.Issuance]:
    items = []
    for n in range(5):
        certificate = ca.issue(
            0x7F00 + n,
            dns=f"app-{n}.default.svc",
            not_after=NOW + datetime.timedelta(days=90, microseconds=n),
        )
        items.append(
            ledger_mod.Issuance(
                ca_id,
                certificate,
                cert_type=records.CertType.TLS_SERVER,
                requester=f"default/app-{n}",
                idempotency_key=None if n == 3 else f"default/app-{n}/1",
                domain_validated_at=NOW - datetime.timedelta(minutes=n) if n == 2 else None,
                ocsp=None
                if n == 4
                else records.OcspCacheEntry(
                    ca_id=ca_id,
                    serial=certificate.serial_number,
                    status=records.Status.GOOD,
                    this_update=NOW,
                    next_update=NOW + datetime.timedelta(hours=24),
                    response_der=b"\x30\x03\x0a\x01\x00" + bytes([n]) * 7,
                ),
                signature_verified=n % 2 == 0,
            )
        )
    return items


def _reference_values(item: ledger_mod.Issuance) -> dict[str, object]:
    """The certificate row as the ledger computed it before the DB-API path."""
    certificate = item.certificate
    names = certificate.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    spki = certificate.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    sans = [
        f"DNS:{name.value}" if isinstance(name, x509.DNSName) else f"URI:{name.value}"
        for name in san
    ]
    return {
        "serial_number": certificate.serial_number.to_bytes(20, "big"),
        "issuing_ca_id": item.ca_id,
        "subject_cn": names[0].value if names else None,
        "subject_dn": certificate.subject.rfc4514_string(),
        "cert_type": item.cert_type.value,
        "san_list": json.dumps(sans),
        "key_algorithm": algorithms.KeyAlgorithm.of_public_key(certificate.public_key()).value,
        "public_key_sha256": hashlib.sha256(spki).digest(),
        "cert_pem": certificate.public_bytes(serialization.Encoding.PEM).decode("ascii"),
        "valid_from": certificate.not_valid_before_utc,
        "valid_until": certificate.not_valid_after_utc,
        "issued_at": NOW,
        "requester": item.requester,
        "idempotency_key": item.idempotency_key,
        "domain_validated_at": item.domain_validated_at,
        "status": "active",
    }


def _stored(connection: sa.Connection) -> dict[str, list[tuple[typing.Any, ...]]]:
    """Every row of the tables the group commit writes, as the driver returns them."""
    return {
        table: [
            tuple(row)
            for row in connection.exec_driver_sql(f"SELECT * FROM {table} ORDER BY {key}")  # noqa: S608
        ]
        for table, key in TABLES
    }


def _rewrite_with_core(
    connection: sa.Connection,
    batch: list[ledger_mod.Issuance],
    cert_ids: list[int],
    head: records.AuditCheckpoint,
) -> None:
    """Delete the batch's rows, then insert them again with SQLAlchemy Core statements."""
    connection.execute(sa.delete(schema.ocsp_response_cache))
    connection.execute(sa.delete(schema.certificate))
    connection.execute(
        sa.delete(schema.audit_event).where(schema.audit_event.c.event_id > head.event_id)
    )
    for item, cert_id in zip(batch, cert_ids, strict=True):
        connection.execute(
            schema.certificate.insert().values(cert_id=cert_id, **_reference_values(item))
        )
        if item.ocsp is not None:
            connection.execute(
                schema.ocsp_response_cache.insert().values(
                    cert_id=cert_id,
                    ca_id=item.ocsp.ca_id,
                    this_update=item.ocsp.this_update,
                    next_update=item.ocsp.next_update,
                    ocsp_status=item.ocsp.status.value,
                    signed_response=item.ocsp.response_der,
                )
            )
    event_id, prev_hash = head.event_id, head.row_hash
    for item in batch:
        certificate = item.certificate
        event_id += 1
        details = audit.canonical_details(
            {
                "ca_id": item.ca_id,
                "serial": f"{certificate.serial_number:x}",
                "cert_type": item.cert_type.value,
                "subject": certificate.subject.rfc4514_string(),
                "sans": json.loads(str(_reference_values(item)["san_list"])),
                "not_after": certificate.not_valid_after_utc.isoformat(),
                "idempotency_key": item.idempotency_key,
            }
        )
        digest = audit.row_hash(
            event_id=event_id,
            at=NOW,
            kind="certificate.issued",
            actor=item.requester,
            details_json=details,
            prev_hash=prev_hash,
        )
        connection.execute(
            schema.audit_event.insert().values(
                event_id=event_id,
                at=NOW,
                kind="certificate.issued",
                actor=item.requester,
                details=details,
                prev_hash=prev_hash,
                row_hash=digest,
            )
        )
        prev_hash = digest
    connection.execute(
        schema.audit_head.update().values(last_event_id=event_id, last_hash=prev_hash)
    )


@pytest.mark.parametrize("listened", [False, True], ids=["cursor", "exec_driver_sql"])
def test_a_batch_stores_the_same_bytes_as_sqlalchemy_core_statements_would(
    ledger: Ledger, software_ca: certs.SoftwareCA, listened: bool
) -> None:
    ca_id = ledger.register_ca(software_ca.certificate, ca_type=records.CAType.INTERMEDIATE)
    head = ledger.audit_checkpoint()
    batch = _batch(ca_id, software_ca)
    engine = ledger._engine
    seen: list[str] = []

    def watch(_c: object, _cursor: object, statement: str, *_: object) -> None:
        seen.append(statement)

    if listened:
        sa.event.listen(engine, "before_cursor_execute", watch)
    try:
        outcomes = ledger.record_issuances(batch)
    finally:
        if listened:
            sa.event.remove(engine, "before_cursor_execute", watch)
    assert all(isinstance(o, records.CertificateRecord) for o in outcomes), outcomes
    cert_ids = [typing.cast(records.CertificateRecord, o).cert_id for o in outcomes]
    assert cert_ids == sorted(cert_ids)  # ids handed out in batch order
    assert any("INSERT INTO audit_event" in s for s in seen) is listened
    assert ledger.verify_audit_chain().ok
    for outcome, item in zip(outcomes, batch, strict=True):
        assert ledger.get_certificate(ca_id, item.certificate.serial_number) == outcome

    with engine.connect() as connection, connection.begin() as transaction:
        written = _stored(connection)
        _rewrite_with_core(connection, batch, cert_ids, head)
        reference = _stored(connection)
        transaction.rollback()
    assert len(written["certificate"]) == 5 and len(written["ocsp_response_cache"]) == 4
    assert written == reference


def test_a_database_error_on_the_cursor_path_is_sqlalchemys_and_commits_nothing(
    ledger: Ledger, software_ca: certs.SoftwareCA
) -> None:
    ca_id = ledger.register_ca(software_ca.certificate, ca_type=records.CAType.INTERMEDIATE)
    head = ledger.audit_checkpoint()
    # A stray audit row where the batch's first audit row must go: the audit INSERT, after
    # the certificate and OCSP inserts, fails on the primary key (on the raw cursor).
    with ledger._engine.begin() as connection:
        connection.execute(
            schema.audit_event.insert().values(
                event_id=head.event_id + 1,
                at=NOW,
                kind="stray",
                actor="test",
                details="{}",
                prev_hash=head.row_hash,
                row_hash="f" * 64,
            )
        )
    batch = _batch(ca_id, software_ca)
    with pytest.raises(sa.exc.IntegrityError):
        ledger.record_issuances(batch)
    assert ledger.count("certificate") == 0
    assert ledger.count("ocsp_response_cache") == 0
    assert ledger.audit_checkpoint() == head

    with ledger._engine.begin() as connection:
        connection.execute(
            sa.delete(schema.audit_event).where(schema.audit_event.c.kind == "stray")
        )
    outcomes = ledger.record_issuances(batch)
    assert all(isinstance(o, records.CertificateRecord) for o in outcomes)
    assert ledger.verify_audit_chain().ok
