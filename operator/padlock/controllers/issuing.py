"""The certificate controller: keep each Certificate's Secret valid, current and matching.

Called by the kopf handlers in `padlock.controllers.main` on create, update (spec changes and
padlock's own trigger annotations) and resume. Watches: Certificates; reads: the TLS Secret,
the issuer; sets: the Secret, the status, Events, metrics and the renewal schedule.

One pass (`handle_certificate`):
1. `assess` the Secret against the spec (pure, `padlock.controllers.assessment`): missing,
   key/cert disagree, written for another spec or object, names differ, renewal time passed,
   or a renewal was requested → re-issue.
2. Otherwise record Ready (status only if it changed: a restart patches nothing); a
   certificate revoked without re-issue keeps Ready=False/Revoked (`revoked_state`).
3. To re-issue: revision R = last revision + 1. The key and CSR for R are stored first in a
   "next private key" Secret; the CA is called with idempotency key namespace/name/R/uid, so a
   handler re-run after a crash sends the same CSR and gets the same certificate back; the TLS
   Secret then gets key and certificate in one write, annotated with R and the spec hash.
   A re-run that finds that Secret already written for R adopts it without calling the CA.

Errors: CA down, timeout, 429 → `kopf.TemporaryError` with capped exponential back-off and
`failedIssuanceAttempts`; a CA policy refusal → `kopf.PermanentError` with the CA's message in
the Ready condition (kopf retries again only when the spec changes).
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import logging
import time
from collections.abc import Mapping
from typing import Any

import kopf
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

from padlock.api import certificate as api
from padlock.api import group, labels
from padlock.api.conditions import ConditionType, Reason
from padlock.api.wire import format_time
from padlock.ca.client import CARateLimited, CARefused, CAUnavailable
from padlock.controllers import conditions, crypto, issuers, observe, renewal, revoked_state
from padlock.controllers.assessment import CONTENT_HASH, Verdict, assess, content_hash
from padlock.controllers.context import Deps, IssuerState
from padlock.kube import certificates, events, objects, paths, secrets
from padlock.kube.client import ApiError, ApiUnavailable, Conflict
from padlock.pki import serials

log = logging.getLogger(__name__)

# Annotations padlock sets on a Certificate to make kopf's update handler run again.
RENEWAL_DUE = f"{labels.PREFIX}/renewal-due"
SECRET_CHANGED = f"{labels.PREFIX}/secret-changed"
IDEMPOTENCY_CONFLICT = "idempotency-conflict"  # CARefused.code (padlock.ca.errors)
MAX_BURNED_REVISIONS = 3


def _serial(leaf: x509.Certificate) -> str:
    return serials.serial_hex(leaf.serial_number).lower()


def default_profile(spec: api.CertificateSpec) -> str:
    """The CA profile for an issuer without `profile`: client-only usages get tls-client."""
    usages = set(spec.effective_usages)
    if api.KeyUsage.CLIENT_AUTH in usages and api.KeyUsage.SERVER_AUTH not in usages:
        return "tls-client"
    return "tls-server"


@dataclasses.dataclass(frozen=True)
class _Cert:
    namespace: str
    name: str
    uid: str
    generation: int | None
    body: Mapping[str, Any]

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    @property
    def status(self) -> Mapping[str, Any]:
        return self.body.get("status") or {}

    @property
    def owner(self) -> secrets.Owner:
        return secrets.Owner(self.namespace, self.name, self.uid, group.API_VERSION)


async def handle_certificate(deps: Deps, body: Mapping[str, Any]) -> None:
    """One reconciliation of one Certificate (see the module docstring)."""
    meta = body.get("metadata") or {}
    cert = _Cert(
        namespace=str(meta["namespace"]),
        name=str(meta["name"]),
        uid=str(meta.get("uid", "")),
        generation=meta.get("generation"),
        body=body,
    )
    spec_dict = body.get("spec") or {}
    try:
        spec = api.CertificateSpec.from_dict(spec_dict, "spec")
    except ValueError as exc:
        await _record_failure(deps, cert, None, "InvalidSpec", str(exc), usable=False, count=False)
        raise kopf.PermanentError(f"invalid Certificate spec: {exc}") from None
    now = deps.clock()
    renew_request = (meta.get("annotations") or {}).get(certificates.RENEW_REQUESTED)
    shash = crypto.spec_hash(spec_dict)
    try:
        secret = await secrets.read(deps.kube, cert.namespace, spec.secret_name)
    except ApiUnavailable as exc:
        raise kopf.TemporaryError(str(exc), delay=renewal.backoff_seconds(1)) from None
    verdict = assess(secret, spec, shash, cert.uid, renew_request, now)
    if verdict.reason is None and verdict.leaf is not None:
        await _record_ready(deps, cert, spec, verdict.leaf, secrets.annotations_of(secret))
        return
    log.info("%s/%s needs a certificate: %s", cert.namespace, cert.name, verdict.message)
    try:
        issuer = await issuers.resolve(deps, cert.namespace, spec.issuer_ref)
    except issuers.IssuerUnavailable as exc:
        await _record_failure(deps, cert, spec, exc.reason, exc.message, verdict.usable)
        if exc.reason == issuers.REASON_ACME_NOT_SUPPORTED:
            raise kopf.PermanentError(exc.message) from None
        attempts = int(cert.status.get("failedIssuanceAttempts") or 0) + 1
        raise kopf.TemporaryError(exc.message, delay=renewal.backoff_seconds(attempts)) from None
    await _issue(deps, cert, spec, shash, issuer, secret, verdict, renew_request)


async def _issue(
    deps: Deps,
    cert: _Cert,
    spec: api.CertificateSpec,
    shash: str,
    issuer: IssuerState,
    secret: Mapping[str, Any] | None,
    verdict: Verdict,
    renew_request: str | None,
) -> None:
    notes = secrets.annotations_of(secret)
    # The status kopf hands over may predate our own last write: read it fresh.
    fresh = await objects.get(deps.kube, paths.CERTIFICATES, cert.namespace, cert.name)
    fresh_status = (fresh or {}).get("status") or {}
    previous = max(int(cert.status.get("revision") or 0), int(fresh_status.get("revision") or 0))
    if notes.get(secrets.CERTIFICATE_UID) == cert.uid and notes.get(labels.REVISION, "").isdigit():
        previous = max(previous, int(notes[labels.REVISION]))
    revision = previous + 1
    started = time.monotonic()
    try:
        for _burned in range(MAX_BURNED_REVISIONS):
            try:
                material = await _obtain(deps, cert, spec, issuer, revision, verdict)
                break
            except CARefused as exc:
                if exc.code != IDEMPOTENCY_CONFLICT:
                    raise
                # The CA already issued this revision for a key padlock no longer holds (its
                # pending-key Secret and the status were both lost): that revision is burned,
                # the CA keeps its one certificate for it; move on to the next.
                log.warning(
                    "%s/%s: revision %d already used at the CA; using %d",
                    cert.namespace,
                    cert.name,
                    revision,
                    revision + 1,
                )
                revision += 1
        else:
            raise CARefused(
                IDEMPOTENCY_CONFLICT,
                f"{MAX_BURNED_REVISIONS} revisions in a row were already used at the CA",
                409,
            )
        annotations = {
            labels.REVISION: str(revision),
            labels.SPEC_HASH: shash,
            labels.ISSUER_NAME: issuer.name,
            labels.ISSUER_KIND: issuer.kind,
            CONTENT_HASH: content_hash(material.full_chain, material.key_pem),
        }
        if renew_request:
            annotations[secrets.RENEW_REQUEST_HANDLED] = renew_request
        template = spec.secret_template
        written = await secrets.write_tls(
            deps.kube,
            cert.owner,
            spec.secret_name,
            material,
            extra_labels=(template.labels or {}) if template else {},
            extra_annotations=(template.annotations or {}) if template else {},
            padlock_annotations=annotations,
            known=secret,
        )
        if issuer.type_name == "ca":
            await secrets.delete_next_key(deps.kube, cert.namespace, spec.secret_name)
    except CARefused as exc:
        message = f"the CA refused the request: {exc.message} ({exc.code})"
        await _record_failure(deps, cert, spec, Reason.POLICY_VIOLATION, message, verdict.usable)
        await events.post(
            deps.kube, cert.body, reason="IssuanceRefused", message=message, type_=events.WARNING
        )
        raise kopf.PermanentError(message) from None
    except _PolicyProblem as exc:
        await _record_failure(deps, cert, spec, Reason.POLICY_VIOLATION, str(exc), verdict.usable)
        raise kopf.PermanentError(str(exc)) from None
    except (CAUnavailable, CARateLimited, ApiUnavailable, Conflict) as exc:
        attempts = int(cert.status.get("failedIssuanceAttempts") or 0) + 1
        delay = renewal.backoff_seconds(attempts)
        if isinstance(exc, CARateLimited):
            delay = max(delay, exc.retry_after)
        message = f"issuance failed, retrying in {delay:g}s: {exc}"
        await _record_failure(deps, cert, spec, Reason.FAILED, message, verdict.usable)
        await events.post(
            deps.kube, cert.body, reason="IssuanceFailed", message=message, type_=events.WARNING
        )
        raise kopf.TemporaryError(message, delay=delay) from None
    observe.issuance_took(issuer.kind, time.monotonic() - started)
    leaf = crypto.load_leaf(material.cert_pem)
    await _record_ready(deps, cert, spec, leaf, secrets.annotations_of(written))
    word = "Renewed" if verdict.reason == Reason.RENEWING else "Issued"
    await events.post(
        deps.kube,
        cert.body,
        reason=word,
        message=(
            f"{word} revision {revision} (serial {_serial(leaf)}, notAfter "
            f"{format_time(leaf.not_valid_after_utc)}) into Secret {spec.secret_name}: "
            f"{verdict.message}"
        ),
    )


class _PolicyProblem(Exception):
    """A request the operator itself refuses before calling the CA (e.g. over maxDuration)."""


async def _obtain(
    deps: Deps,
    cert: _Cert,
    spec: api.CertificateSpec,
    issuer: IssuerState,
    revision: int,
    verdict: Verdict,
) -> secrets.TLSMaterial:
    """Key + certificate + chain for `revision`, from the CA or self-signed."""
    private_key = spec.effective_private_key
    lifetime = spec.effective_duration
    if issuer.max_duration is not None and lifetime > issuer.max_duration:
        raise _PolicyProblem(
            f"duration {spec.duration} exceeds the maxDuration of {issuer.kind} {issuer.name}"
        )
    pending = None
    if issuer.type_name == "ca":
        pending = await secrets.read_next_key(deps.kube, cert.owner, spec.secret_name, revision)
    key: CertificateIssuerPrivateKeyTypes
    if pending is not None:
        key_pem, csr_pem = pending
        key = crypto.load_key(key_pem)
    else:
        if (
            private_key.effective_rotation_policy is api.RotationPolicy.NEVER
            and verdict.key is not None
            and crypto.key_fits_spec(verdict.key, private_key)
        ):
            key = verdict.key
        else:
            key = await asyncio.to_thread(crypto.generate_key, private_key)
        key_pem = crypto.encode_key(key, private_key.effective_encoding)
        csr_pem = crypto.build_csr(key, spec)
        if issuer.type_name == "ca":
            await secrets.write_next_key(
                deps.kube,
                cert.owner,
                spec.secret_name,
                revision=revision,
                key_pem=key_pem,
                csr_pem=csr_pem,
            )
    if issuer.type_name == "selfSigned":
        leaf_pem = crypto.self_sign(key, spec, deps.clock())
        return secrets.TLSMaterial(
            key_pem=key_pem, cert_pem=leaf_pem, chain_pem=b"", ca_pem=leaf_pem
        )
    async with deps.ca_slots:
        result = await deps.ca.sign(
            csr_pem.decode("ascii"),
            issuer.profile or default_profile(spec),
            int(lifetime.total_seconds()),
            f"{cert.namespace}/{cert.name}/{revision}/{cert.uid}",
            deps.requester,
        )
        root = await _ca_root(deps)
    leaf_pem = result.certificate.encode("ascii")
    if not crypto.key_matches_cert(key, crypto.load_leaf(leaf_pem)):
        raise CARefused(
            "key_mismatch",
            "the CA answered with a certificate for another key (idempotency key reused?)",
            409,
        )
    return secrets.TLSMaterial(
        key_pem=key_pem,
        cert_pem=leaf_pem,
        chain_pem=result.chain.encode("ascii"),
        ca_pem=root,
    )


async def _ca_root(deps: Deps) -> bytes:
    """The CA's trust anchor for `ca.crt` (fetched once per process)."""
    if deps.ca_root is None:
        info = await deps.ca.info()
        deps.ca_root = info.root.encode("ascii")
    return deps.ca_root


