"""The ledger's contract, proved on both backends (SQLite file, real PostgreSQL server)."""

from __future__ import annotations

import datetime
import pathlib

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext

from padlock.ledger import (
    IdempotencyKeyReused,
    Ledger,
    LedgerError,
    SchemaNotCurrent,
    SerialCollision,
    UnknownCertificate,
    migrate,
    records,
    schema,
    verify_chain,
)
from padlock.ledger import engine as engines
from tests.integration.ledger import certs

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
TLS = records.CertType.TLS_SERVER


@pytest.fixture
def ledger(ledger_url: str) -> Ledger:
    with Ledger(ledger_url, clock=lambda: NOW) as opened:
        yield opened


@pytest.fixture
def ca_id(ledger: Ledger, software_ca: certs.SoftwareCA) -> int:
    return ledger.register_ca(software_ca.certificate, ca_type=records.CAType.INTERMEDIATE)


def test_migrations_build_exactly_the_declared_schema_from_empty(ledger_url: str) -> None:
    engine = engines.create_engine(ledger_url)
    try:
        migrate.upgrade(engine)
        with engine.connect() as connection:
            assert migrate.current_revision(connection) == migrate.head_revision()
            context = MigrationContext.configure(
                connection, opts={"compare_type": True, "target_metadata": schema.metadata}
            )
            assert compare_metadata(context, schema.metadata) == []
        migrate.downgrade(engine, "base")
        assert set(sa.inspect(engine).get_table_names()) <= {"alembic_version"}
        migrate.upgrade(engine)
        migrate.check_current(engine)
    finally:
        engine.dispose()


def test_readers_refuse_a_ledger_whose_schema_is_not_current(ledger_url: str) -> None:
    empty = engines.create_engine(ledger_url)
    empty.connect().close()  # an empty database (SQLite: the file now exists)
    empty.dispose()
    with pytest.raises(SchemaNotCurrent, match=r"is at schema revision \(empty\)"):
        Ledger(ledger_url, migrate=False)


def test_verifying_a_sqlite_ledger_that_does_not_exist_names_the_path(
    tmp_path: pathlib.Path,
) -> None:
    missing = tmp_path / "typo" / "ledger.db"
    with pytest.raises(LedgerError, match=f"no ledger database at {missing}"):
        verify_chain(f"sqlite:///{missing}")
    assert not missing.parent.exists()


def test_registering_the_same_ca_key_twice_returns_the_same_id(
    ledger: Ledger, software_ca: certs.SoftwareCA
) -> None:
    first = ledger.register_ca(software_ca.certificate, ca_type=records.CAType.INTERMEDIATE)
    again = ledger.register_ca(software_ca.certificate, ca_type=records.CAType.INTERMEDIATE)
    other = ledger.register_ca(certs.SoftwareCA("other").certificate, ca_type=records.CAType.ROOT)
    assert first == again != other
    assert ledger.count("certificate_authority") == 2


