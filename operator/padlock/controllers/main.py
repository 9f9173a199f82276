"""kopf wiring only: which events reach which `handle_*` function.

Imported by `padlock.controllers.run` (and tests), which registers these handlers in kopf's
default registry. Every body is a call into a controller module; the logic lives there.

Watched: Issuers, ClusterIssuers, Certificates; padlock's own TLS Secrets (on.event only,
label-selected server-side: never on.create/update on Secrets, which would copy the private key
into an annotation); Deployments/StatefulSets/DaemonSets (on.event; only those that opted into
reloads are remembered). No kopf indexes: see `padlock.controllers.reloads` for why.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from typing import Any

import kopf

from padlock.api import group, labels
from padlock.ca.client import CAClient
from padlock.controllers import httpd as httpd_mod
from padlock.controllers import issuers, issuing, reloads, secretwatch
from padlock.controllers.context import Deps
from padlock.controllers.scheduler import RenewalScheduler, utcnow
from padlock.controllers.settings import RunConfig
from padlock.kube import client as kube_client
from padlock.kube import secrets

log = logging.getLogger(__name__)

G, V = group.GROUP, group.VERSION
ISSUERS, CLUSTER_ISSUERS = group.ISSUER.plural, group.CLUSTER_ISSUER.plural
CERTIFICATES = group.CERTIFICATE.plural
ISSUER_RECHECK_SECONDS = 60.0
SECRET_LABELS = {labels.MANAGED_BY: labels.MANAGED_BY_VALUE, secrets.ROLE: secrets.ROLE_TLS}


@dataclasses.dataclass
class Runtime:
    """Held in kopf's memo (shared by every per-object copy): config in, deps out."""

    config: RunConfig
    deps: Deps | None = None
    credentials: kube_client.Credentials | None = None
    scheduler_task: asyncio.Task[None] | None = None
    recheck_task: asyncio.Task[None] | None = None
    http: Any = None
    inventory: reloads.Inventory = dataclasses.field(default_factory=reloads.Inventory)
    ca_override: Any = None  # tests: a CAPort to use instead of a CAClient


def _deps(memo: Any) -> Deps:
    deps = memo.runtime.deps
    assert deps is not None, "the startup handler builds Deps before any handler runs"
    return deps  # type: ignore[no-any-return]


# Authenticate kopf with the same credentials padlock.kube uses (no `kubernetes` import).
@kopf.on.login()
def login(memo: Any, **_: Any) -> kopf.ConnectionInfo:
    runtime: Runtime = memo.runtime
    if runtime.credentials is None:
        runtime.credentials = kube_client.load_credentials(runtime.config.kubeconfig)
    creds = runtime.credentials
    return kopf.ConnectionInfo(
        server=creds.server,
        ca_data=creds.ca_pem,
        insecure=creds.insecure,
        scheme="Bearer" if creds.token else None,
        token=creds.token,
        certificate_data=creds.client_cert_pem,
        private_key_data=creds.client_key_pem,
        default_namespace=creds.default_namespace,
    )


