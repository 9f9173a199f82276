"""Group commit in the CA pipeline (`padlock.ca.group_commit`), on SQLite and real PostgreSQL.

Concurrent sign requests share ledger transactions; every certificate returned is in the
ledger with its audit row and pre-signed OCSP response; a duplicate idempotency key inside
one batch gives both requests the same certificate; a failed batch transaction fails all of
its requests with 503 and commits nothing of them.

To put chosen requests into one batch, a test holds the ledger's write lock (as another
writer would): the batch in flight waits for it, and the requests behind it queue up. Other
writers (the CRL timer) wait too, each in a thread: the tests give the CA threads to spare.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from aiohttp import web
from cryptography import x509

from padlock import metrics
from padlock.ca import pipeline as pipeline_mod
from padlock.ledger import audit
from padlock.ledger import engine as engines
from padlock.ledger import ledger as ledger_mod
from padlock.services.ca_http import state
from tests.fixtures.ca import CASetup, MakeCA, start_ca
from tests.integration.ca import helpers
from tests.integration.ca.test_sign_batch import _sign as _sign_as

pytestmark = pytest.mark.softhsm


def _pipeline(app: web.Application) -> pipeline_mod.Pipeline:
    return app[state.CA].pipeline


def _batches() -> tuple[float, float]:
    """(batches committed, certificates in them) so far, from the CA's metrics."""
    count = metrics.REGISTRY.get_sample_value("padlock_ca_commit_batch_size_count") or 0.0
    total = metrics.REGISTRY.get_sample_value("padlock_ca_commit_batch_size_sum") or 0.0
    return count, total


@contextlib.contextmanager
def _write_lock_held(ledger: ledger_mod.Ledger) -> Iterator[None]:
    """Hold the ledger's write lock (BEGIN IMMEDIATE / audit_head FOR UPDATE) meanwhile."""
    connection = ledger._engine.connect()
    try:
        connection.execution_options(**{engines.WRITE_OPTION: True})
        transaction = connection.begin()
        audit.lock_head(connection)
        try:
            yield
        finally:
            transaction.rollback()
    finally:
        connection.close()


async def _until(condition: Any, what: str) -> None:
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting until {what}")


async def _sign(setup: CASetup, csr: str, key: str) -> tuple[int, dict[str, Any]]:
    return await _sign_as(setup, csr, key, requester="group/test")


async def test_a_burst_of_concurrent_signs_shares_transactions_and_loses_nothing(
    make_ca: MakeCA, ca_ledger_url: str
) -> None:
    setup = make_ca(ca_ledger_url, signing_threads=8)  # room beside the blocked writers
    batches_before, certs_before = _batches()
    async with start_ca(setup) as (ca, _app):
        results = await asyncio.gather(
            *(
                ca.sign(helpers.make_csr((f"b{n}.burst.test",)), "tls-server", 3600, f"b/{n}", "b")
                for n in range(24)
            )
        )
    batches, certs = _batches()
    assert certs - certs_before == 24
    assert batches - batches_before < 24  # some transactions held several certificates
    serials = {int(r.serial, 16) for r in results}
    assert len(serials) == 24
    with ledger_mod.Ledger(ca_ledger_url, migrate=False) as ledger:
        ca_id = ledger.find_ca(setup.intermediate)
        assert ca_id is not None
        for result in results:
            serial = int(result.serial, 16)
            record = ledger.get_certificate(ca_id, serial)
            assert record is not None and record.cert_pem == result.certificate
            ocsp = ledger.get_ocsp_response(ca_id, serial)
            assert ocsp is not None and ocsp.status.value == "good"
        assert ledger.count("certificate") == 24
        assert ledger.verify_audit_chain().ok


