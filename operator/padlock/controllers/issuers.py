"""Issuer and ClusterIssuer readiness.

Called by the kopf handlers in `padlock.controllers.main` (create, update, resume), by the
operator's once-a-minute re-check of `ca` issuers, and by the certificate controller
(`resolve`). No finalizers: deleting an Issuer never waits for the operator.

- `ca: {}`: Ready when the CA sidecar answers `GET /v1/ca` and its chain is valid now
  (each certificate signed by the next, the root by itself, all within their validity).
- `selfSigned: {}`: always Ready; each certificate signs itself.
- `acme: {...}`: Ready=False for good ("ACME is not supported yet"); no retries.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import kopf

from padlock.api import durations, group
from padlock.api.conditions import ConditionType, Reason
from padlock.api.issuer import IssuerSpec
from padlock.api.refs import IssuerReference
from padlock.ca.client import CAError, CARefused
from padlock.controllers import conditions, crypto, observe
from padlock.controllers.context import Deps, IssuerKey, IssuerState
from padlock.kube import objects, paths

ACME_NOT_SUPPORTED = "ACME is not supported yet"
REASON_ACME_NOT_SUPPORTED = "ACMENotSupported"
RETRY_UNREACHABLE_SECONDS = 30.0


def _resource(kind: str) -> paths.Resource:
    return paths.CLUSTER_ISSUERS if kind == group.Kind.CLUSTER_ISSUER else paths.ISSUERS


def key_of(kind: str, namespace: str | None, name: str) -> IssuerKey:
    return (kind, "" if kind == group.Kind.CLUSTER_ISSUER else (namespace or ""), name)


async def _assess(deps: Deps, spec: IssuerSpec) -> tuple[bool, str, str, bool]:
    """(ready, reason, message, retry) for a decoded spec."""
    if spec.self_signed is not None:
        return True, Reason.READY, "self-signed: each certificate is signed by its own key", False
    if spec.acme is not None:
        return False, REASON_ACME_NOT_SUPPORTED, ACME_NOT_SUPPORTED, False
    return await _assess_ca(deps)


async def _assess_ca(deps: Deps) -> tuple[bool, str, str, bool]:
    try:
        info = await deps.ca.info()
    except CARefused as exc:
        return False, Reason.CA_UNREACHABLE, f"the CA refused GET /v1/ca: {exc}", True
    except CAError as exc:
        return False, Reason.CA_UNREACHABLE, f"the CA does not answer: {exc}", True
    try:
        crypto.check_chain(info.chain.rstrip("\n") + "\n" + info.root, deps.clock())
    except ValueError as exc:
        return False, Reason.INVALID_CONFIG, f"the CA's chain is not valid: {exc}", True
    return True, Reason.CA_REACHABLE, f"CA {info.name} answers and its chain is valid", False


async def handle_issuer(deps: Deps, kind: str, body: Mapping[str, Any]) -> None:
    """Decide Ready, record it (status, gauge, in-memory state); TemporaryError to retry an
    unreachable CA, nothing more for permanent states."""
    meta = body.get("metadata") or {}
    namespace = meta.get("namespace") or ""
    name = str(meta["name"])
    profile = None
    max_duration = None
    type_name = "invalid"
    try:
        spec = IssuerSpec.from_dict(body.get("spec") or {}, "spec")
    except ValueError as exc:
        ready, reason, message, retry = False, str(Reason.INVALID_CONFIG), str(exc), False
    else:
        type_name = spec.type_name
        if spec.ca is not None:
            profile = spec.ca.profile
            if spec.ca.max_duration is not None:
                max_duration = durations.parse(spec.ca.max_duration)
        ready, reason, message, retry = await _assess(deps, spec)
    state = IssuerState(
        kind=kind,
        namespace=namespace,
        name=name,
        type_name=type_name,
        ready=ready,
        reason=reason,
        message=message,
        profile=profile,
        max_duration=max_duration,
    )
    deps.issuers[key_of(kind, namespace, name)] = state
    status_word = "True" if ready else "False"
    observe.issuer_ready(kind, namespace, name, status_word)
    current = (body.get("status") or {}).get("conditions")
    previous = conditions.get(current, ConditionType.READY)
    if (
        previous is None
        or previous.get("status") != status_word
        or previous.get("reason") != reason
        or previous.get("message") != message
    ):
        await objects.patch_status(
            deps.kube,
            _resource(kind),
            namespace or None,
            name,
            {
                "conditions": conditions.put(
                    current,
                    ConditionType.READY,
                    status_word,
                    reason,
                    message,
                    deps.clock(),
                    meta.get("generation"),
                )
            },
        )
    if retry:
        raise kopf.TemporaryError(message, delay=RETRY_UNREACHABLE_SECONDS)


async def recheck_ca_issuers(deps: Deps) -> int:
    """Ask the CA once and update every known `ca` issuer whose readiness changed (the CA
    sidecar is the same for all of them). Called every minute by the operator; replaces a
    kopf timer per issuer, which would put a finalizer on every Issuer. Returns how many
    issuers changed."""
    states = [s for s in deps.issuers.values() if s.type_name == "ca"]
    if not states:
        return 0
    ready, reason, message, _retry = await _assess_ca(deps)
    changed = 0
    for state in states:
        if (state.ready, state.reason, state.message) == (ready, reason, message):
            continue
        key = key_of(state.kind, state.namespace, state.name)
        deps.issuers[key] = dataclasses.replace(state, ready=ready, reason=reason, message=message)
        observe.issuer_ready(state.kind, state.namespace, state.name, "True" if ready else "False")
        body = await objects.get(deps.kube, _resource(state.kind), key[1] or None, state.name)
        if body is None:
            continue
        current = (body.get("status") or {}).get("conditions")
        await objects.patch_status(
            deps.kube,
            _resource(state.kind),
            key[1] or None,
            state.name,
            {
                "conditions": conditions.put(
                    current,
                    ConditionType.READY,
                    "True" if ready else "False",
                    reason,
                    message,
                    deps.clock(),
                    (body.get("metadata") or {}).get("generation"),
                )
            },
        )
        changed += 1
    return changed


def forget_issuer(deps: Deps, kind: str, namespace: str | None, name: str) -> None:
    deps.issuers.pop(key_of(kind, namespace, name), None)
    observe.issuer_forgotten(kind, namespace or "", name)


class IssuerUnavailable(Exception):
    """The Certificate's issuer does not exist or is not Ready; `reason` is a status reason."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message