# Build the clients and start the renewal scheduler and the /metrics endpoint.
@kopf.on.startup()
async def startup(memo: Any, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    config = runtime.config
    if runtime.credentials is None:
        runtime.credentials = kube_client.load_credentials(config.kubeconfig)
    kube = kube_client.KubeClient(runtime.credentials)
    ca = runtime.ca_override or CAClient(
        socket_path=config.ca_socket, base_url=config.ca_url, timeout=config.ca_timeout
    )
    holder: dict[str, Deps] = {}

    async def renewal_due(key: tuple[str, str], when: Any) -> None:
        await issuing.trigger(holder["deps"], key, issuing.RENEWAL_DUE, when.isoformat())

    scheduler = RenewalScheduler(renewal_due, clock=utcnow)
    deps = Deps(
        kube=kube,
        ca=ca,
        scheduler=scheduler,
        clock=utcnow,
        ca_slots=asyncio.Semaphore(config.max_concurrent_ca_calls),
    )
    holder["deps"] = deps
    runtime.deps = deps
    runtime.scheduler_task = asyncio.create_task(scheduler.run(), name="padlock-renewals")
    runtime.recheck_task = asyncio.create_task(_recheck_issuers(deps), name="padlock-issuers")
    if config.metrics_port is not None:
        task = runtime.scheduler_task
        runtime.http = await httpd_mod.start(
            config.metrics_host, config.metrics_port, lambda: not task.done()
        )


async def _recheck_issuers(deps: Deps) -> None:
    """Every minute, one CA check for all `ca` issuers (no timer, hence no finalizer, each)."""
    while True:
        await asyncio.sleep(ISSUER_RECHECK_SECONDS)
        try:
            await issuers.recheck_ca_issuers(deps)
        except Exception:
            log.exception("re-checking the CA issuers failed")


# Stop the scheduler and close the connection pools.
@kopf.on.cleanup()
async def cleanup(memo: Any, **_: Any) -> None:
    runtime: Runtime = memo.runtime
    for task in (runtime.scheduler_task, runtime.recheck_task):
        if task is not None:
            task.cancel()
    if runtime.http is not None:
        await runtime.http.cleanup()
    if runtime.deps is not None:
        await runtime.deps.kube.close()
        await runtime.deps.ca.close()


# Issuers: decide Ready (CA reachable and chain valid / selfSigned / ACME unsupported).
@kopf.on.resume(G, V, ISSUERS)
@kopf.on.create(G, V, ISSUERS)
@kopf.on.update(G, V, ISSUERS)
async def issuer_changed(body: kopf.Body, memo: Any, **_: Any) -> None:
    await issuers.handle_issuer(_deps(memo), group.Kind.ISSUER, body)


@kopf.on.resume(G, V, CLUSTER_ISSUERS)
@kopf.on.create(G, V, CLUSTER_ISSUERS)
@kopf.on.update(G, V, CLUSTER_ISSUERS)
async def cluster_issuer_changed(body: kopf.Body, memo: Any, **_: Any) -> None:
    await issuers.handle_issuer(_deps(memo), group.Kind.CLUSTER_ISSUER, body)


# Forget deleted issuers (no finalizer: nothing to clean up outside the process).
@kopf.on.event(G, V, ISSUERS)
@kopf.on.event(G, V, CLUSTER_ISSUERS)
async def issuer_event(body: kopf.Body, type: str, memo: Any, **_: Any) -> None:
    if type == "DELETED":
        kind = str(body.get("kind") or group.Kind.ISSUER)
        issuers.forget_issuer(_deps(memo), kind, body.metadata.namespace, body.metadata.name)


# Certificates: issue, re-issue, renew, or just record Ready.
@kopf.on.resume(G, V, CERTIFICATES)
@kopf.on.create(G, V, CERTIFICATES)
@kopf.on.update(G, V, CERTIFICATES)
async def certificate_changed(body: kopf.Body, memo: Any, **_: Any) -> None:
    deps = _deps(memo)
    async with deps.reconcile_slots:
        await issuing.handle_certificate(deps, body)


# A deleted Certificate: drop its renewal and its gauges (its Secret is kept).
@kopf.on.event(G, V, CERTIFICATES)
async def certificate_event(body: kopf.Body, type: str, memo: Any, **_: Any) -> None:
    if type == "DELETED":
        issuing.forget_certificate(_deps(memo), body.metadata.namespace or "", body.metadata.name)


# padlock's TLS Secrets: deleted or changed by others → re-issue; new content → reloads.
@kopf.on.event("v1", "secrets", labels=SECRET_LABELS)
async def secret_event(
    body: kopf.Body, type: str, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    inventory: reloads.Inventory = memo.runtime.inventory
    ns = namespace or ""
    if type == "DELETED" or not secretwatch.is_consistent(body):
        inventory.set_secret(ns, name, None)
    else:
        inventory.set_secret(ns, name, secretwatch.tls_crt_hash(body))
    await secretwatch.handle_secret_event(
        _deps(memo), type, body, inventory.refs_in(ns), inventory.hashes_in(ns)
    )


# Deployments, StatefulSets, DaemonSets: remember those that opted in; record a baseline.
@kopf.on.event("apps", "v1", "deployments")
@kopf.on.event("apps", "v1", "statefulsets")
@kopf.on.event("apps", "v1", "daemonsets")
async def workload_event(
    body: kopf.Body, type: str, namespace: str | None, name: str, memo: Any, **_: Any
) -> None:
    inventory: reloads.Inventory = memo.runtime.inventory
    kind = str(body.get("kind"))
    ns = namespace or ""
    if type == "DELETED" or not reloads.wants_reload(body.metadata.annotations):
        inventory.set_workload(kind, ns, name, None)
        return
    ref = reloads.workload_ref(kind, body)
    inventory.set_workload(kind, ns, name, ref)
    await reloads.handle_workload_event(_deps(memo), ref, inventory.hashes_in(ns))
