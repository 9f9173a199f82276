"""A serial the ledger already holds is never issued twice: the pipeline draws a new one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from padlock import metrics
from padlock.pki import serials
from padlock.services import ca_http
from tests.fixtures.ca import MakeCA, start_ca
from tests.integration.ca import helpers

pytestmark = pytest.mark.softhsm


async def test_serial_collision_signs_again_with_a_fresh_serial(
    make_ca: MakeCA, ca_ledger_url: str
) -> None:
    setup = make_ca(ca_ledger_url)
    taken = serials.new_serial()
    fresh = serials.new_serial()
    draws: Iterator[int] = iter([taken, taken, fresh])
    collisions = metrics.REGISTRY.get_sample_value("padlock_ca_serial_collisions_total") or 0
    options = ca_http.AppOptions(new_serial=lambda: next(draws))
    async with start_ca(setup, options) as (ca, _app):
        first = await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/s/1", "ns/s")
        second = await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/s/2", "ns/s")
    assert int(first.serial, 16) == taken
    assert int(second.serial, 16) == fresh
    assert metrics.REGISTRY.get_sample_value("padlock_ca_serial_collisions_total") == (
        collisions + 1
    )
    assert helpers.count(setup, "certificate") == 2
