"""kill -9 of `padlock ca serve` in the middle of a signing burst loses nothing it returned."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from cryptography import x509

from padlock.ca import client
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from tests.integration.ca import helpers, procs

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]


async def _burst(
    ca: client.CAClient,
    worker: int,
    returned: list[client.SignResult],
    stop: asyncio.Event,
    enough: asyncio.Event,
) -> None:
    n = 0
    while not stop.is_set():
        try:
            result = await ca.sign(
                helpers.make_csr((f"w{worker}-{n}.crash.test",)),
                "tls-server",
                3600,
                f"crash/{worker}/{n}",
                f"crash/{worker}",
            )
        except client.CAError:
            return  # the CA is gone: whatever was not answered was never released
        returned.append(result)
        if len(returned) >= 40:
            enough.set()
        n += 1


async def test_kill_9_during_a_burst_keeps_every_returned_certificate(
    tmp_path: Path, ca_ledger_url: str
) -> None:
    ca_files = procs.make_isolated_ca(tmp_path, ca_ledger_url)
    server = procs.CAProcess(ca_files)
    returned: list[client.SignResult] = []
    try:
        await server.wait_healthy()
        stop = asyncio.Event()
        async with client.CAClient(socket_path=ca_files.socket, timeout=10) as ca:
            enough = asyncio.Event()
            workers = [asyncio.create_task(_burst(ca, w, returned, stop, enough)) for w in range(8)]
            await asyncio.wait_for(enough.wait(), timeout=120)
            server.kill9()  # mid-burst: requests are in flight in every stage of the pipeline
            stop.set()
            await asyncio.gather(*workers)
        assert len(returned) >= 40

        restarted = procs.CAProcess(ca_files)
        try:
            await restarted.wait_healthy()
            async with client.CAClient(socket_path=ca_files.socket) as ca:
                # A retried request after the crash returns the certificate, never a second.
                first = returned[0]
                cert = x509.load_pem_x509_certificate(first.certificate.encode())
                san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName)
                assert san.value.get_values_for_type(x509.DNSName)[0].startswith("w")
        finally:
            assert restarted.terminate() == 0  # SIGTERM: a clean shutdown
    finally:
        server.terminate()

    with ledger_mod.Ledger(ca_files.config.ledger.url, migrate=False) as ledger:
        inter = x509.load_pem_x509_certificates(ca_files.config.chain_file.read_bytes())[0]
        ca_id = ledger.register_ca(inter, ca_type=records.CAType.INTERMEDIATE)
        for result in returned:
            record = ledger.get_certificate(ca_id, int(result.serial, 16))
            assert record is not None, f"returned serial {result.serial} is not in the ledger"
            assert record.cert_pem == result.certificate
        assert ledger.verify_audit_chain().ok
        total = ledger.count("certificate")
    serials = [r.serial for r in returned]
    assert len(set(serials)) == len(serials)
    assert total >= len(returned)
