"""Two CA workers on one loopback TCP listener with mTLS: the supervisor binds the port once,
both workers terminate TLS on it with the same server certificate and client CA, and a client
without a certificate is refused by either. The supervisor runs in the test's event loop; the
workers are real processes on the session's SoftHSM token."""

from __future__ import annotations

import asyncio
import dataclasses
import ssl
from pathlib import Path

import aiohttp
import pytest

from padlock.services.ca_http import supervisor
from padlock.services.ca_http.app import WORKER_HEADER
from tests.fixtures.ca import MakeCA
from tests.integration.ca.test_tcp_mtls import _mtls_ca, _write

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]


async def test_both_workers_serve_mtls_on_one_tcp_port_and_refuse_anonymous_clients(
    make_ca: MakeCA, tmp_path: Path
) -> None:
    setup, port, client_cert, client_key = _mtls_ca(make_ca, tmp_path)
    config = dataclasses.replace(setup.config, workers=2)
    parent = supervisor.Supervisor(config)
    running = asyncio.create_task(parent.run())
    with_cert = ssl.create_default_context(cafile=str(tmp_path / "clients.pem"))
    with_cert.load_cert_chain(
        _write(tmp_path / "client.pem", client_cert),
        _write(tmp_path / "client-key.pem", client_key),
    )
    anonymous = ssl.create_default_context(cafile=str(tmp_path / "clients.pem"))
    url = f"https://127.0.0.1:{port}/healthz"
    seen: set[str] = set()
    try:
        for _ in range(600):
            assert not running.done(), "the supervisor stopped"
            try:
                async with (  # a fresh connection each time
                    aiohttp.ClientSession() as session,
                    session.get(url, ssl=with_cert) as resp,
                ):
                    if resp.status == 200:
                        seen.add(resp.headers[WORKER_HEADER].split("/")[0])
            except aiohttp.ClientConnectionError:
                pass  # not listening yet
            if seen == {"0", "1"}:
                break
            await asyncio.sleep(0.05)
        assert seen == {"0", "1"}
        for _ in range(6):
            with pytest.raises(aiohttp.ClientError):
                async with (
                    aiohttp.ClientSession() as session,
                    session.get(url, ssl=anonymous) as resp,
                ):
                    await resp.read()
    finally:
        parent.stop()
        assert await running == 0