def _status_for(
    deps: Deps, cert: _Cert, spec: api.CertificateSpec, leaf: x509.Certificate, revision: int | None
) -> tuple[dict[str, Any], datetime.datetime]:
    not_before, not_after = leaf.not_valid_before_utc, leaf.not_valid_after_utc
    due = renewal.renewal_time(spec, cert.uid, not_before, not_after)
    current = [
        c for c in (cert.status.get("conditions") or []) if c.get("type") != ConditionType.ISSUING
    ]
    # A certificate revoked without re-issue stays Ready=False until a new one is issued.
    revoked = revoked_state.held(cert.status, _serial(leaf))
    ready = (
        ("False", Reason.REVOKED, str(revoked.get("message") or ""))
        if revoked is not None
        else ("True", Reason.READY, "the Secret holds a valid certificate matching the spec")
    )
    status: dict[str, Any] = {
        "conditions": conditions.put(
            current, ConditionType.READY, *ready, deps.clock(), cert.generation
        ),
        "notBefore": format_time(not_before),
        "notAfter": format_time(not_after),
        "renewalTime": format_time(due),
        "serialNumber": _serial(leaf),
    }
    if revision is not None:
        status["revision"] = revision
    return status, due


def _differs(current: Mapping[str, Any], wanted: Mapping[str, Any]) -> bool:
    for key, value in wanted.items():
        if key == "conditions":
            mine = {(c["type"], c["status"], c["reason"]) for c in value}
            theirs = {
                (c.get("type"), c.get("status"), c.get("reason")) for c in current.get(key) or []
            }
            if mine != theirs:
                return True
        elif current.get(key) != value:
            return True
    return bool(current.get("failedIssuanceAttempts") or current.get("lastFailureTime"))


