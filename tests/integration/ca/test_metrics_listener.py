"""`listen.metrics_port`: Prometheus scrapes the CA over TCP, and reaches nothing but /metrics."""

from __future__ import annotations

import asyncio
import socket
from pathlib import Path

import aiohttp
import pytest

from padlock.ca import client
from padlock.ca import config as ca_config
from padlock.services import ca_http
from tests.fixtures.ca import MakeCA

pytestmark = pytest.mark.softhsm


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def test_metrics_port_serves_metrics_and_not_the_signing_api(
    make_ca: MakeCA, tmp_path: Path
) -> None:
    port = _free_port()
    setup = make_ca(listen=ca_config.ListenConfig(socket=tmp_path / "ca.sock", metrics_port=port))
    stop = asyncio.Event()
    serving = asyncio.create_task(ca_http.serve(setup.config, stop=stop))
    try:
        async with client.CAClient(socket_path=tmp_path / "ca.sock") as ca:
            for _ in range(200):
                if await ca.healthy():
                    break
                await asyncio.sleep(0.05)
        async with aiohttp.ClientSession() as http:
            async with http.get(f"http://127.0.0.1:{port}/metrics") as resp:
                assert resp.status == 200
                assert "padlock_ca_signatures_total" in await resp.text()
            async with http.post(f"http://127.0.0.1:{port}/v1/sign", json={}) as resp:
                assert resp.status == 404
            async with http.get(f"http://127.0.0.1:{port}/v1/ca") as resp:
                assert resp.status == 404
    finally:
        stop.set()
        assert await serving == 0
