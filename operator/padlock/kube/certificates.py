"""Certificates as the `padlock status` and `padlock renew` commands see them.

Called by `padlock.cli.operator`. `list_all` reads every Certificate in the cluster (or one
namespace) in one LIST; `request_renewal` sets the annotation the certificate controller
answers by issuing a new certificate once.
"""

from __future__ import annotations

import datetime
from typing import Any

from padlock.api import labels
from padlock.kube import objects, paths
from padlock.kube.client import KubeClient

# Annotation on a Certificate: a renewal was asked for at this time (any new value asks again).
RENEW_REQUESTED = f"{labels.PREFIX}/renew-requested"


async def list_all(client: KubeClient, namespace: str | None = None) -> list[dict[str, Any]]:
    answer = await client.get(paths.CERTIFICATES.path(namespace))
    return list(answer.get("items") or [])


async def request_renewal(
    client: KubeClient, namespace: str, name: str, now: datetime.datetime
) -> bool:
    """Ask the operator to renew `namespace/name` now; False if there is no such Certificate."""
    value = now.astimezone(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    patched = await objects.patch_annotations(
        client, paths.CERTIFICATES, namespace, name, {RENEW_REQUESTED: value}
    )
    return patched is not None
