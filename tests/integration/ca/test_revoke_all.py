"""`POST /v1/revoke-all` (the intermediate-compromise drill) over the unix socket: every
certificate of the CA is revoked in one call, and a repeat answers the same list."""

from __future__ import annotations

import pytest

from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from tests.fixtures.ca import MakeCA, start_ca
from tests.integration.ca import helpers

pytestmark = pytest.mark.softhsm


async def test_revoke_all_revokes_every_certificate_and_a_repeat_answers_the_same_list(
    make_ca: MakeCA, ca_ledger_url: str
) -> None:
    setup = make_ca(ca_ledger_url)
    async with start_ca(setup) as (ca, _app):
        issued = [
            await ca.sign(helpers.make_csr(), "tls-server", 86400, f"ns/c{i}/1", "ns/c")
            for i in range(3)
        ]
        earlier = await ca.revoke(issued[0].serial, "superseded", "ns/one-by-one")
        first = await ca.revoke_all("cACompromise", "ns/drill")
        again = await ca.revoke_all("cACompromise", "ns/drill")
    expected = sorted((r.serial for r in issued[1:]), key=lambda s: int(s, 16))
    # The certificate revoked earlier keeps its own record (and is not this drill's).
    assert [r.serial for r in first] == expected
    assert {r.reason for r in first} == {"cACompromise"}
    assert again == first
    with ledger_mod.Ledger(ca_ledger_url, migrate=False) as ledger:
        ca_id = ledger.register_ca(setup.intermediate, ca_type=records.CAType.INTERMEDIATE)
        for result in issued:
            status = ledger.certificate_status(ca_id, int(result.serial, 16))
            assert status.status is records.Status.REVOKED
        kept = ledger.certificate_status(ca_id, int(earlier.serial, 16))
        assert kept.reason_code == 4  # superseded (RFC 5280 §5.3.1), not overwritten
        assert ledger.verify_audit_chain().ok
