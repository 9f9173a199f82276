"""Certificate gauges appear after issuance and disappear with the Certificate."""

from __future__ import annotations

from padlock import metrics
from padlock.controllers import issuers, issuing
from padlock.kube import paths

from .conftest import NAMESPACE, Env, certificate_body, issuer_body

LABELS = {"name": "web", "namespace": NAMESPACE, "issuer_name": "ca", "issuer_kind": "Issuer"}


def _sample(name: str, **extra: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(name, {**LABELS, **extra})


async def test_gauges_follow_the_certificate_and_vanish_when_it_is_deleted(env: Env) -> None:
    await issuers.handle_issuer(env.deps, "Issuer", await env.create(paths.ISSUERS, issuer_body()))
    await env.create(paths.CERTIFICATES, certificate_body())
    await issuing.handle_certificate(env.deps, await env.get(paths.CERTIFICATES, "web"))
    cert = await env.get(paths.CERTIFICATES, "web")
    expiry = _sample("padlock_certificate_expiration_timestamp_seconds")
    assert expiry is not None
    assert (
        expiry
        == __import__("datetime").datetime.fromisoformat(cert["status"]["notAfter"]).timestamp()
    )
    assert _sample("padlock_certificate_ready_status", condition="True") == 1.0
    assert _sample("padlock_certificate_ready_status", condition="False") == 0.0
    assert _sample("padlock_certificate_renewal_timestamp_seconds") is not None
    assert (
        metrics.REGISTRY.get_sample_value(
            "padlock_issuer_ready_status",
            {"name": "ca", "namespace": NAMESPACE, "kind": "Issuer", "condition": "True"},
        )
        == 1.0
    )
    issuing.forget_certificate(env.deps, NAMESPACE, "web")
    assert _sample("padlock_certificate_expiration_timestamp_seconds") is None
    assert _sample("padlock_certificate_ready_status", condition="True") is None
    assert env.deps.scheduler.when((NAMESPACE, "web")) is None
