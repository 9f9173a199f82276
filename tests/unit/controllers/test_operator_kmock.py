"""The whole kopf operator (padlock.controllers.main wiring) against kmock: a Certificate
becomes a Secret, a deleted Secret comes back as the next revision, and a Deployment that
opted in is rolled for the new content (and only then), and `padlock renew` renews."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest

from padlock.api import labels
from padlock.controllers import crypto, runner, settings
from padlock.kube import certificates, paths
from padlock.kube.client import NotFound

from .conftest import NAMESPACE, Clock, Env, InMemoryCA, certificate_body, issuer_body

DEPLOYMENT = {
    "kind": "Deployment",
    "metadata": {"name": "web", "annotations": {labels.RELOAD: "true"}},
    "spec": {
        "template": {
            "metadata": {"labels": {"app": "web"}},
            "spec": {
                "containers": [{"name": "web", "image": "nginx"}],
                "volumes": [{"name": "tls", "secret": {"secretName": "web-tls"}}],
            },
        }
    },
}

RESOURCES = {
    "v1/namespaces": ("Namespace", False),
    "v1/events": ("Event", True),
    "v1/secrets": ("Secret", True),
    "apps/v1/deployments": ("Deployment", True),
    "apps/v1/statefulsets": ("StatefulSet", True),
    "apps/v1/daemonsets": ("DaemonSet", True),
    "padlock.dev/v1alpha1/issuers": ("Issuer", True),
    "padlock.dev/v1alpha1/clusterissuers": ("ClusterIssuer", False),
    "padlock.dev/v1alpha1/certificates": ("Certificate", True),
}


async def _eventually(check: Callable[[], Awaitable[bool]]) -> None:
    """Poll the API until `check` holds (the operator works asynchronously), 20 s at most."""
    async with asyncio.timeout(20):
        while True:
            if await check():
                return
            await asyncio.sleep(0.1)  # the API offers no event for "status settled"


@pytest.fixture
def live_ca() -> InMemoryCA:
    """The operator runs on the wall clock, so the CA signs on it too."""
    return InMemoryCA(Clock(datetime.datetime.now(datetime.UTC)))


@pytest.fixture
async def operator(env: Env, live_ca: InMemoryCA, tmp_path: Path) -> AsyncIterator[None]:
    for name, (kind, namespaced) in RESOURCES.items():
        info = env.kmock.resources[name]
        info.kind = kind
        info.namespaced = namespaced
        info.verbs = {"list", "watch", "get", "patch", "create", "delete"}
        info.subresources = {"status"} if name.startswith("padlock.dev") else set()
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\ncurrent-context: kmock\n"
        f"clusters: [{{name: kmock, cluster: {{server: '{str(env.kmock.url).rstrip('/')}'}}}}]\n"
        "contexts: [{name: kmock, context: {cluster: kmock, user: kmock}}]\n"
        "users: [{name: kmock, user: {}}]\n"
    )
    config = settings.RunConfig(kubeconfig=kubeconfig, metrics_port=None)
    stop, ready = asyncio.Event(), asyncio.Event()
    task = asyncio.create_task(
        runner.run_async(config, stop_flag=stop, ready_flag=ready, ca_override=live_ca)
    )
    await asyncio.wait_for(ready.wait(), timeout=20)
    yield
    stop.set()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.wait_for(task, timeout=20)


async def _secret(env: Env) -> dict[str, Any] | None:
    try:
        return await env.get(paths.SECRETS, "web-tls")
    except NotFound:
        return None


async def test_the_operator_issues_and_reissues_a_deleted_secret(
    env: Env, live_ca: InMemoryCA, operator: None
) -> None:
    await env.create(paths.DEPLOYMENTS, DEPLOYMENT)
    await env.create(paths.ISSUERS, issuer_body())
    await env.create(paths.CERTIFICATES, certificate_body())

    async def issued(revision: str) -> bool:
        secret = await _secret(env)
        return bool(secret and secret["metadata"]["annotations"].get(labels.REVISION) == revision)

    async def ready() -> bool:
        status = (await env.get(paths.CERTIFICATES, "web")).get("status") or {}
        conditions = {c["type"]: c["status"] for c in status.get("conditions") or []}
        return conditions.get("Ready") == "True" and status.get("revision") == 1

    await _eventually(lambda: issued("1"))
    await _eventually(ready)
    # No finalizers: deleting an Issuer or a Certificate never waits for the operator.
    for resource, name in ((paths.ISSUERS, "ca"), (paths.CERTIFICATES, "web")):
        assert not (await env.get(resource, name))["metadata"].get("finalizers")
    # kopf's own bookkeeping never copies Secret data: no annotation holds the key.
    secret = await _secret(env)
    assert secret is not None
    assert not any("kopf" in key for key in secret["metadata"]["annotations"])

    async def hashes() -> tuple[str | None, str | None]:
        body = await env.get(paths.DEPLOYMENTS, "web")
        template = body["spec"]["template"]["metadata"].get("annotations") or {}
        return (
            body["metadata"]["annotations"].get(labels.CERT_HASH),
            template.get(labels.CERT_HASH),
        )

    async def baseline() -> bool:
        seen, rolled = await hashes()
        return seen is not None and rolled is None

    await _eventually(baseline)  # first sight of the content: recorded, not rolled

    await env.kube.delete(paths.SECRETS.path(NAMESPACE, "web-tls"))
    await _eventually(lambda: issued("2"))
    assert len(live_ca.issued) == 2

    async def rolled() -> bool:
        secret = await _secret(env)
        return secret is not None and (await hashes())[1] == crypto.content_hash(
            base64.b64decode(secret["data"]["tls.crt"])
        )

    await _eventually(rolled)  # new content: the pod template changed once

    # `padlock renew` sets an annotation; kopf's update handler must see it (padlock.dev/
    # annotations must not be mistaken for kopf's own bookkeeping).
    assert await certificates.request_renewal(
        env.kube, NAMESPACE, "web", datetime.datetime.now(datetime.UTC)
    )
    await _eventually(lambda: issued("3"))
