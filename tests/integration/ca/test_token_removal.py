"""Token pulled out of a running `padlock ca serve`: 503 + unhealthy, then it recovers."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from padlock.ca import client
from padlock.ledger import ledger as ledger_mod
from tests.integration.ca import helpers, procs

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]


async def _until(ca: client.CAClient, healthy: bool, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await ca.healthy() is healthy:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"CA did not report healthy={healthy} within {seconds}s")


async def test_removed_token_makes_the_ca_unhealthy_and_503_until_it_is_back(
    tmp_path: Path,
) -> None:
    ca_files = procs.make_isolated_ca(tmp_path)
    server = procs.CAProcess(ca_files)
    try:
        await server.wait_healthy()
        async with client.CAClient(socket_path=ca_files.socket) as ca:
            await ca.sign(helpers.make_csr(), "tls-server", 3600, "rm/1", "rm")
            (token_dir,) = ca_files.token_dirs()
            aside = procs.move_away(token_dir)
            with pytest.raises(client.CAUnavailable) as refused:
                await ca.sign(helpers.make_csr(), "tls-server", 3600, "rm/2", "rm")
            assert "503 hsm-unavailable" in str(refused.value)
            await _until(ca, healthy=False)
            aside.rename(token_dir)  # the token is back
            await _until(ca, healthy=True)
            await ca.sign(helpers.make_csr(), "tls-server", 3600, "rm/3", "rm")
    finally:
        assert server.terminate() == 0
    with ledger_mod.Ledger(ca_files.config.ledger.url, migrate=False) as ledger:
        assert ledger.count("certificate") == 2  # rm/1 and rm/3; nothing half-written for rm/2
        assert ledger.verify_audit_chain().ok
