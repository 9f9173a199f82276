"""The Secret watch: notice padlock Secrets that were deleted or changed by someone else, and
roll workloads when a Secret's content changes.

Called by kopf `@kopf.on.event` on Secrets selected server-side by padlock's managed-by label
(never on.create/update/field, which would copy `data` — the private key — into kopf's
last-handled-configuration annotation). It does not re-issue itself: it sets a trigger
annotation on the owning Certificate so the certificate controller runs with kopf's retries.
"""

from __future__ import annotations

import secrets as secrets_mod
from collections.abc import Iterable, Mapping
from typing import Any

from padlock.api import labels
from padlock.controllers import assessment, crypto, issuing, reloads
from padlock.controllers.context import Deps
from padlock.kube import secrets


def tls_crt_hash(body: Mapping[str, Any]) -> str | None:
    """Index value for a padlock TLS Secret: the hash of its tls.crt."""
    tls_crt = secrets.data_of(body, secrets.TLS_CRT)
    return crypto.content_hash(tls_crt) if tls_crt else None


def is_padlock_tls(body: Mapping[str, Any]) -> bool:
    meta_labels = (body.get("metadata") or {}).get("labels") or {}
    return (
        meta_labels.get(labels.MANAGED_BY) == labels.MANAGED_BY_VALUE
        and meta_labels.get(secrets.ROLE) == secrets.ROLE_TLS
        and bool(meta_labels.get(labels.CERTIFICATE_NAME))
    )


def is_consistent(body: Mapping[str, Any]) -> bool:
    """The Secret holds what padlock wrote (content hash annotation matches the data)."""
    tls_crt = secrets.data_of(body, secrets.TLS_CRT)
    tls_key = secrets.data_of(body, secrets.TLS_KEY)
    if not tls_crt or not tls_key:
        return False
    expected = secrets.annotations_of(body).get(assessment.CONTENT_HASH)
    return expected == assessment.content_hash(tls_crt, tls_key)


async def handle_secret_event(
    deps: Deps,
    event_type: str | None,
    body: Mapping[str, Any],
    workload_refs: Iterable[reloads.WorkloadRef],
    secret_hashes: Mapping[str, str],
) -> None:
    """React to one watch event of a padlock TLS Secret (see the module docstring).

    `secret_hashes` are the tls.crt hashes of the padlock Secrets in the same namespace.
    """
    if not is_padlock_tls(body):
        return
    meta = body.get("metadata") or {}
    namespace, name = str(meta["namespace"]), str(meta["name"])
    certificate = str(meta["labels"][labels.CERTIFICATE_NAME])
    # Each distinct state triggers once; without a resourceVersion, every event does.
    version = str(meta.get("resourceVersion") or secrets_mod.token_hex(8))
    if event_type == "DELETED":
        await issuing.trigger(
            deps, (namespace, certificate), issuing.SECRET_CHANGED, f"deleted-{version}"
        )
        return
    if not is_consistent(body):
        await issuing.trigger(
            deps, (namespace, certificate), issuing.SECRET_CHANGED, f"changed-{version}"
        )
        return
    await reloads.reload_for_secret(deps, namespace, name, workload_refs, secret_hashes)