async def test_a_duplicate_key_inside_one_batch_gives_both_requests_one_certificate(
    make_ca: MakeCA, ca_ledger_url: str
) -> None:
    setup = make_ca(ca_ledger_url, signing_threads=8)  # room beside the blocked writers
    csr = helpers.make_csr(("dup.batch.test",))
    async with start_ca(setup) as (_ca, app):
        pipeline = _pipeline(app)
        batches_before, _ = _batches()
        with _write_lock_held(pipeline.ledger):
            plug = asyncio.create_task(_sign(setup, helpers.make_csr(), "group/plug"))
            await _until(lambda: _batches()[0] > batches_before, "the plug's batch is in flight")
            pair = [asyncio.create_task(_sign(setup, csr, "group/dup")) for _ in range(2)]
            await _until(lambda: pipeline.committer.queued == 2, "both requests are queued")
        (s1, first), (s2, second) = await asyncio.gather(*pair)
        assert (await plug)[0] == 200
    assert (s1, s2) == (200, 200)
    assert first["serial"] == second["serial"]
    assert first["certificate"] == second["certificate"]
    assert _batches()[0] == batches_before + 2  # the plug's batch, then the pair's
    with ledger_mod.Ledger(ca_ledger_url, migrate=False) as ledger:
        assert ledger.count("certificate") == 2
        assert ledger.verify_audit_chain().ok


async def test_a_failed_batch_transaction_fails_all_its_requests_and_commits_none(
    make_ca: MakeCA, ca_ledger_url: str
) -> None:
    setup = make_ca(ca_ledger_url, signing_threads=8)  # room beside the blocked writers
    keys = [f"group/fail/{n}" for n in range(4)]
    csrs = [helpers.make_csr((f"f{n}.batch.test",)) for n in range(4)]

    def fail_the_batch_of_four(
        _conn: object, _cursor: object, statement: str, parameters: object, *_: object
    ) -> None:
        # Only the audit insert of a batch holding two or more of these keys fails: after
        # its certificate and OCSP rows were inserted in the same transaction.
        insert = statement.lstrip().upper().startswith("INSERT INTO AUDIT_EVENT")
        if insert and str(parameters).count("group/fail/") >= 2:
            raise RuntimeError("disk full (injected)")

    async with start_ca(setup) as (ca, app):
        pipeline = _pipeline(app)
        engine = pipeline.ledger._engine
        batches_before, _ = _batches()
        sa.event.listen(engine, "before_cursor_execute", fail_the_batch_of_four)
        try:
            with _write_lock_held(pipeline.ledger):
                plug = asyncio.create_task(_sign(setup, helpers.make_csr(), "group/plug"))
                await _until(lambda: _batches()[0] > batches_before, "the plug is in flight")
                four = [
                    asyncio.create_task(_sign(setup, c, k)) for c, k in zip(csrs, keys, strict=True)
                ]
                await _until(lambda: pipeline.committer.queued == 4, "the four are queued")
            answers = await asyncio.gather(*four)
            assert (await plug)[0] == 200
        finally:
            sa.event.remove(engine, "before_cursor_execute", fail_the_batch_of_four)
        assert [status for status, _ in answers] == [503] * 4
        assert {body["error"] for _, body in answers} == {"ledger-unavailable"}
        with ledger_mod.Ledger(ca_ledger_url, migrate=False) as ledger:
            assert ledger.count("certificate") == 1  # the plug only
            assert ledger.count("ocsp_response_cache") == 1
            assert ledger.verify_audit_chain().ok
            ca_id = ledger.find_ca(setup.intermediate)
            assert ca_id is not None
            assert all(ledger.find_by_idempotency_key(ca_id, k) is None for k in keys)
        # The failure was the transaction's, not the requests': a retry is issued.
        retried = await asyncio.gather(
            *(
                ca.sign(c, "tls-server", 7 * 86400, k, "group/test")
                for c, k in zip(csrs, keys, strict=True)
            )
        )
    assert len({r.serial for r in retried}) == 4
    for result in retried:
        x509.load_pem_x509_certificate(result.certificate.encode())
