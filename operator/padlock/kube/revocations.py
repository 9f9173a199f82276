"""RevocationRequests and the Certificates a revocation touches, as the API server stores them.

Called by the revocation controller (`padlock.controllers.revocations`): record a request's
status, find the Certificates whose current certificate was revoked, and ask the certificate
controller to re-issue one (the annotation `padlock renew` sets, with a value naming the
request, so asking twice is a no-op).
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Mapping
from typing import Any

from padlock.api import group
from padlock.kube import certificates, objects, paths
from padlock.kube.client import ApiError, KubeClient

log = logging.getLogger(__name__)

REVOCATION_REQUESTS = paths.Resource(group.GROUP, group.VERSION, group.REVOCATION_REQUEST.plural)

FORBIDDEN = 403


async def get(client: KubeClient, namespace: str, name: str) -> dict[str, Any] | None:
    """The RevocationRequest as stored now; None if it is gone."""
    return await objects.get(client, REVOCATION_REQUESTS, namespace, name)


async def patch_status(
    client: KubeClient, namespace: str, name: str, status: Mapping[str, Any]
) -> dict[str, Any] | None:
    """Merge `status` into the RevocationRequest's status; None if it is gone."""
    return await objects.patch_status(client, REVOCATION_REQUESTS, namespace, name, status)


def serial_of(certificate: Mapping[str, Any]) -> str | None:
    """The Certificate's `status.serialNumber` as lowercase hex without separators."""
    value = (certificate.get("status") or {}).get("serialNumber")
    if not isinstance(value, str) or not value:
        return None
    return value.replace(":", "").lower()


async def holding(
    client: KubeClient, serials: Collection[str], namespace: str | None
) -> list[dict[str, Any]]:
    """Certificates whose `status.serialNumber` is one of `serials` (lowercase hex), in
    `namespace`, or in every namespace for None."""
    wanted = {s.lstrip("0") for s in serials}
    items = await certificates.list_all(client, namespace)
    return [c for c in items if (serial_of(c) or "").lstrip("0") in wanted and serial_of(c)]


async def holding_anywhere(
    client: KubeClient, serials: Collection[str], fallback: str
) -> list[dict[str, Any]]:
    """`holding` in every namespace; in `fallback` only when listing cluster-wide is
    forbidden (an operator started with `--namespace`)."""
    try:
        return await holding(client, serials, None)
    except ApiError as exc:
        if exc.status != FORBIDDEN:
            raise
        log.info("cannot list Certificates cluster-wide (%s); looking in %s only", exc, fallback)
        return await holding(client, serials, fallback)


async def request_reissue(client: KubeClient, namespace: str, name: str, marker: str) -> bool:
    """Set the renew-request annotation to `marker`; False if the Certificate is gone."""
    patched = await objects.patch_annotations(
        client, paths.CERTIFICATES, namespace, name, {certificates.RENEW_REQUESTED: marker}
    )
    return patched is not None
