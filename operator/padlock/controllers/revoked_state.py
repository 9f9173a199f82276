"""A Certificate whose current certificate was revoked without re-issue is not Ready.

Called by the revocation controller (`padlock.controllers.revocations`, `mark`) when a
RevocationRequest with `reissue: false` revokes a Certificate's current serial, and by the
certificate controller (`padlock.controllers.issuing`, `held`) on every pass: a revoked
certificate (RFC 5280 §5.3.1) must not be served as Ready, so Ready=False, reason `Revoked`,
stays until a new certificate (new serial) is issued for the Certificate (spec change,
`padlock renew`, renewal time). The Ready gauge follows the condition this module writes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from padlock.api import certificate as cert_api
from padlock.api.conditions import ConditionType, Reason
from padlock.controllers import conditions, observe
from padlock.controllers.context import Deps
from padlock.kube import objects, paths

log = logging.getLogger(__name__)


def held(status: Mapping[str, Any], serial: str) -> Mapping[str, Any] | None:
    """The Ready=False/Revoked condition if it was set for `serial` (lowercase hex), the
    certificate the Secret still holds; None once another certificate was issued."""
    ready = conditions.get(status.get("conditions"), ConditionType.READY)
    if ready is None or (ready.get("status"), ready.get("reason")) != ("False", Reason.REVOKED):
        return None
    recorded = str(status.get("serialNumber") or "").replace(":", "").lower().lstrip("0")
    return ready if recorded and recorded == serial.lower().lstrip("0") else None


async def mark(deps: Deps, certificate: Mapping[str, Any], message: str) -> None:
    """Set Ready=False, reason Revoked, with `message` on the Certificate (status as listed:
    its serialNumber is the revoked one) and its Ready gauge to False. No PATCH when the
    same condition is already there (a re-run of the revocation pass)."""
    meta = certificate.get("metadata") or {}
    namespace, name = str(meta["namespace"]), str(meta["name"])
    status = certificate.get("status") or {}
    current = status.get("conditions") or []
    previous = conditions.get(current, ConditionType.READY)
    wanted = ("False", Reason.REVOKED, message)
    if previous is None or (
        (previous.get("status"), previous.get("reason"), previous.get("message")) != wanted
    ):
        updated = conditions.put(
            current,
            ConditionType.READY,
            "False",
            Reason.REVOKED,
            message,
            deps.clock(),
            meta.get("generation"),
        )
        patched = await objects.patch_status(
            deps.kube, paths.CERTIFICATES, namespace, name, {"conditions": updated}
        )
        if patched is None:
            return  # the Certificate is gone
    try:
        spec = cert_api.CertificateSpec.from_dict(certificate.get("spec") or {}, "spec")
    except ValueError as exc:
        log.warning("%s/%s: no Ready gauge for an invalid spec: %s", namespace, name, exc)
        return
    ref = spec.issuer_ref
    observe.certificate_ready(namespace, name, ref.name, ref.effective_kind.value, "False")