async def _record_ready(
    deps: Deps,
    cert: _Cert,
    spec: api.CertificateSpec,
    leaf: x509.Certificate,
    notes: Mapping[str, str],
) -> None:
    revision_text = notes.get(labels.REVISION, "")
    revision = int(revision_text) if revision_text.isdigit() else None
    status, due = _status_for(deps, cert, spec, leaf, revision)
    if _differs(cert.status, status):
        await objects.patch_status(
            deps.kube,
            paths.CERTIFICATES,
            cert.namespace,
            cert.name,
            {**status, "failedIssuanceAttempts": None, "lastFailureTime": None},
        )
    issuer_name, issuer_kind = spec.issuer_ref.name, spec.issuer_ref.effective_kind.value
    ready = conditions.get(status["conditions"], ConditionType.READY) or {}
    observe.certificate_ready(
        cert.namespace, cert.name, issuer_name, issuer_kind, str(ready.get("status", "Unknown"))
    )
    observe.certificate_times(
        cert.namespace,
        cert.name,
        issuer_name,
        issuer_kind,
        leaf.not_valid_before_utc,
        leaf.not_valid_after_utc,
        due,
    )
    deps.scheduler.schedule(cert.key, due)


async def _record_failure(
    deps: Deps,
    cert: _Cert,
    spec: api.CertificateSpec | None,
    reason: str,
    message: str,
    usable: bool,
    *,
    count: bool = True,
) -> None:
    """Status after a failed attempt: Issuing=False with the reason; Ready=False unless the
    Secret still holds a matching, unexpired certificate (a failed renewal is not an outage)."""
    now = deps.clock()
    current = cert.status.get("conditions") or []
    updated = conditions.put(
        current, ConditionType.ISSUING, "False", reason, message, now, cert.generation
    )
    if not usable:
        updated = conditions.put(
            updated, ConditionType.READY, "False", reason, message, now, cert.generation
        )
    status: dict[str, Any] = {"conditions": updated, "lastFailureTime": format_time(now)}
    if count:
        status["failedIssuanceAttempts"] = int(cert.status.get("failedIssuanceAttempts") or 0) + 1
    try:
        await objects.patch_status(deps.kube, paths.CERTIFICATES, cert.namespace, cert.name, status)
    except ApiError as exc:
        log.warning("could not record the failure of %s/%s: %s", cert.namespace, cert.name, exc)
    if spec is not None:
        ready = conditions.get(updated, ConditionType.READY)
        observe.certificate_ready(
            cert.namespace,
            cert.name,
            spec.issuer_ref.name,
            spec.issuer_ref.effective_kind.value,
            str((ready or {}).get("status", "Unknown")),
        )


def forget_certificate(deps: Deps, namespace: str, name: str) -> None:
    """A Certificate is gone: drop its renewal and its series. Its Secret stays (as with
    cert-manager's default): workloads that mount it keep running; delete it to revoke use."""
    deps.scheduler.cancel((namespace, name))
    observe.certificate_forgotten(namespace, name)


async def trigger(deps: Deps, key: tuple[str, str], annotation: str, value: str) -> None:
    """Make kopf's update handler run for a Certificate by setting one of padlock's
    trigger annotations (renewal due, Secret changed)."""
    await objects.patch_annotations(
        deps.kube, paths.CERTIFICATES, key[0], key[1], {annotation: value}
    )
