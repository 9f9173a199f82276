"""Request handlers of the CA API: decode and check the JSON, call the CA, encode the answer.

Called through the URL table in `routes`. Handlers stay thin: the pipeline
(`padlock.ca.pipeline`) and the revoker (`padlock.ca.revocation`) do the work. A refused
request (bad input, policy) leaves exactly one trace: a `sign.refused` / `revoke.refused`
audit event. Rate-limited requests are only counted (`padlock_ca_requests_total`), so a flood
cannot grow the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST

from padlock import metrics
from padlock.ca import errors, pipeline, revocation
from padlock.pki import serials
from padlock.services.ca_http import state
from padlock.services.ca_http.errors import RateLimited

MAX_BODY = 64 * 1024
"""Largest accepted request body: a CSR with a few hundred SANs fits easily."""

MAX_TEXT_FIELD = 1024
"""Longest idempotency key or requester: the operator's `namespace/name/revision/uid` is at
most 63 + 253 + 20 + 36 characters plus separators."""

_SIGN_FIELDS: Mapping[str, type] = {
    "csr": str,
    "profile": str,
    "lifetime_seconds": int,
    "idempotency_key": str,
    "requester": str,
}
_REVOKE_FIELDS: Mapping[str, type] = {"serial": str, "reason": str, "requester": str}


async def _read_json(request: web.Request, fields: Mapping[str, type]) -> dict[str, Any]:
    try:
        raw = await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise errors.BadRequest(
            f"request body is larger than {MAX_BODY} bytes", code="body-too-large"
        ) from None
    try:
        body = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise errors.BadRequest(f"request body is not JSON: {exc}", code="malformed-json") from None
    if not isinstance(body, dict):
        raise errors.BadRequest("request body must be a JSON object", code="malformed-json")
    unknown = sorted(set(body) - set(fields))
    if unknown:
        raise errors.BadRequest(
            f"unknown field {unknown[0]!r} (known: {', '.join(fields)})", code="unknown-field"
        )
    for name, kind in fields.items():
        if name not in body:
            raise errors.BadRequest(f"field {name!r} is missing", code="missing-field")
        value = body[name]
        if isinstance(value, bool) or not isinstance(value, kind):
            raise errors.BadRequest(
                f"field {name!r} must be a {'string' if kind is str else 'integer'}, "
                f"got {type(value).__name__}",
                code="invalid-field",
            )
        if kind is str and not value:
            raise errors.BadRequest(f"field {name!r} must not be empty", code="invalid-field")
    for name in ("idempotency_key", "requester"):
        if name in body and len(body[name]) > MAX_TEXT_FIELD:
            raise errors.BadRequest(
                f"field {name!r} is longer than {MAX_TEXT_FIELD} characters",
                code="invalid-field",
            )
    return body


def _requester_hint(body: dict[str, Any] | None) -> str:
    value = (body or {}).get("requester")
    return value[:MAX_TEXT_FIELD] if isinstance(value, str) and value else "-"


async def sign(request: web.Request) -> web.Response:
    """`POST /v1/sign`: issue a certificate for a CSR (see padlock.ca.client for the body)."""
    ca = request.app[state.CA]
    body: dict[str, Any] | None = None
    try:
        body = await _read_json(request, _SIGN_FIELDS)
        sign_request = pipeline.SignRequest(
            csr_pem=body["csr"],
            profile=body["profile"],
            lifetime_seconds=body["lifetime_seconds"],
            idempotency_key=body["idempotency_key"],
            requester=body["requester"],
        )
        wait = ca.limiter.acquire(sign_request.requester)
        if wait > 0:
            raise RateLimited(sign_request.requester, wait)
        issued = await ca.pipeline.issue(sign_request)
    except errors.BadRequest as exc:
        await ca.pipeline.audit_refusal(_requester_hint(body), exc.code, exc.message)
        raise
    metrics.CA_REQUESTS.labels("sign", "ok").inc()
    return web.json_response(
        {
            "certificate": issued.certificate_pem,
            "chain": ca.authority.chain_pem,
            "serial": serials.serial_hex(issued.serial),
        }
    )


async def revoke(request: web.Request) -> web.Response:
    """`POST /v1/revoke`: revoke one certificate of this CA for an RFC 5280 reason."""
    ca = request.app[state.CA]
    body: dict[str, Any] | None = None
    try:
        body = await _read_json(request, _REVOKE_FIELDS)
        serial = revocation.parse_serial(body["serial"])
        reason = revocation.parse_reason(body["reason"])
    except errors.BadRequest as exc:
        await ca.pipeline.audit_refusal(_requester_hint(body), exc.code, exc.message)
        raise
    revoked = await ca.revoker.revoke(serial, reason, body["requester"])
    metrics.CA_REQUESTS.labels("revoke", "ok").inc()
    return web.json_response(
        {
            "serial": serials.serial_hex(revoked.serial),
            "reason": revoked.reason.value,
            "revoked_at": revoked.revoked_at.isoformat(),
        }
    )


_REVOKE_ALL_FIELDS: Mapping[str, type] = {"reason": str, "requester": str}


async def revoke_all(request: web.Request) -> web.Response:
    """`POST /v1/revoke-all`: revoke every certificate of this CA (the intermediate-compromise
    drill); answers every revocation this requester recorded, so a retry gets the same list."""
    ca = request.app[state.CA]
    body: dict[str, Any] | None = None
    try:
        body = await _read_json(request, _REVOKE_ALL_FIELDS)
        reason = revocation.parse_reason(body["reason"])
    except errors.BadRequest as exc:
        await ca.pipeline.audit_refusal(_requester_hint(body), exc.code, exc.message)
        raise
    revoked = await ca.revoker.revoke_all(reason, body["requester"])
    metrics.CA_REQUESTS.labels("revoke-all", "ok").inc()
    return web.json_response(
        {
            "revoked": [
                {
                    "serial": serials.serial_hex(r.serial),
                    "reason": r.reason.value,
                    "revoked_at": r.revoked_at.isoformat(),
                }
                for r in revoked
            ]
        }
    )


async def ca_info(request: web.Request) -> web.Response:
    """`GET /v1/ca`: the issuing chain, the root, and where revocation status is published."""
    ca = request.app[state.CA]
    authority = ca.authority
    return web.json_response(
        {
            "name": authority.name,
            "chain": authority.chain_pem,
            "root": authority.root_pem,
            "ocsp_url": authority.urls.ocsp,
            "crl_url": authority.crl_url(),
        }
    )


async def healthz(request: web.Request) -> web.Response:
    """`GET /healthz`: 200 while the issuing key is usable, 503 while the HSM is away. With
    several CA workers, 200 only while every live worker has its HSM session (the combined
    `padlock_ca_hsm_up`), whichever worker the probe reached."""
    key = request.app[state.CA].key
    if not key.healthy:
        raise errors.HsmUnavailable(f"the HSM is unavailable: {key.last_error}")
    if metrics.combined_value(metrics.CA_HSM_UP_NAME) == 0.0:
        raise errors.HsmUnavailable("the HSM is unavailable in another CA worker process")
    return web.json_response({"status": "ok"})


async def metrics_text(request: web.Request) -> web.Response:
    """`GET /metrics`: the Prometheus text exposition of `padlock.metrics.REGISTRY` (totals
    over every worker process when the CA runs several, `metrics.exposition`)."""
    resp = web.Response(body=metrics.exposition())
    resp.headers["Content-Type"] = CONTENT_TYPE_LATEST
    return resp
