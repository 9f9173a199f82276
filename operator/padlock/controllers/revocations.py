"""The revocation controller: carry out a RevocationRequest once, and say how it went.

Called by the kopf handlers in `padlock.controllers.main_revocations` on create and resume.
Watches: RevocationRequests (their spec is immutable); reads: Certificates, their Secrets,
Issuers; calls: the CA's `POST /v1/revoke` or `/v1/revoke-all`; sets: the request's status
(`revokedSerials`, `revokedAt`, `conditions[Complete]`), Events on the request and on every
affected Certificate, and, with `reissue: true`, the affected Certificates' renew request
(`padlock.controllers.reissue`); without it, their Ready=False, reason Revoked
(`padlock.controllers.revoked_state`).

One pass (`handle_revocation_request`):
1. Complete=True already → nothing (an operator restart or a re-run changes nothing).
2. `revokedSerials` already recorded (a pass interrupted after the CA answered) → skip to 4:
   resolving again could find the replacement certificate and revoke it too.
3. Resolve the target (`revocation_targets`), call the CA with the RFC 5280 §5.3.1 reason and
   requester `namespace/name`, record `revokedSerials` and `revokedAt` at once. The CA treats
   a second revocation of a serial as a no-op, so a re-run after a crash is harmless.
4. Events on the affected Certificates; re-issue them if asked, else mark them not Ready;
   Complete=True.

Errors: an unknown serial, another CA's serial, a missing Certificate or a selfSigned issuer →
Complete=False with the reason and the CA's message, `kopf.PermanentError` (no retry loop);
the CA down or rate-limiting, or a Certificate mid-issuance → Complete=False, `TemporaryError`
with capped exponential back-off. `crlNumber` stays unset: the CA's revoke answer does not
carry it (the CRL shard is regenerated before the CA answers, RFC 5280 §5.2.3).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Mapping, Sequence
from typing import Any, NoReturn, Protocol, runtime_checkable

import kopf

from padlock.api.conditions import ConditionType, Reason
from padlock.api.revocation import RevocationRequestSpec
from padlock.api.wire import format_time
from padlock.ca.client import CARateLimited, CARefused, CAUnavailable, RevokeResult
from padlock.controllers import conditions, reissue, renewal, revoked_state
from padlock.controllers import revocation_targets as targets
from padlock.controllers.context import Deps
from padlock.kube import events, revocations
from padlock.kube.client import ApiUnavailable

log = logging.getLogger(__name__)

UNKNOWN_SERIAL = "UnknownSerial"  # the CA never issued that serial (or another CA did)
INVALID_SPEC = "InvalidSpec"
CA_UNKNOWN_SERIAL = "unknown-serial"  # padlock.services.ca_http.errors code, 404
EVENT_SERIALS = 5  # serials named in an Event message; the status lists them all


@runtime_checkable
class RevokePort(Protocol):
    """The CA calls this controller makes (see `padlock.ca.client.CAClient`)."""

    async def revoke(self, serial: str, reason: str, requester: str) -> RevokeResult: ...

    async def revoke_all(self, reason: str, requester: str) -> tuple[RevokeResult, ...]: ...


class _Failed(Exception):
    def __init__(self, reason: str, message: str, *, permanent: bool, delay: float = 0) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.permanent = permanent
        self.delay = delay


def _revoker(deps: Deps) -> RevokePort:
    ca = deps.ca
    if not isinstance(ca, RevokePort):
        raise kopf.PermanentError(f"the CA client {type(ca).__name__} cannot revoke")
    return ca


def _named(serials: Sequence[str]) -> str:
    shown = ", ".join(serials[:EVENT_SERIALS])
    more = len(serials) - EVENT_SERIALS
    return shown + (f" and {more} more" if more > 0 else "") if serials else "none"


class _Request:
    """One RevocationRequest as this pass sees it."""

    def __init__(self, deps: Deps, body: Mapping[str, Any]) -> None:
        meta = body.get("metadata") or {}
        self.deps = deps
        self.body = body
        self.namespace = str(meta["namespace"])
        self.name = str(meta["name"])
        self.uid = str(meta.get("uid", ""))
        self.generation: int | None = meta.get("generation")
        self.status: dict[str, Any] = dict(body.get("status") or {})

    @property
    def requester(self) -> str:
        return f"{self.namespace}/{self.name}"

    async def set_status(self, changes: Mapping[str, Any], reason: str, message: str) -> None:
        """Merge `changes` and the Complete condition; no PATCH when nothing changed."""
        word = "True" if reason == Reason.REVOKED else "False"
        current = self.status.get("conditions")
        previous = conditions.get(current, ConditionType.COMPLETE)
        same = (
            previous is not None
            and (previous.get("status"), previous.get("reason"), previous.get("message"))
            == (word, reason, message)
            and all(self.status.get(k) == v for k, v in changes.items())
        )
        if same:
            return
        updated = conditions.put(
            current,
            ConditionType.COMPLETE,
            word,
            reason,
            message,
            self.deps.clock(),
            self.generation,
        )
        patch = {**changes, "conditions": updated}
        await revocations.patch_status(self.deps.kube, self.namespace, self.name, patch)
        self.status.update(patch)


def _revoked_at(results: Sequence[RevokeResult]) -> str | None:
    times = [datetime.datetime.fromisoformat(r.revoked_at) for r in results]
    return format_time(min(times)) if times else None


async def _revoke(request: _Request, spec: RevocationRequestSpec, retry: int) -> list[str]:
    """Resolve the target, call the CA, record revokedSerials/revokedAt; the serials."""
    deps = request.deps
    try:
        target = await targets.resolve(deps.kube, request.namespace, spec)
    except targets.TargetProblem as exc:
        raise _Failed(
            exc.reason,
            exc.message,
            permanent=exc.permanent,
            delay=renewal.backoff_seconds(retry + 1),
        ) from None
    reason = spec.effective_reason.value
    ca = _revoker(deps)
    try:
        async with deps.ca_slots:
            if target.all_from_issuer:
                results = list(await ca.revoke_all(reason, request.requester))
            else:
                results = [await ca.revoke(s, reason, request.requester) for s in target.serials]
    except CARefused as exc:
        code = UNKNOWN_SERIAL if exc.code == CA_UNKNOWN_SERIAL else Reason.REVOCATION_FAILED
        raise _Failed(
            code,
            f"the CA refused to revoke {target.description}: {exc.message} ({exc.code})",
            permanent=True,
        ) from None
    except (CAUnavailable, CARateLimited) as exc:
        delay = renewal.backoff_seconds(retry + 1)
        if isinstance(exc, CARateLimited):
            delay = max(delay, exc.retry_after)
        raise _Failed(
            Reason.CA_UNREACHABLE,
            f"cannot revoke {target.description} now, retrying in {delay:g}s: {exc}",
            permanent=False,
            delay=delay,
        ) from None
    revoked = [targets.normalize_serial(r.serial) for r in results]
    changes: dict[str, Any] = {"revokedSerials": revoked}
    revoked_at = _revoked_at(results)
    if revoked_at is not None:
        changes["revokedAt"] = revoked_at
    await request.set_status(
        changes,
        Reason.PENDING,
        f"revoked {target.description} ({reason}); updating the affected Certificates",
    )
    await events.post(
        deps.kube,
        request.body,
        reason="Revoked",
        message=f"revoked {len(revoked)} certificate(s) ({reason}): {_named(revoked)}",
    )
    return revoked


async def _affected(request: _Request, spec: RevocationRequestSpec, revoked: list[str]) -> str:
    """Events on (and with reissue, re-issue of) the Certificates holding a revoked serial;
    a summary for the Complete message."""
    deps = request.deps
    if not revoked:
        return ""
    if spec.certificate_ref is not None:
        found = await revocations.holding(deps.kube, revoked, request.namespace)
    else:
        found = await revocations.holding_anywhere(deps.kube, revoked, request.namespace)
    reason = spec.effective_reason.value
    marker = reissue.marker(request.namespace, request.name, request.uid)
    notes: list[str] = []
    for certificate in found:
        meta = certificate.get("metadata") or {}
        namespace, name = str(meta["namespace"]), str(meta["name"])
        await events.post(
            deps.kube,
            certificate,
            reason="Revoked",
            message=f"certificate {revocations.serial_of(certificate)} revoked ({reason}) by "
            f"RevocationRequest {request.requester}"
            + ("; re-issuing with a new key" if spec.reissue else ""),
            type_=events.WARNING,
        )
        if spec.reissue:
            outcome = await reissue.reissue(deps.kube, namespace, name, revoked, marker)
            notes.append(f"Certificate {namespace}/{name}: {outcome.value}")
        else:
            await revoked_state.mark(
                deps,
                certificate,
                f"certificate {revocations.serial_of(certificate)} was revoked ({reason}) by "
                f"RevocationRequest {request.requester}; renew it to issue a new one",
            )
    return "; ".join(notes)


async def handle_revocation_request(deps: Deps, body: Mapping[str, Any], retry: int = 0) -> None:
    """One pass over one RevocationRequest (see the module docstring). `retry` is kopf's
    count of earlier failed attempts (for the back-off)."""
    meta = body.get("metadata") or {}
    # The body kopf hands over may predate this controller's own last status write.
    fresh = await revocations.get(deps.kube, str(meta["namespace"]), str(meta["name"]))
    if fresh is None:
        return
    request = _Request(deps, fresh)
    done = conditions.get(request.status.get("conditions"), ConditionType.COMPLETE)
    if done is not None and done.get("status") == "True":
        log.info("%s is already Complete; nothing to do", request.requester)
        return
    try:
        spec = RevocationRequestSpec.from_dict(fresh.get("spec") or {}, "spec")
        spec.check()
    except ValueError as exc:
        await _fail(request, _Failed(INVALID_SPEC, f"invalid spec: {exc}", permanent=True))
    try:
        recorded = request.status.get("revokedSerials")
        if recorded is not None and request.status.get("revokedAt"):
            revoked = [str(s) for s in recorded]
        else:
            revoked = await _revoke(request, spec, retry)
        summary = await _affected(request, spec, revoked)
    except _Failed as exc:
        await _fail(request, exc)
    except ApiUnavailable as exc:
        delay = renewal.backoff_seconds(retry + 1)
        raise kopf.TemporaryError(f"the API server is unavailable: {exc}", delay=delay) from None
    reason = spec.effective_reason.value
    message = f"revoked {len(revoked)} certificate(s) ({reason})" + (
        f"; {summary}" if summary else ""
    )
    if not revoked:
        message = "the CA had no certificate left to revoke"
    await request.set_status({}, Reason.REVOKED, message)
    log.info("%s complete: %s", request.requester, message)


async def _fail(request: _Request, failure: _Failed) -> NoReturn:
    """Record Complete=False and raise the kopf error that fits (never returns)."""
    await request.set_status({}, failure.reason, failure.message)
    if failure.permanent:
        await events.post(
            request.deps.kube,
            request.body,
            reason="RevocationFailed",
            message=failure.message,
            type_=events.WARNING,
        )
        raise kopf.PermanentError(failure.message)
    raise kopf.TemporaryError(failure.message, delay=failure.delay or renewal.backoff_seconds(1))
