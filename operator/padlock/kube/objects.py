"""Status and annotation patches on padlock's own custom objects (Certificates, Issuers).

Called by the controllers (status after each reconciliation, renewal "pokes") and by the
`padlock renew` command. Merge patches carry no resourceVersion, so they never conflict;
a 409 from an admission webhook or a racing delete is retried once after a re-read.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from padlock.kube import paths
from padlock.kube.client import Conflict, KubeClient, NotFound


async def get(
    client: KubeClient, resource: paths.Resource, namespace: str | None, name: str
) -> dict[str, Any] | None:
    try:
        return await client.get(resource.path(namespace, name))
    except NotFound:
        return None


async def patch_status(
    client: KubeClient,
    resource: paths.Resource,
    namespace: str | None,
    name: str,
    status: Mapping[str, Any],
) -> dict[str, Any] | None:
    """Merge `status` into the object's status subresource; None if the object is gone."""
    return await _merge_patch(
        client, resource.path(namespace, name, "status"), {"status": dict(status)}
    )


async def patch_annotations(
    client: KubeClient,
    resource: paths.Resource,
    namespace: str | None,
    name: str,
    annotations: Mapping[str, str | None],
) -> dict[str, Any] | None:
    """Set (or, with None, remove) annotations; None if the object is gone."""
    return await _merge_patch(
        client, resource.path(namespace, name), {"metadata": {"annotations": dict(annotations)}}
    )


async def _merge_patch(
    client: KubeClient, path: str, body: dict[str, Any]
) -> dict[str, Any] | None:
    """Merge-patch `path`, retrying a 409 once; None if the object is gone."""
    for attempt in range(2):
        try:
            return await client.merge_patch(path, body)
        except NotFound:
            return None
        except Conflict:
            if attempt:
                raise
    return None
