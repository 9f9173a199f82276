"""aiohttp's access log is off for the CA API unless `listen.access_log` asks for it (it cost
~5 % of the CA's CPU per certificate; padlock_ca_requests_total counts requests anyway)."""

from __future__ import annotations

import asyncio
import dataclasses
import logging

import pytest

from padlock.services import ca_http
from tests.fixtures.ca import MakeCA
from tests.integration.ca import helpers

pytestmark = pytest.mark.softhsm


async def _access_records(
    make_ca: MakeCA, caplog: pytest.LogCaptureFixture, *, access_log: bool
) -> list[logging.LogRecord]:
    setup = make_ca()
    listen = dataclasses.replace(setup.config.listen, access_log=access_log)
    config = dataclasses.replace(setup.config, listen=listen, lint=dataclasses.replace(
        setup.config.lint, processes=0))  # fmt: skip
    assert listen.socket is not None
    stop, ready = asyncio.Event(), asyncio.Event()
    with caplog.at_level(logging.INFO, logger="aiohttp.access"):
        serving = asyncio.create_task(ca_http.serve(config, stop=stop, ready=ready.set))
        await asyncio.wait_for(ready.wait(), 60)
        status, _text = await helpers.get_raw(listen.socket, "/healthz")
        assert status == 200
        stop.set()
        assert await serving == 0
    return [r for r in caplog.records if r.name == "aiohttp.access"]


async def test_the_ca_writes_no_access_log_by_default(
    make_ca: MakeCA, caplog: pytest.LogCaptureFixture
) -> None:
    assert await _access_records(make_ca, caplog, access_log=False) == []


async def test_listen_access_log_true_logs_each_request(
    make_ca: MakeCA, caplog: pytest.LogCaptureFixture
) -> None:
    records = await _access_records(make_ca, caplog, access_log=True)
    assert any("/healthz" in r.getMessage() for r in records)
