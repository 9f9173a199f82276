"""Kubernetes Events about padlock's objects ("Issued", "IssuanceFailed", "Reloaded", ...).

Called by the controllers after each decision a user wants to see in `kubectl describe`.
Events are best effort: a failure to post one is logged and never fails the issuance.
"""

from __future__ import annotations

import datetime
import logging
import secrets
from collections.abc import Mapping
from typing import Any

from padlock.kube import paths
from padlock.kube.client import ApiError, KubeClient

log = logging.getLogger(__name__)

NORMAL = "Normal"
WARNING = "Warning"
COMPONENT = "padlock-operator"


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


async def post(
    client: KubeClient,
    involved: Mapping[str, Any],
    *,
    reason: str,
    message: str,
    type_: str = NORMAL,
) -> None:
    """Post one Event about `involved` (a body with apiVersion, kind and metadata).

    Cluster-scoped objects (ClusterIssuers) get their Events in the client's default
    namespace, as kubectl does.
    """
    meta = involved.get("metadata") or {}
    namespace = meta.get("namespace") or client.default_namespace
    now = _now()
    body = {
        "apiVersion": "v1",
        "kind": "Event",
        # A unique name as the API server's generateName would make (some emulators lack it).
        "metadata": {
            "name": f"{meta.get('name', 'padlock')}.{secrets.token_hex(8)}",
            "namespace": namespace,
        },
        "involvedObject": {
            "apiVersion": involved.get("apiVersion"),
            "kind": involved.get("kind"),
            "name": meta.get("name"),
            "namespace": meta.get("namespace"),
            "uid": meta.get("uid"),
        },
        "reason": reason,
        "message": message[:1024],
        "type": type_,
        "source": {"component": COMPONENT},
        "reportingComponent": COMPONENT,
        "reportingInstance": COMPONENT,
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }
    try:
        await client.create(paths.EVENTS.path(namespace), body)
    except ApiError as exc:
        log.warning(
            "could not post Event %s on %s/%s: %s", reason, namespace, meta.get("name"), exc
        )