def test_a_recorded_certificate_reads_back_with_fields_taken_from_the_certificate(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    cert = software_ca.issue(0xABCDEF, dns="api.prod.svc")
    recorded = ledger.record_issuance(ca_id, cert, cert_type=TLS, requester="prod/api")
    assert ledger.get_certificate(ca_id, 0xABCDEF) == recorded
    assert recorded.serial == 0xABCDEF
    assert recorded.sans == ("DNS:api.prod.svc", "URI:spiffe://cluster/ns/x")
    assert recorded.subject_cn == "api.prod.svc"
    assert recorded.key_algorithm == "ec-p256"
    assert recorded.valid_until == cert.not_valid_after_utc
    assert recorded.issued_at == NOW
    assert recorded.issued_at.tzinfo is datetime.UTC
    assert recorded.certificate == cert
    assert ledger.get_certificate(ca_id, 0xABCDF0) is None


def test_a_retried_sign_request_finds_the_certificate_already_issued(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    first = ledger.record_issuance(
        ca_id, software_ca.issue(), cert_type=TLS, requester="ns/web", idempotency_key="ns/web/3"
    )
    assert ledger.find_by_idempotency_key(ca_id, "ns/web/3") == first
    assert ledger.find_by_idempotency_key(ca_id, "ns/web/4") is None
    with pytest.raises(IdempotencyKeyReused) as raised:
        ledger.record_issuance(
            ca_id,
            software_ca.issue(),
            cert_type=TLS,
            requester="ns/web",
            idempotency_key="ns/web/3",
        )
    assert raised.value.existing == first
    assert ledger.count("certificate") == 1


def test_the_database_itself_refuses_a_second_row_with_the_same_key_or_serial(
    ledger: Ledger, ledger_url: str, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    ledger.record_issuance(
        ca_id, software_ca.issue(77), cert_type=TLS, requester="a", idempotency_key="k"
    )
    engine = engines.create_engine(ledger_url)
    try:
        with engine.connect() as connection:
            with connection.begin():
                row = dict(connection.execute(sa.select(schema.certificate)).one()._mapping)
            del row["cert_id"]
            for changes in ({"serial_number": schema.serial_to_db(78)}, {"idempotency_key": "k2"}):
                with pytest.raises(sa.exc.IntegrityError), connection.begin():
                    connection.execute(schema.certificate.insert().values(**(row | changes)))
    finally:
        engine.dispose()


def test_a_serial_the_ca_already_used_raises_serial_collision(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    ledger.record_issuance(ca_id, software_ca.issue(42), cert_type=TLS, requester="a")
    with pytest.raises(SerialCollision, match="already issued a certificate with serial 0x2a"):
        ledger.record_issuance(ca_id, software_ca.issue(42), cert_type=TLS, requester="b")
    other_ca = certs.SoftwareCA("another issuer")
    other_id = ledger.register_ca(other_ca.certificate, ca_type=records.CAType.INTERMEDIATE)
    ledger.record_issuance(other_id, other_ca.issue(42), cert_type=TLS, requester="c")
    assert ledger.count("certificate") == 2


def test_a_certificate_the_ca_did_not_sign_is_refused(ledger: Ledger, ca_id: int) -> None:
    stranger = certs.SoftwareCA("padlock test CA")  # same name, different key
    with pytest.raises(ValueError, match=f"was not issued by CA {ca_id}"):
        ledger.record_issuance(ca_id, stranger.issue(), cert_type=TLS, requester="a")
    assert ledger.count("certificate") == 0


def test_revocation_changes_status_and_appears_in_crl_lists(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    expired = datetime.datetime(2026, 2, 1, tzinfo=datetime.UTC)
    for serial in (3, 1, 2):
        ledger.record_issuance(
            ca_id,
            software_ca.issue(serial, not_after=expired if serial == 3 else None),
            cert_type=TLS,
            requester="a",
        )
    assert ledger.certificate_status(ca_id, 1) == records.CertificateStatus(records.Status.GOOD)
    assert ledger.certificate_status(ca_id, 9).status is records.Status.UNKNOWN
    revoked_at = datetime.datetime(2026, 3, 2, tzinfo=datetime.UTC)
    ledger.revoke(ca_id, 3, 4, "ops", revoked_at)
    ledger.revoke(ca_id, 1, 1, "ops", revoked_at, reason_text="key leaked")
    assert ledger.certificate_status(ca_id, 1) == records.CertificateStatus(
        records.Status.REVOKED, revoked_at, 1
    )
    assert ledger.certificate_status(ca_id, 2).status is records.Status.GOOD
    assert ledger.get_certificate(ca_id, 1).status == "revoked"  # type: ignore[union-attr]
    assert [r.serial for r in ledger.list_revoked(ca_id)] == [1, 3]
    assert [r.serial for r in ledger.list_revoked(ca_id, unexpired_at=NOW)] == [1]
    feed = ledger.revoked_since(ca_id)
    assert [r.serial for r in feed] == [3, 1]
    assert [r.serial for r in ledger.revoked_since(ca_id, feed[0].revocation_id)] == [1]
    with pytest.raises(UnknownCertificate):
        ledger.revoke(ca_id, 9, 1, "ops")
    with pytest.raises(ValueError, match="reason code 6 is not accepted"):
        ledger.revoke(ca_id, 2, 6, "ops")


def test_revoking_twice_is_harmless_and_returns_the_original_revocation(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    ledger.record_issuance(ca_id, software_ca.issue(5), cert_type=TLS, requester="a")
    first = ledger.revoke(ca_id, 5, 1, "alice", datetime.datetime(2026, 3, 2, tzinfo=datetime.UTC))
    events = ledger.count("audit_event")
    again = ledger.revoke(ca_id, 5, 4, "bob", datetime.datetime(2026, 3, 5, tzinfo=datetime.UTC))
    assert again == first
    assert ledger.count("revocation") == 1
    assert ledger.count("audit_event") == events


def test_revoke_all_revokes_every_remaining_unexpired_certificate_of_that_ca_only(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    for serial in (10, 11, 12):
        ledger.record_issuance(ca_id, software_ca.issue(serial), cert_type=TLS, requester="a")
    other_ca = certs.SoftwareCA("bystander")
    other_id = ledger.register_ca(other_ca.certificate, ca_type=records.CAType.INTERMEDIATE)
    ledger.record_issuance(other_id, other_ca.issue(10), cert_type=TLS, requester="a")
    expired = software_ca.issue(13, not_after=NOW - datetime.timedelta(seconds=1))
    ledger.record_issuance(ca_id, expired, cert_type=TLS, requester="a")
    ledger.revoke(ca_id, 11, 1, "ops")
    revoked = ledger.revoke_all(ca_id, 2, "drill")
    assert [(r.serial, r.reason_code) for r in revoked] == [(10, 2), (12, 2)]
    # An expired certificate needs no revocation (and would only bloat the CRL).
    assert ledger.certificate_status(ca_id, 13).status is records.Status.GOOD
    assert ledger.certificate_status(ca_id, 11).reason_code == 1
    assert ledger.certificate_status(other_id, 10).status is records.Status.GOOD
    assert ledger.revoke_all(ca_id, 2, "drill") == []


def test_crl_numbers_increase_per_ca_and_shard_and_stored_crls_never_go_backwards(
    ledger: Ledger, ca_id: int
) -> None:
    assert [ledger.next_crl_number(ca_id, 0) for _ in range(3)] == [1, 2, 3]
    assert ledger.next_crl_number(ca_id, 7) == 1
    assert ledger.get_crl(ca_id, 0) is None
    crl3 = records.CrlRecord(ca_id, 0, 3, NOW, NOW + datetime.timedelta(days=1), b"crl-3")
    crl2 = records.CrlRecord(ca_id, 0, 2, NOW, NOW + datetime.timedelta(days=1), b"crl-2")
    assert ledger.put_crl(crl3) is True
    assert ledger.put_crl(crl2) is False
    assert ledger.get_crl(ca_id, 0) == crl3
    with pytest.raises(ValueError, match="never handed out"):
        ledger.put_crl(records.CrlRecord(ca_id, 0, 9, NOW, NOW, b"x"))


def test_ocsp_responses_are_cached_per_certificate_and_replaced(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    ledger.record_issuance(ca_id, software_ca.issue(8), cert_type=TLS, requester="a")
    later = NOW + datetime.timedelta(hours=12)
    good = records.OcspCacheEntry(ca_id, 8, records.Status.GOOD, NOW, later, b"good")
    ledger.put_ocsp_response(good)
    assert ledger.get_ocsp_response(ca_id, 8) == good
    revoked = records.OcspCacheEntry(ca_id, 8, records.Status.REVOKED, later, later, b"rev")
    ledger.put_ocsp_response(revoked)
    assert ledger.get_ocsp_response(ca_id, 8) == revoked
    assert ledger.ocsp_responses(ca_id) == [revoked]
    assert ledger.ocsp_responses(ca_id, expiring_before=NOW) == []
    assert ledger.get_ocsp_response(ca_id, 9) is None
    with pytest.raises(UnknownCertificate):
        ledger.put_ocsp_response(
            records.OcspCacheEntry(ca_id, 9, records.Status.GOOD, NOW, NOW, b"")
        )


def test_naive_timestamps_are_refused(ledger: Ledger, ca_id: int) -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        ledger.append_audit("x", "y", {}, datetime.datetime(2026, 1, 1))


def test_every_change_is_audited_and_the_chain_verifies(
    ledger: Ledger, ledger_url: str, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    ledger.record_issuance(ca_id, software_ca.issue(1), cert_type=TLS, requester="ns/a")
    ledger.revoke(ca_id, 1, 1, "ops")
    event = ledger.append_audit("ceremony.intermediate", "root-officer", {"slot": 0, "ok": True})
    assert event.event_id == 4
    assert event.details_json == '{"ok":true,"slot":0}'
    result = verify_chain(ledger_url)
    assert result == records.VerifyResult(ok=True, rows_checked=4)


def _tamper(ledger_url: str, statement: str) -> None:
    engine = engines.create_engine(ledger_url)
    try:
        with engine.begin() as connection:
            connection.execute(sa.text(statement))
    finally:
        engine.dispose()


def _rewrite_row_2_with_a_fresh_hash(ledger_url: str) -> None:
    """What a careful attacker does: change a row and recompute its own hash."""
    from padlock.ledger import audit

    engine = engines.create_engine(ledger_url)
    try:
        with engine.begin() as connection:
            row = connection.execute(
                sa.select(schema.audit_event).where(schema.audit_event.c.event_id == 2)
            ).one()
            digest = audit.row_hash(
                event_id=2,
                at=row.at,
                kind=row.kind,
                actor="mallory",
                details_json=row.details,
                prev_hash=row.prev_hash,
            )
            connection.execute(
                schema.audit_event.update()
                .where(schema.audit_event.c.event_id == 2)
                .values(actor="mallory", row_hash=digest)
            )
    finally:
        engine.dispose()


@pytest.mark.parametrize(
    ("tampering", "bad_row", "why"),
    [
        ("UPDATE audit_event SET actor = 'mallory' WHERE event_id = 2", 2, "fields do not match"),
        (
            "UPDATE audit_event SET details = replace(details, 'tls-server', 'tls-client') "
            "WHERE event_id = 2",
            2,
            "fields do not match",
        ),
        ("DELETE FROM audit_event WHERE event_id = 2", 2, "row 2 is missing"),
        ("DELETE FROM audit_event WHERE event_id = 4", 4, "newest rows were deleted"),
        (_rewrite_row_2_with_a_fresh_hash, 2, "row 2 was rewritten"),
    ],
    ids=["field-changed", "details-changed", "row-deleted", "last-row-deleted", "row-rehashed"],
)
def test_tampering_with_an_audit_row_makes_verify_name_that_row(
    ledger: Ledger,
    ledger_url: str,
    ca_id: int,
    software_ca: certs.SoftwareCA,
    tampering: object,
    bad_row: int,
    why: str,
) -> None:
    ledger.record_issuance(ca_id, software_ca.issue(1), cert_type=TLS, requester="ns/a")
    ledger.revoke(ca_id, 1, 1, "ops")
    ledger.append_audit("note", "ops", {"n": 4})
    assert verify_chain(ledger_url).ok
    if isinstance(tampering, str):
        _tamper(ledger_url, tampering)
    else:
        assert callable(tampering)
        tampering(ledger_url)
    result = verify_chain(ledger_url)
    assert not result.ok
    assert result.first_bad_id == bad_row, result.reason
    assert result.reason is not None and why in result.reason


@pytest.mark.parametrize("serial", [0, -1, 2**159, 2**200])
def test_serials_no_certificate_can_have_are_simply_not_found(
    ledger: Ledger, ca_id: int, serial: int
) -> None:
    assert ledger.certificate_status(ca_id, serial).status is records.Status.UNKNOWN
    assert ledger.get_certificate(ca_id, serial) is None
    assert ledger.get_ocsp_response(ca_id, serial) is None
    with pytest.raises(UnknownCertificate):
        ledger.revoke(ca_id, serial, 1, "ops")


def _rewrite_whole_chain(ledger_url: str, *, actor_of_row_2: str, keep_rows: int) -> None:
    """The attack the chain alone cannot see: edit, re-hash every row, rewrite the head."""
    from padlock.ledger import audit

    engine = engines.create_engine(ledger_url)
    try:
        with engine.begin() as connection:
            table = schema.audit_event
            connection.execute(table.delete().where(table.c.event_id > keep_rows))
            prev = schema.GENESIS_HASH
            rows = connection.execute(sa.select(table).order_by(table.c.event_id)).all()
            for row in rows:
                actor = actor_of_row_2 if row.event_id == 2 else row.actor
                digest = audit.row_hash(
                    event_id=row.event_id,
                    at=row.at,
                    kind=row.kind,
                    actor=actor,
                    details_json=row.details,
                    prev_hash=prev,
                )
                connection.execute(
                    table.update()
                    .where(table.c.event_id == row.event_id)
                    .values(actor=actor, prev_hash=prev, row_hash=digest)
                )
                prev = digest
            connection.execute(
                schema.audit_head.update().values(last_event_id=len(rows), last_hash=prev)
            )
    finally:
        engine.dispose()


def test_checkpoints_kept_elsewhere_catch_a_chain_rewritten_from_the_start(
    ledger: Ledger, ledger_url: str, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    ledger.record_issuance(ca_id, software_ca.issue(1), cert_type=TLS, requester="ns/a")
    at_row_2 = ledger.audit_checkpoint()
    ledger.revoke(ca_id, 1, 1, "ops")
    at_row_3 = ledger.audit_checkpoint()
    assert (at_row_2.event_id, at_row_3.event_id) == (2, 3)
    assert verify_chain(ledger_url, [at_row_2, at_row_3]).ok

    _rewrite_whole_chain(ledger_url, actor_of_row_2="mallory", keep_rows=3)
    assert verify_chain(ledger_url).ok  # the limitation the checkpoints exist for
    result = verify_chain(ledger_url, [at_row_2, at_row_3])
    assert (result.ok, result.first_bad_id) == (False, 2), result.reason

    _rewrite_whole_chain(ledger_url, actor_of_row_2="ns/a", keep_rows=2)
    assert verify_chain(ledger_url, [at_row_2]).ok
    result = verify_chain(ledger_url, [at_row_2, at_row_3])
    assert (result.ok, result.first_bad_id) == (False, 3), result.reason
    assert "rows were deleted" in (result.reason or "")


def test_a_passed_domain_validation_is_reusable_until_it_expires(ledger: Ledger) -> None:
    expires = NOW + datetime.timedelta(days=30)
    offered = ledger.record_dcv("Web.Example.com", "http-01", "tok", "tok.thumb", expires)
    assert offered.validated_at is None
    assert ledger.valid_dcv("web.example.com") is None
    passed = ledger.mark_dcv_validated(offered.dcv_id, actor="acme-va", ip="10.0.0.7")
    assert (passed.domain, passed.validated_at, passed.ip_logged) == (
        "web.example.com",
        NOW,
        "10.0.0.7",
    )
    assert ledger.mark_dcv_validated(offered.dcv_id, actor="acme-va", at=expires) == passed
    assert ledger.valid_dcv("WEB.example.com") == passed
    assert ledger.valid_dcv("web.example.com", expires) is None
    assert ledger.valid_dcv("other.example.com") is None
    with pytest.raises(ValueError, match="DCV method 'email' is not one of"):
        ledger.record_dcv("x.example", "email", "t", "v", expires)
    with pytest.raises(LookupError, match="no DCV challenge with id 999"):
        ledger.mark_dcv_validated(999, actor="acme-va")
    assert ledger.verify_audit_chain().ok
