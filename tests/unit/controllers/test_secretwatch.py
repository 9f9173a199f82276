"""The Secret watch: a deleted or altered padlock Secret triggers its Certificate; a
consistent one does not."""

from __future__ import annotations

import base64
from typing import Any

from padlock.controllers import issuers, issuing, secretwatch
from padlock.kube import paths

from .conftest import Env, certificate_body, issuer_body


async def _issued(env: Env) -> dict[str, Any]:
    body = await env.create(paths.ISSUERS, issuer_body())
    await issuers.handle_issuer(env.deps, "Issuer", body)
    await env.create(paths.CERTIFICATES, certificate_body())
    await issuing.handle_certificate(env.deps, await env.get(paths.CERTIFICATES, "web"))
    return await env.get(paths.SECRETS, "web-tls")


def _trigger(cert: dict[str, Any]) -> str | None:
    value = (cert["metadata"].get("annotations") or {}).get(issuing.SECRET_CHANGED)
    return str(value) if value is not None else None


async def test_a_consistent_secret_triggers_nothing(env: Env) -> None:
    secret = await _issued(env)
    await secretwatch.handle_secret_event(env.deps, "MODIFIED", secret, [], {})
    assert _trigger(await env.get(paths.CERTIFICATES, "web")) is None


async def test_a_deleted_secret_triggers_its_certificate(env: Env) -> None:
    secret = await _issued(env)
    await secretwatch.handle_secret_event(env.deps, "DELETED", secret, [], {})
    assert (_trigger(await env.get(paths.CERTIFICATES, "web")) or "").startswith("deleted-")


async def test_altered_data_triggers_its_certificate(env: Env) -> None:
    secret = await _issued(env)
    secret["data"]["tls.crt"] = base64.b64encode(b"not a certificate").decode()
    await secretwatch.handle_secret_event(env.deps, "MODIFIED", secret, [], {})
    assert (_trigger(await env.get(paths.CERTIFICATES, "web")) or "").startswith("changed-")


async def test_secrets_of_other_owners_are_ignored(env: Env) -> None:
    secret = await _issued(env)
    secret["metadata"]["labels"] = {"app": "other"}
    await secretwatch.handle_secret_event(env.deps, "DELETED", secret, [], {})
    assert _trigger(await env.get(paths.CERTIFICATES, "web")) is None
