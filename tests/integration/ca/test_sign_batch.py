"""Signing batches in the CA pipeline: requests queued together are signed, linted and
OCSP-pre-signed in one thread-pool call (`Pipeline.signing`), each with its own outcome.

To queue chosen requests behind each other, the certificate builder (a seam) holds the first
request inside the HSM step until the test lets it go.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any

import pytest
from cryptography import x509

from padlock.ca import pipeline as pipeline_mod
from padlock.ledger import ledger as ledger_mod
from padlock.pki import profiles
from padlock.services import ca_http
from padlock.services.ca_http import state
from tests.fixtures.ca import CASetup, MakeCA, start_ca
from tests.integration.ca import helpers

pytestmark = pytest.mark.softhsm


async def _sign(
    setup: CASetup, csr: str, key: str, requester: str = "batch/test"
) -> tuple[int, dict[str, Any]]:
    """POST /v1/sign over the CA's Unix socket; also used by test_group_commit."""
    assert setup.config.listen.socket is not None
    status, _headers, body = await helpers.post_raw(
        setup.config.listen.socket,
        "/v1/sign",
        json.dumps(helpers.sign_body(csr, key, requester=requester)).encode(),
    )
    return status, body


async def _until(condition: Any, what: str) -> None:
    for _ in range(3000):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"timed out waiting until {what}")


async def test_requests_queued_together_are_signed_in_one_batch_each_with_its_own_outcome(
    make_ca: MakeCA,
) -> None:
    release = threading.Event()
    batch_sizes: list[int] = []

    def build(profile: profiles.Profile, **kwargs: Any) -> x509.Certificate:
        names = {str(n.value) for n in kwargs["sans"]}
        if "plug.batch.test" in names:
            release.wait(30)  # the plug holds the signing thread; the others queue
        if "bad.batch.test" in names:
            raise ValueError("builder failure (injected) for bad.batch.test")
        return profiles.build_certificate(profile, **kwargs)

    setup = make_ca()
    async with start_ca(setup, ca_http.AppOptions(build=build)) as (_ca, app):
        pipeline: pipeline_mod.Pipeline = app[state.CA].pipeline
        sign_batch = pipeline.signing.run_batch

        def counting(items: list[Any]) -> Any:
            batch_sizes.append(len(items))
            return sign_batch(items)

        pipeline.signing.run_batch = counting
        plug = asyncio.create_task(_sign(setup, helpers.make_csr(("plug.batch.test",)), "b/plug"))
        await _until(lambda: batch_sizes == [1], "the plug is being signed")
        hosts = ["a.batch.test", "bad.batch.test", "c.batch.test", "d.batch.test"]
        queued = [
            asyncio.create_task(_sign(setup, helpers.make_csr((host,)), f"b/{host}"))
            for host in hosts
        ]
        await _until(lambda: pipeline.signing.queued == 4, "the four are queued")
        release.set()
        answers = await asyncio.gather(*queued)
        assert (await plug)[0] == 200

    assert batch_sizes == [1, 4]
    assert [status for status, _ in answers] == [200, 500, 200, 200]
    assert answers[1][1]["error"] == "internal-error"
    with ledger_mod.Ledger(setup.config.ledger.url, migrate=False) as ledger:
        assert ledger.count("certificate") == 4  # the plug and the three good ones
        assert ledger.count("ocsp_response_cache") == 4
        assert ledger.verify_audit_chain().ok
    for status, body in answers:
        if status == 200:
            x509.load_pem_x509_certificate(body["certificate"].encode())
