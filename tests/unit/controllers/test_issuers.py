"""Issuer readiness: the CA answers with a valid chain, or not; re-checks flip it back."""

from __future__ import annotations

from typing import Any

import kopf
import pytest

from padlock.controllers import issuers
from padlock.kube import paths

from .conftest import Env, issuer_body


def _ready(issuer: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in issuer["status"]["conditions"] if c["type"] == "Ready")


async def test_a_ca_issuer_is_ready_when_the_ca_answers_with_a_valid_chain(env: Env) -> None:
    await issuers.handle_issuer(env.deps, "Issuer", await env.create(paths.ISSUERS, issuer_body()))
    ready = _ready(await env.get(paths.ISSUERS, "ca"))
    assert (ready["status"], ready["reason"]) == ("True", "CAReachable")


async def test_an_unreachable_ca_is_not_ready_and_retried(env: Env) -> None:
    env.ca.down = True
    with pytest.raises(kopf.TemporaryError):
        await issuers.handle_issuer(
            env.deps, "Issuer", await env.create(paths.ISSUERS, issuer_body())
        )
    ready = _ready(await env.get(paths.ISSUERS, "ca"))
    assert (ready["status"], ready["reason"]) == ("False", "CAUnreachable")


async def test_the_periodic_recheck_follows_the_ca_down_and_back(env: Env) -> None:
    await issuers.handle_issuer(env.deps, "Issuer", await env.create(paths.ISSUERS, issuer_body()))
    assert await issuers.recheck_ca_issuers(env.deps) == 0
    env.ca.down = True
    assert await issuers.recheck_ca_issuers(env.deps) == 1
    assert _ready(await env.get(paths.ISSUERS, "ca"))["status"] == "False"
    env.ca.down = False
    assert await issuers.recheck_ca_issuers(env.deps) == 1
    assert _ready(await env.get(paths.ISSUERS, "ca"))["status"] == "True"


async def test_an_invalid_spec_is_not_ready_without_retries(env: Env) -> None:
    body = await env.create(paths.ISSUERS, issuer_body(ca={}, selfSigned={}))
    await issuers.handle_issuer(env.deps, "Issuer", body)
    ready = _ready(await env.get(paths.ISSUERS, "ca"))
    assert ready["status"] == "False"
    assert "exactly one of ca, selfSigned or acme" in ready["message"]
