"""What every handler needs, built once per operator process: the Kubernetes client, the CA
client, the renewal scheduler and what is known about issuers.

Created by `padlock.controllers.main`'s startup handler and handed to handlers through kopf's
`memo`; tests build one directly around a kmock server and a test CA. The CA is reached only
through `CAPort`, the shape of `padlock.ca.client.CAClient`.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
from collections.abc import Callable
from typing import Protocol

from padlock.ca.client import CAInfo, SignResult
from padlock.controllers.scheduler import RenewalScheduler
from padlock.kube.client import KubeClient


class CAPort(Protocol):
    """The calls the operator makes to the CA (see `padlock.ca.client.CAClient`)."""

    async def sign(
        self,
        csr_pem: str,
        profile: str,
        lifetime_seconds: int,
        idempotency_key: str,
        requester: str,
    ) -> SignResult: ...

    async def info(self) -> CAInfo: ...

    async def close(self) -> None: ...


IssuerKey = tuple[str, str, str]  # (kind, namespace or "", name)


@dataclasses.dataclass(frozen=True)
class IssuerState:
    """What the certificate controller needs to know about one Issuer/ClusterIssuer."""

    kind: str
    namespace: str
    name: str
    type_name: str  # "ca", "selfSigned" or "acme"
    ready: bool
    reason: str
    message: str
    profile: str | None = None
    max_duration: datetime.timedelta | None = None


@dataclasses.dataclass
class Deps:
    """The operator's shared dependencies. `ca_slots` bounds concurrent CA calls (kopf's
    worker limit stays unlimited because of the indexes, kopf #1243)."""

    kube: KubeClient
    ca: CAPort
    scheduler: RenewalScheduler
    clock: Callable[[], datetime.datetime]
    requester: str = "padlock-operator"
    ca_root: bytes | None = None
    """The CA's trust anchor PEM for `ca.crt`, fetched once."""
    issuers: dict[IssuerKey, IssuerState] = dataclasses.field(default_factory=dict)
    ca_slots: asyncio.Semaphore = dataclasses.field(default_factory=lambda: asyncio.Semaphore(16))
    reconcile_slots: asyncio.Semaphore = dataclasses.field(
        default_factory=lambda: asyncio.Semaphore(32)
    )
    """Bounds Certificate reconciliations in flight: kopf starts one worker per object, so a
    thousand new Certificates (or a restart) would otherwise hold a thousand handler frames,
    keys and API answers in memory at once, and queue a thousand API calls."""
