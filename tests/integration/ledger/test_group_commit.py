"""`Ledger.record_issuances`: the group commit the CA pipeline uses, on both backends.

Several certificates in one transaction, each with its own hash-chained audit row and its
pre-signed OCSP response; per-item refusals (serial taken, idempotency key reused, not this
CA's certificate) leave the rest committed; a database error commits nothing of the batch.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterator

import pytest
import sqlalchemy as sa
from cryptography import x509

from padlock.ledger import IdempotencyKeyReused, Ledger, SerialCollision, records
from padlock.ledger import issuance as issuance_queries
from padlock.ledger import ledger as ledger_mod
from tests.integration.ledger import certs

NOW = datetime.datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=datetime.UTC)
TLS = records.CertType.TLS_SERVER


@pytest.fixture
def ledger(ledger_url: str) -> Iterator[Ledger]:
    with Ledger(ledger_url, clock=lambda: NOW) as opened:
        yield opened


@pytest.fixture
def ca_id(ledger: Ledger, software_ca: certs.SoftwareCA) -> int:
    return ledger.register_ca(software_ca.certificate, ca_type=records.CAType.INTERMEDIATE)


def _ocsp(ca_id: int, serial: int) -> records.OcspCacheEntry:
    return records.OcspCacheEntry(
        ca_id=ca_id,
        serial=serial,
        status=records.Status.GOOD,
        this_update=NOW,
        next_update=NOW + datetime.timedelta(hours=24),
        response_der=b"\x30\x03\x0a\x01\x00" + serial.to_bytes(20, "big"),
    )


def _item(
    ca_id: int, software_ca: certs.SoftwareCA, serial: int, key: str | None
) -> ledger_mod.Issuance:
    return ledger_mod.Issuance(
        ca_id,
        software_ca.issue(serial),
        cert_type=TLS,
        requester=f"ns/{serial}",
        idempotency_key=key,
        ocsp=_ocsp(ca_id, serial),
    )


def test_a_batch_commits_every_certificate_with_its_audit_row_and_ocsp_response(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    audit_before = ledger.count("audit_event")
    batch = [_item(ca_id, software_ca, 1000 + n, f"ns/app/{n}") for n in range(20)]
    outcomes = ledger.record_issuances(batch)

    assert [o.serial for o in outcomes if isinstance(o, records.CertificateRecord)] == [
        1000 + n for n in range(20)
    ]
    for n, outcome in enumerate(outcomes):
        assert ledger.get_certificate(ca_id, 1000 + n) == outcome
        assert ledger.find_by_idempotency_key(ca_id, f"ns/app/{n}") == outcome
        assert ledger.get_ocsp_response(ca_id, 1000 + n) == batch[n].ocsp
    assert ledger.count("audit_event") == audit_before + 20
    assert ledger.verify_audit_chain().ok


def test_per_item_refusals_leave_the_rest_of_the_batch_committed(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    old = ledger.record_issuance(
        ca_id, software_ca.issue(7), cert_type=TLS, requester="a", idempotency_key="taken"
    )
    stranger = certs.SoftwareCA("another CA")
    outcomes = ledger.record_issuances(
        [
            _item(ca_id, software_ca, 11, "fresh-1"),
            _item(ca_id, software_ca, 12, "taken"),  # key already in the ledger
            _item(ca_id, software_ca, 7, "fresh-2"),  # serial already in the ledger
            _item(ca_id, software_ca, 13, "fresh-1"),  # key of item 0 of this batch
            _item(ca_id, software_ca, 11, "fresh-3"),  # serial of item 0 of this batch
            ledger_mod.Issuance(ca_id, stranger.issue(14), cert_type=TLS, requester="x"),
            _item(ca_id, software_ca, 15, None),
        ]
    )

    first = outcomes[0]
    assert isinstance(first, records.CertificateRecord) and first.serial == 11
    assert isinstance(outcomes[1], IdempotencyKeyReused) and outcomes[1].existing == old
    assert isinstance(outcomes[2], SerialCollision) and outcomes[2].serial == 7
    assert isinstance(outcomes[3], IdempotencyKeyReused) and outcomes[3].existing == first
    assert isinstance(outcomes[4], SerialCollision) and outcomes[4].serial == 11
    assert isinstance(outcomes[5], ValueError) and "was not issued by CA" in str(outcomes[5])
    assert isinstance(outcomes[6], records.CertificateRecord) and outcomes[6].serial == 15
    assert ledger.count("certificate") == 3
    assert ledger.count("ocsp_response_cache") == 2
    assert ledger.verify_audit_chain().ok


def test_a_database_error_inside_the_batch_commits_nothing_of_it(
    ledger: Ledger, ledger_url: str, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    audit_before = ledger.count("audit_event")
    head_before = ledger.audit_checkpoint()

    def fail_on_audit_insert(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENT"):
            raise RuntimeError("disk full (injected)")

    engine = ledger._engine
    sa.event.listen(engine, "before_cursor_execute", fail_on_audit_insert)
    try:
        with pytest.raises(RuntimeError, match="disk full"):
            ledger.record_issuances([_item(ca_id, software_ca, 20 + n, f"k{n}") for n in range(5)])
    finally:
        sa.event.remove(engine, "before_cursor_execute", fail_on_audit_insert)

    # The certificate and OCSP inserts ran before the failing audit insert: all rolled back.
    assert ledger.count("certificate") == 0
    assert ledger.count("ocsp_response_cache") == 0
    assert ledger.count("audit_event") == audit_before
    assert ledger.audit_checkpoint() == head_before
    assert ledger.verify_audit_chain().ok
    # And the same batch commits afterwards.
    outcomes = ledger.record_issuances(
        [_item(ca_id, software_ca, 20 + n, f"k{n}") for n in range(5)]
    )
    assert all(isinstance(o, records.CertificateRecord) for o in outcomes)


def test_a_unique_violation_the_checks_missed_falls_back_to_one_transaction_per_item(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA, monkeypatch: pytest.MonkeyPatch
) -> None:
    ledger.record_issuance(
        ca_id, software_ca.issue(31), cert_type=TLS, requester="a", idempotency_key="dup"
    )
    # Blind the batch check, so the database's UNIQUE constraint is what catches the reuse.
    real_taken = issuance_queries.taken
    calls: list[int] = []

    def blind_once(*args: object, **kwargs: object) -> object:
        calls.append(1)
        if len(calls) == 1:
            return {}, set()
        return real_taken(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(issuance_queries, "taken", blind_once)
    outcomes = ledger.record_issuances(
        [_item(ca_id, software_ca, 32, "new"), _item(ca_id, software_ca, 33, "dup")]
    )

    assert isinstance(outcomes[0], records.CertificateRecord) and outcomes[0].serial == 32
    assert isinstance(outcomes[1], IdempotencyKeyReused) and outcomes[1].existing.serial == 31
    assert len(calls) == 3  # the batch, then each item on its own
    assert ledger.count("certificate") == 2
    assert ledger.verify_audit_chain().ok


def test_one_query_finds_the_certificates_of_several_idempotency_keys(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    outcomes = ledger.record_issuances(
        [_item(ca_id, software_ca, 40 + n, f"ns/look/{n}") for n in range(3)]
    )
    found = ledger.find_by_idempotency_keys(ca_id, ["ns/look/0", "ns/look/2", "ns/none"])
    assert found == {"ns/look/0": outcomes[0], "ns/look/2": outcomes[2]}
    assert ledger.find_by_idempotency_keys(ca_id + 1, ["ns/look/0"]) == {}
    assert ledger.find_by_idempotency_keys(ca_id, []) == {}


def test_signature_verified_spares_the_signature_check_but_not_the_issuer_name_check(
    ledger: Ledger, ca_id: int, software_ca: certs.SoftwareCA
) -> None:
    """`Issuance.signature_verified` is the CA pipeline saying "the lint gate verified this
    signature with this CA's certificate": the ledger then compares only the issuer name.
    Without the flag a certificate signed by another key under the same name is refused."""
    impostor = certs.SoftwareCA(software_ca.name.rfc4514_string().removeprefix("CN="))
    assert impostor.name == software_ca.name
    stranger = certs.SoftwareCA("another CA")

    def item(cert: x509.Certificate, serial: int, *, verified: bool) -> ledger_mod.Issuance:
        return ledger_mod.Issuance(
            ca_id, cert, cert_type=TLS, requester=f"ns/{serial}", signature_verified=verified
        )

    outcomes = ledger.record_issuances(
        [
            item(impostor.issue(21), 21, verified=False),  # signature checked: refused
            item(stranger.issue(22), 22, verified=True),  # issuer name still checked: refused
            item(software_ca.issue(23), 23, verified=True),
            item(impostor.issue(24), 24, verified=True),  # trusted the caller: no second check
        ]
    )

    assert isinstance(outcomes[0], ValueError) and "was not issued by CA" in str(outcomes[0])
    assert isinstance(outcomes[1], ValueError) and "issuer name is not the CA's subject" in str(
        outcomes[1]
    )
    assert isinstance(outcomes[2], records.CertificateRecord)
    assert isinstance(outcomes[3], records.CertificateRecord)
    assert ledger.count("certificate") == 2