async def resolve(deps: Deps, namespace: str, ref: IssuerReference) -> IssuerState:
    """The state of the issuer a Certificate names: from memory, else from the API."""
    kind = ref.effective_kind.value
    key = key_of(kind, namespace, ref.name)
    state = deps.issuers.get(key)
    if state is None:
        body = await objects.get(deps.kube, _resource(kind), key[1] or None, ref.name)
        where = f"{kind} {ref.name}" + (f" in namespace {namespace}" if key[1] else "")
        if body is None:
            raise IssuerUnavailable(Reason.ISSUER_NOT_FOUND, f"{where} does not exist")
        spec = IssuerSpec.from_dict(body.get("spec") or {}, "spec")
        ready = conditions.get((body.get("status") or {}).get("conditions"), ConditionType.READY)
        state = IssuerState(
            kind=kind,
            namespace=key[1],
            name=ref.name,
            type_name=spec.type_name,
            ready=bool(ready and ready.get("status") == "True"),
            reason=str((ready or {}).get("reason", "Unknown")),
            message=str((ready or {}).get("message", "not yet checked")),
            profile=spec.ca.profile if spec.ca else None,
            max_duration=(
                durations.parse(spec.ca.max_duration) if spec.ca and spec.ca.max_duration else None
            ),
        )
    if state.type_name == "acme":
        raise IssuerUnavailable(REASON_ACME_NOT_SUPPORTED, ACME_NOT_SUPPORTED)
    if not state.ready:
        raise IssuerUnavailable(
            Reason.ISSUER_NOT_READY, f"{kind} {ref.name} is not Ready: {state.message}"
        )
    return state
