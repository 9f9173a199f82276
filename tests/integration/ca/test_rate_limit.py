"""Per-requester token bucket: a burst passes, the next request is 429 with Retry-After."""

from __future__ import annotations

import dataclasses

import pytest

from padlock.ca import client
from padlock.ca import config as ca_config
from padlock.services import ca_http
from tests.fixtures.ca import MakeCA, start_ca
from tests.integration.ca import helpers

pytestmark = pytest.mark.softhsm


@dataclasses.dataclass
class FakeClock:
    now: float = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_requests_beyond_the_burst_get_429_until_the_bucket_refills(
    make_ca: MakeCA,
) -> None:
    clock = FakeClock()
    setup = make_ca(rate_limit=ca_config.RateLimitConfig(requests_per_second=0.5, burst=3))
    options = ca_http.AppOptions(clock=clock)
    async with start_ca(setup, options) as (ca, _app):
        for i in range(3):
            await ca.sign(helpers.make_csr(), "tls-server", 3600, f"ns/a/{i}", "ns/a")
        with pytest.raises(client.CARateLimited) as limited:
            await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/a/3", "ns/a")
        # Another requester has its own bucket.
        await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/b/0", "ns/b")
        clock.now += 2.0  # 0.5 tokens/s: one token back
        await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/a/3", "ns/a")
        with pytest.raises(client.CARateLimited):
            await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/a/4", "ns/a")
    assert limited.value.retry_after == 2.0  # ceil(1 token / 0.5 per s)
    assert "ns/a" in str(limited.value)
    assert helpers.count(setup, "certificate") == 5
