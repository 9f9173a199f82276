"""The lint gate: a certificate pkilint (or padlock's own checks) refuses is never released."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec

from padlock import metrics
from padlock.ca import client
from padlock.pki import profiles
from padlock.services import ca_http
from tests.fixtures.ca import MakeCA, start_ca
from tests.integration.ca import helpers

pytestmark = pytest.mark.softhsm


def _no_key_usage_bits(profile: profiles.Profile, **kwargs: Any) -> x509.Certificate:
    """A faulty builder: keyUsage with no bit set (RFC 5280 §4.2.1.3 forbids it; pkilint
    reports pkix.no_ku_bits_set). padlock's own structural checks do not look for this."""
    return profiles.build_certificate(
        dataclasses.replace(profile, key_usages=frozenset()), **kwargs
    )


def _wrong_eku(profile: profiles.Profile, **kwargs: Any) -> x509.Certificate:
    """A faulty builder: the tls-server certificate comes out with clientAuth only."""
    return profiles.build_certificate(
        dataclasses.replace(profile, extended_key_usages=profiles.TLS_CLIENT.extended_key_usages),
        **kwargs,
    )


def _faulty_hsm(profile: profiles.Profile, **kwargs: Any) -> x509.Certificate:
    """A faulty HSM: the certificate is signed with some other key than the issuing CA's."""
    kwargs["issuer_key"] = ec.generate_private_key(ec.SECP256R1())
    return profiles.build_with_cryptography(profile, **kwargs)


def _failures(linter: str) -> float:
    value = metrics.REGISTRY.get_sample_value(
        "padlock_ca_lint_failures_total", {"profile": "tls-server", "linter": linter}
    )
    return value or 0.0


@pytest.mark.parametrize(
    ("build", "linter", "code"),
    [
        (_no_key_usage_bits, "pkilint-pkix", "pkix.no_ku_bits_set"),
        (_wrong_eku, "padlock", "extended_key_usage"),
        (_faulty_hsm, "padlock", "signature"),
    ],
)
async def test_certificate_failing_lint_is_not_released_but_audited_and_counted(
    make_ca: MakeCA, build: Any, linter: str, code: str
) -> None:
    setup = make_ca()
    before = _failures(linter)
    signatures_before = metrics.REGISTRY.get_sample_value(
        "padlock_ca_signatures_total", {"profile": "tls-server"}
    )
    async with start_ca(setup, ca_http.AppOptions(build=build)) as (ca, _app):
        with pytest.raises(client.CARefused) as refused:
            await ca.sign(helpers.make_csr(), "tls-server", 3600, "ns/lint/1", "ns/lint")
    assert (refused.value.status, refused.value.code) == (422, "lint-failed")
    assert code in refused.value.message
    assert _failures(linter) == before + 1
    assert (
        metrics.REGISTRY.get_sample_value("padlock_ca_signatures_total", {"profile": "tls-server"})
        == (signatures_before or 0) + 1
    )
    assert helpers.count(setup, "certificate") == 0
    assert helpers.count(setup, "ocsp_response_cache") == 0
    kind, actor, details = helpers.last_audit_event(setup)
    assert (kind, actor) == ("certificate.lint_refused", "ns/lint")
    assert code in {f["code"] for f in details["findings"]}
