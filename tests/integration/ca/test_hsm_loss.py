"""HSM session lost: /healthz and /v1/sign answer 503, nothing is written, the CA reconnects."""

from __future__ import annotations

import asyncio

import pytest

from padlock.ca import client, hsm
from padlock.keys import base as keys_base
from padlock.services import ca_http
from tests.fixtures.ca import MakeCA, start_ca
from tests.integration.ca import helpers

pytestmark = pytest.mark.softhsm


async def _wait_healthy(ca: client.CAClient, want: bool, seconds: float = 20) -> None:
    for _ in range(int(seconds * 20)):
        if await ca.healthy() is want:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"CA did not become {'healthy' if want else 'unhealthy'}")


class Unplugged:
    """The real token source, with a switch: while `present` is False the token cannot be
    opened or probed (as when it is pulled out), so the CA stays down until the test says."""

    def __init__(self, source: hsm.TokenKeySource) -> None:
        self.source = source
        self.present = True

    def _check(self) -> None:
        if not self.present:
            raise keys_base.TokenUnavailableError("token removed (test)")

    def __call__(self) -> keys_base.Signer:
        self._check()
        return self.source()

    def probe(self) -> None:
        self._check()
        self.source.probe()

    def close(self) -> None:
        self.source.close()


async def test_lost_session_gives_503_and_unhealthy_then_the_ca_reconnects(
    make_ca: MakeCA,
) -> None:
    setup = make_ca()
    p11 = setup.config.pkcs11
    token = Unplugged(hsm.token_opener(p11.module, p11.token_label, p11.pin_file, p11.key_label))
    options = ca_http.AppOptions(opener=token, hsm_retry_seconds=0.1, hsm_probe_seconds=0.1)
    async with start_ca(setup, options) as (ca, _app):
        await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/h/1", "ns/h")
        certificates = helpers.count(setup, "certificate")
        audit = helpers.count(setup, "audit_event")
        token.present = False
        token.source.close()  # the session is gone, and the token cannot be reopened
        await _wait_healthy(ca, False)
        status, body = await helpers.get_raw(setup.config.listen.socket, "/healthz")  # type: ignore[arg-type]
        assert status == 503
        assert "hsm-unavailable" in body
        with pytest.raises(client.CAUnavailable, match="503 hsm-unavailable"):
            await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/h/2", "ns/h")
        token.present = True
        await _wait_healthy(ca, True)
        issued = await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/h/3", "ns/h")
    assert issued.serial
    assert helpers.count(setup, "certificate") == certificates + 1
    assert helpers.count(setup, "audit_event") == audit + 1


async def test_sign_while_the_hsm_is_away_is_503_and_writes_nothing(make_ca: MakeCA) -> None:
    setup = make_ca()
    p11 = setup.config.pkcs11
    source = hsm.token_opener(p11.module, p11.token_label, p11.pin_file, p11.key_label)
    # Retry rarely, so the CA is still down when the request arrives.
    options = ca_http.AppOptions(opener=source, hsm_retry_seconds=3600, hsm_probe_seconds=3600)
    async with start_ca(setup, options) as (ca, _app):
        certificates = helpers.count(setup, "certificate")
        audit = helpers.count(setup, "audit_event")
        source.close()
        with pytest.raises(client.CAUnavailable) as first:
            await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/h/1", "ns/h")
        with pytest.raises(client.CAUnavailable) as second:
            await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/h/2", "ns/h")
        assert not await ca.healthy()
    assert "503 hsm-unavailable" in str(first.value)
    assert "503 hsm-unavailable" in str(second.value)
    assert helpers.count(setup, "certificate") == certificates
    assert helpers.count(setup, "audit_event") == audit
