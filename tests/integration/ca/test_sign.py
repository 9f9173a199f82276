"""`POST /v1/sign` and `/v1/revoke` over the unix socket, on SQLite and real PostgreSQL."""

from __future__ import annotations

from pathlib import Path

import pytest
from cryptography import x509

from padlock.ca import client
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from tests.fixtures.ca import MakeCA, start_ca
from tests.integration.ca import helpers

pytestmark = pytest.mark.softhsm


async def test_signed_certificate_verifies_strictly_and_lints_clean(
    make_ca: MakeCA, ca_ledger_url: str, tmp_path: Path
) -> None:
    setup = make_ca(ca_ledger_url)
    async with start_ca(setup) as (ca, _app):
        result = await ca.sign(
            helpers.make_csr(("app.example.test", "www.example.test")),
            "tls-server",
            7 * 86400,
            "default/app/1",
            "default/app",
        )
        info = await ca.info()
    cert = x509.load_pem_x509_certificate(result.certificate.encode())
    assert f"{cert.serial_number:X}".lstrip("0") == result.serial.lstrip("0")
    assert cert.issuer == setup.intermediate.subject
    helpers.openssl_verify(setup, result.certificate, result.chain, tmp_path)
    assert helpers.pkilint_findings(result.certificate, tmp_path) == ""
    assert info.chain == result.chain
    assert x509.load_pem_x509_certificate(info.root.encode()) == setup.root
    with ledger_mod.Ledger(ca_ledger_url, migrate=False) as ledger:
        assert ledger.verify_audit_chain().ok
        assert ledger.count("certificate") == 1


async def test_same_idempotency_key_returns_the_same_certificate(
    make_ca: MakeCA, ca_ledger_url: str
) -> None:
    setup = make_ca(ca_ledger_url)
    csr = helpers.make_csr()
    async with start_ca(setup) as (ca, _app):
        first = await ca.sign(csr, "tls-server", 86400, "ns/app/7", "ns/app")
        again = await ca.sign(csr, "tls-server", 86400, "ns/app/7", "ns/app")
        other = await ca.sign(csr, "tls-server", 86400, "ns/app/8", "ns/app")
    assert again == first
    assert other.serial != first.serial
    assert helpers.count(setup, "certificate") == 2


async def test_reusing_an_idempotency_key_for_another_csr_is_refused_with_409(
    make_ca: MakeCA,
) -> None:
    setup = make_ca()
    async with start_ca(setup) as (ca, _app):
        await ca.sign(helpers.make_csr(), "tls-server", 86400, "ns/app/1", "ns/app")
        with pytest.raises(client.CARefused) as refused:
            await ca.sign(helpers.make_csr(), "tls-server", 86400, "ns/app/1", "ns/app")
    assert refused.value.status == 409
    assert refused.value.code == "idempotency-conflict"
    assert "another public key" in refused.value.message
    assert helpers.count(setup, "certificate") == 1


async def test_concurrent_requests_with_one_key_get_one_certificate(make_ca: MakeCA) -> None:
    import asyncio

    setup = make_ca()
    csr = helpers.make_csr()
    async with start_ca(setup) as (ca, _app):
        results = await asyncio.gather(
            *(ca.sign(csr, "tls-server", 86400, "ns/race/1", "ns/race") for _ in range(8))
        )
    assert len({r.serial for r in results}) == 1
    assert helpers.count(setup, "certificate") == 1


async def test_revoke_records_the_reason_and_unknown_serials_are_404(
    make_ca: MakeCA, ca_ledger_url: str
) -> None:
    setup = make_ca(ca_ledger_url)
    async with start_ca(setup) as (ca, _app):
        issued = await ca.sign(helpers.make_csr(), "tls-server", 86400, "ns/a/1", "ns/a")
        revoked = await ca.revoke(issued.serial, "keyCompromise", "ns/revocation-1")
        again = await ca.revoke(issued.serial, "superseded", "ns/revocation-2")
        with pytest.raises(client.CARefused) as unknown:
            await ca.revoke("7F" * 19, "keyCompromise", "ns/revocation-3")
        with pytest.raises(client.CARefused) as bad_reason:
            await ca.revoke(issued.serial, "certificateHold", "ns/revocation-4")
    assert revoked.serial == issued.serial
    assert revoked.reason == "keyCompromise"
    assert again == revoked  # the first revocation stands
    assert (unknown.value.status, unknown.value.code) == (404, "unknown-serial")
    assert (bad_reason.value.status, bad_reason.value.code) == (400, "invalid-reason")
    with ledger_mod.Ledger(ca_ledger_url, migrate=False) as ledger:
        ca_id = ledger.register_ca(setup.intermediate, ca_type=records.CAType.INTERMEDIATE)
        status = ledger.certificate_status(ca_id, int(issued.serial, 16))
        assert status.status is records.Status.REVOKED
        assert status.reason_code == 1
        assert ledger.verify_audit_chain().ok
