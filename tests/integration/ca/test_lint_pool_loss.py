"""A pkilint worker lost while it holds a certificate: the request fails, nothing is released.

Real CA app on a real SoftHSM token and SQLite ledger, real pkilint worker processes
(`padlock.ca.lintpool`). To hold a certificate in a worker long enough to kill it, the test
swaps the pool's job for one that hangs before the worker is (re)started.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Callable

import pytest

from padlock.ca import client, lintgate
from padlock.services.ca_http import app as app_mod
from tests.fixtures.ca import MakeCA, start_ca
from tests.integration.ca import helpers
from tests.unit.ca import lintpool_jobs as jobs

pytestmark = pytest.mark.softhsm


async def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 60
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.02)


async def test_lint_worker_killed_mid_certificate_fails_the_request_and_releases_nothing(
    make_ca: MakeCA,
) -> None:
    setup = make_ca()  # one lint worker process
    async with start_ca(setup) as (ca, app):
        pool = app[app_mod._LINT].pool
        assert pool is not None
        await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/pool/1", "ns/pool")
        # Its replacement will hang on the next certificate.
        pool.job = jobs.hang
        os.kill(pool.pids()[0], signal.SIGKILL)
        # Once replaced, the dead worker is out of the pool: the next certificate waits for
        # the new one (it would otherwise fail at once on the dead worker's socket).
        await _until(lambda: pool.replaced == 1, "the first replacement")
        request = asyncio.ensure_future(
            ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/pool/2", "ns/pool")
        )
        await _until(lambda: bool(pool.busy()), "the certificate to reach a worker")
        ((holder, held),) = pool.busy().items()
        pool.job = lintgate.pkilint_findings  # the next replacement lints for real
        os.kill(holder, signal.SIGKILL)
        with pytest.raises(client.CAUnavailable) as lost:
            await request
        assert held == 1
        assert "503 lint-unavailable" in str(lost.value)
        assert f"pkilint worker pid {holder} exited while linting" in str(lost.value)
        assert helpers.count(setup, "certificate") == 1
        # The pool recovers: the same request (same idempotency key) now succeeds.
        await _until(lambda: pool.replaced == 2, "the second replacement")
        issued = await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/pool/2", "ns/pool")
        assert issued.serial
    assert helpers.count(setup, "certificate") == 2
