"""The revocation controller against kmock and an in-memory CA that also revokes: target
resolution (certificateRef, serial + issuer, AllFromIssuer), status and Events, failures that
are permanent or retried, repeats that change nothing, and re-issue with a new key."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import kopf
import pytest
from cryptography.hazmat.primitives import serialization

from padlock import metrics
from padlock.api import labels
from padlock.ca.client import CARefused, CAUnavailable, RevokeResult
from padlock.controllers import crypto, issuers, issuing, reissue, revocations
from padlock.controllers import revocation_targets as targets
from padlock.kube import certificates, paths, secrets
from padlock.kube import revocations as kube_revocations
from padlock.kube.revocations import REVOCATION_REQUESTS
from padlock.pki import serials

from .conftest import NAMESPACE, Clock, Env, InMemoryCA, certificate_body, issuer_body


class RevokingCA(InMemoryCA):
    """InMemoryCA plus the CA's revocation contract: a second revocation of a serial answers
    the first record; a serial it never issued is refused (404 unknown-serial)."""

    def __init__(self, clock: Clock) -> None:
        super().__init__(clock)
        self.revoked: dict[int, RevokeResult] = {}
        self.revoke_calls: list[tuple[str, str, str]] = []

    def _serials(self) -> list[int]:
        return sorted(int(result.serial, 16) for _spki, result in self.issued.values())

    async def revoke(self, serial: str, reason: str, requester: str) -> RevokeResult:
        self.revoke_calls.append((serial, reason, requester))
        if self.down:
            raise CAUnavailable("cannot reach the CA at /run/padlock/ca.sock: refused")
        value = int(serial, 16)
        if value not in self._serials():
            raise CARefused(
                "unknown-serial", f"this CA has no certificate with serial {serial.upper()}", 404
            )
        return self.revoked.setdefault(
            value,
            RevokeResult(serials.serial_hex(value), reason, self.clock().isoformat()),
        )

    async def revoke_all(self, reason: str, requester: str) -> tuple[RevokeResult, ...]:
        self.revoke_calls.append(("*", reason, requester))
        if self.down:
            raise CAUnavailable("cannot reach the CA at /run/padlock/ca.sock: refused")
        for value in self._serials():
            self.revoked.setdefault(
                value, RevokeResult(serials.serial_hex(value), reason, self.clock().isoformat())
            )
        return tuple(self.revoked[v] for v in sorted(self.revoked))


@pytest.fixture
def ca(clock: Clock) -> RevokingCA:
    return RevokingCA(clock)


def _rca(env: Env) -> RevokingCA:
    assert isinstance(env.ca, RevokingCA)
    return env.ca


async def _issued(env: Env, name: str = "web", **spec: Any) -> dict[str, Any]:
    """A Certificate issued by the `ca` Issuer; its body after the first issuance."""
    if not env.deps.issuers:
        body = await env.create(paths.ISSUERS, issuer_body())
        await issuers.handle_issuer(env.deps, "Issuer", body)
    await env.create(paths.CERTIFICATES, certificate_body(name, **spec))
    await issuing.handle_certificate(env.deps, await env.get(paths.CERTIFICATES, name))
    return await env.get(paths.CERTIFICATES, name)


async def _request(env: Env, name: str = "revoke-web", **spec: Any) -> dict[str, Any]:
    body = {"kind": "RevocationRequest", "metadata": {"name": name}, "spec": spec}
    return await env.create(REVOCATION_REQUESTS, body)


async def _handle(env: Env, name: str = "revoke-web", retry: int = 0) -> dict[str, Any]:
    """One pass over the request as stored now; the request afterwards."""
    body = await env.get(REVOCATION_REQUESTS, name)
    await revocations.handle_revocation_request(env.deps, body, retry)
    return await env.get(REVOCATION_REQUESTS, name)


def _complete(request: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in request["status"]["conditions"] if c["type"] == "Complete")


def _events(env: Env, kind: str, name: str) -> list[dict[str, Any]]:
    return [
        e
        for e in env.kmock.objects.values()
        if e.get("kind") == "Event"
        and e["involvedObject"]["kind"] == kind
        and e["involvedObject"]["name"] == name
    ]


def _status_patches(env: Env) -> int:
    return sum(
        1
        for r in env.kmock
        if r.method == "PATCH" and "/revocationrequests/" in str(r.url) and "/status" in str(r.url)
    )


def _public_key(secret: dict[str, Any]) -> bytes:
    key = crypto.load_key(base64.b64decode(secret["data"]["tls.key"]))
    return key.public_key().public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


async def test_certificate_ref_revokes_the_serial_the_secret_holds_and_completes(
    env: Env,
) -> None:
    cert = await _issued(env)
    serial = cert["status"]["serialNumber"]
    await _request(env, certificateRef={"name": "web"}, reason="keyCompromise")
    request = await _handle(env)
    assert _rca(env).revoke_calls == [(serial, "keyCompromise", f"{NAMESPACE}/revoke-web")]
    status = request["status"]
    assert status["revokedSerials"] == [serial]
    assert status["revokedAt"] == env.clock().strftime("%Y-%m-%dT%H:%M:%SZ")
    assert "crlNumber" not in status  # the CA's revoke answer does not carry one
    complete = _complete(request)
    assert (complete["status"], complete["reason"]) == ("True", "Revoked")
    assert [e["reason"] for e in _events(env, "RevocationRequest", "revoke-web")] == ["Revoked"]
    cert_events = _events(env, "Certificate", "web")
    assert any(e["reason"] == "Revoked" and serial in e["message"] for e in cert_events)


async def test_a_repeated_pass_calls_nothing_and_patches_nothing(env: Env) -> None:
    await _issued(env)
    await _request(env, certificateRef={"name": "web"}, reason="keyCompromise")
    first = await _handle(env)
    calls, patches = len(_rca(env).revoke_calls), _status_patches(env)
    again = await _handle(env)  # an operator restart (resume) or a kopf re-run
    assert len(_rca(env).revoke_calls) == calls
    assert _status_patches(env) == patches
    assert again["status"] == first["status"]


async def test_a_pass_interrupted_after_the_ca_answered_does_not_resolve_again(
    env: Env,
) -> None:
    cert = await _issued(env)
    await _request(env, certificateRef={"name": "web"}, reissue=True)
    await kube_revocations.patch_status(
        env.kube,
        NAMESPACE,
        "revoke-web",
        {"revokedSerials": [cert["status"]["serialNumber"]], "revokedAt": "2026-06-01T11:00:00Z"},
    )
    request = await _handle(env)
    assert _rca(env).revoke_calls == []
    assert _complete(request)["status"] == "True"
    assert request["status"]["revokedAt"] == "2026-06-01T11:00:00Z"


async def test_an_unknown_serial_fails_for_good_with_the_cas_message(env: Env) -> None:
    await _issued(env)
    await _request(env, serialNumber="7f:" * 18 + "7f", issuerRef={"name": "ca"})
    with pytest.raises(kopf.PermanentError):
        await _handle(env)
    request = await env.get(REVOCATION_REQUESTS, "revoke-web")
    complete = _complete(request)
    assert (complete["status"], complete["reason"]) == ("False", "UnknownSerial")
    assert "this CA has no certificate with serial 7F7F" in complete["message"]
    assert "revokedSerials" not in request["status"]
    events = _events(env, "RevocationRequest", "revoke-web")
    assert [e["reason"] for e in events] == ["RevocationFailed"]


async def test_a_serial_with_its_issuer_is_revoked_and_its_certificate_told(env: Env) -> None:
    cert = await _issued(env)
    serial = cert["status"]["serialNumber"]
    spelled = ":".join(serial[i : i + 2] for i in range(0, len(serial), 2)).upper()
    await _request(env, serialNumber=spelled, issuerRef={"name": "ca"}, reason="superseded")
    request = await _handle(env)
    assert request["status"]["revokedSerials"] == [serial]
    assert _rca(env).revoke_calls[0][:2] == (serial, "superseded")
    assert any(e["reason"] == "Revoked" for e in _events(env, "Certificate", "web"))


async def test_a_self_signed_certificate_is_not_revocable_and_the_ca_is_not_called(
    env: Env,
) -> None:
    body = await env.create(paths.ISSUERS, issuer_body("self", selfSigned={}))
    await issuers.handle_issuer(env.deps, "Issuer", body)
    await env.create(paths.CERTIFICATES, certificate_body("web", issuerRef={"name": "self"}))
    await issuing.handle_certificate(env.deps, await env.get(paths.CERTIFICATES, "web"))
    await _request(env, certificateRef={"name": "web"})
    with pytest.raises(kopf.PermanentError, match="selfSigned issuer"):
        await _handle(env)
    assert _complete(await env.get(REVOCATION_REQUESTS, "revoke-web"))["reason"] == "NotRevocable"
    assert _rca(env).revoke_calls == []


async def test_a_missing_certificate_fails_for_good(env: Env) -> None:
    await _request(env, certificateRef={"name": "nothing"})
    with pytest.raises(kopf.PermanentError, match="Certificate nothing does not exist"):
        await _handle(env)
    assert _complete(await env.get(REVOCATION_REQUESTS, "revoke-web"))["reason"] == (
        "TargetNotFound"
    )


async def test_a_certificate_mid_issuance_is_retried_not_guessed(env: Env) -> None:
    await _issued(env)
    # The status names a serial the Secret no longer holds (a renewal between the two writes).
    await env.kube.merge_patch(
        paths.CERTIFICATES.path(NAMESPACE, "web", "status"), {"status": {"serialNumber": "0abc"}}
    )
    await _request(env, certificateRef={"name": "web"})
    with pytest.raises(kopf.TemporaryError):
        await _handle(env)
    complete = _complete(await env.get(REVOCATION_REQUESTS, "revoke-web"))
    assert (complete["status"], complete["reason"]) == ("False", "Pending")
    assert "an issuance in flight" in complete["message"]
    assert _rca(env).revoke_calls == []


async def test_ca_down_is_retried_with_backoff_then_completes(env: Env) -> None:
    await _issued(env)
    await _request(env, certificateRef={"name": "web"})
    _rca(env).down = True
    delays = []
    for retry in range(3):
        with pytest.raises(kopf.TemporaryError) as failure:
            await _handle(env, retry=retry)
        delays.append(failure.value.delay)
    assert delays == [5.0, 10.0, 20.0]
    complete = _complete(await env.get(REVOCATION_REQUESTS, "revoke-web"))
    assert (complete["status"], complete["reason"]) == ("False", "CAUnreachable")
    _rca(env).down = False
    assert _complete(await _handle(env, retry=3))["status"] == "True"


async def test_all_from_issuer_revokes_every_certificate_and_tells_each(env: Env) -> None:
    web = await _issued(env, "web")
    api = await _issued(env, "api")
    await _request(
        env, "drill", issuerRef={"name": "ca"}, scope="AllFromIssuer", reason="cACompromise"
    )
    request = await _handle(env, "drill")
    assert _rca(env).revoke_calls == [("*", "cACompromise", f"{NAMESPACE}/drill")]
    assert sorted(request["status"]["revokedSerials"]) == sorted(
        [web["status"]["serialNumber"], api["status"]["serialNumber"]]
    )
    for name in ("web", "api"):
        assert any(e["reason"] == "Revoked" for e in _events(env, "Certificate", name))


@pytest.mark.parametrize("policy", ["Never", "Always"])
async def test_reissue_gives_a_new_serial_and_a_new_key_whatever_the_rotation_policy(
    env: Env, policy: str
) -> None:
    await _issued(env, privateKey={"rotationPolicy": policy})
    before = await env.get(paths.SECRETS, "web-tls")
    await _request(env, certificateRef={"name": "web"}, reason="keyCompromise", reissue=True)
    request = await _handle(env)
    assert "re-issue requested" in _complete(request)["message"]
    cert = await env.get(paths.CERTIFICATES, "web")
    marker = cert["metadata"]["annotations"][certificates.RENEW_REQUESTED]
    assert marker == reissue.marker(NAMESPACE, "revoke-web", request["metadata"]["uid"])
    # The certificate controller answers the renew request as it answers `padlock renew`.
    await issuing.handle_certificate(env.deps, cert)
    after = await env.get(paths.SECRETS, "web-tls")
    assert after["metadata"]["annotations"][labels.REVISION] == "2"
    assert crypto.load_leaf(base64.b64decode(after["data"]["tls.crt"])).serial_number != (
        crypto.load_leaf(base64.b64decode(before["data"]["tls.crt"])).serial_number
    )
    assert _public_key(after) != _public_key(before)
    # A pass interrupted before Complete runs again: it neither re-issues nor seeds a key.
    pending = {"type": "Complete", "status": "False", "reason": "Pending", "message": "-"}
    await kube_revocations.patch_status(
        env.kube, NAMESPACE, "revoke-web", {"conditions": [pending]}
    )
    assert _complete(await _handle(env))["status"] == "True"
    cert = await env.get(paths.CERTIFICATES, "web")
    await issuing.handle_certificate(env.deps, cert)
    final = await env.get(paths.SECRETS, "web-tls")
    assert final["metadata"]["annotations"][labels.REVISION] == "2"


async def test_without_reissue_the_certificate_is_left_as_it_is(env: Env) -> None:
    await _issued(env)
    await _request(env, certificateRef={"name": "web"})
    await _handle(env)
    cert = await env.get(paths.CERTIFICATES, "web")
    assert certificates.RENEW_REQUESTED not in (cert["metadata"].get("annotations") or {})
    with pytest.raises(Exception, match="404"):
        await env.get(paths.SECRETS, secrets.next_key_name("web-tls"))


@pytest.mark.parametrize(
    ("text", "expected"),
    [("0A:1B", "0a1b"), ("a1b", "0a1b"), ("00ff", "ff"), ("7F" * 20, "7f" * 20)],
)
def test_serials_are_normalized_to_lowercase_even_length_hex(text: str, expected: str) -> None:
    assert targets.normalize_serial(text) == expected


def test_a_zero_serial_is_refused() -> None:
    with pytest.raises(ValueError):
        targets.normalize_serial("00")


def test_revoked_at_is_the_earliest_revocation_time() -> None:
    times = ["2026-06-01T12:00:05+00:00", "2026-06-01T12:00:01+00:00"]
    results = [RevokeResult("0A", "keyCompromise", t) for t in times]
    assert revocations._revoked_at(results) == "2026-06-01T12:00:01Z"
    assert revocations._revoked_at([]) is None
    assert datetime.datetime.fromisoformat(times[0]).tzinfo is not None


def _ready(cert: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in cert["status"]["conditions"] if c["type"] == "Ready")


def _ready_gauge(status: str) -> float | None:
    return metrics.REGISTRY.get_sample_value(
        "padlock_certificate_ready_status",
        {
            "name": "web",
            "namespace": NAMESPACE,
            "issuer_name": "ca",
            "issuer_kind": "Issuer",
            "condition": status,
        },
    )


@pytest.mark.parametrize("renewal", ["padlock renew", "renewal time"])
async def test_a_revoked_certificate_is_not_ready_until_a_new_one_is_issued(
    env: Env, renewal: str
) -> None:
    cert = await _issued(env)
    serial = cert["status"]["serialNumber"]
    assert _ready_gauge("True") == 1.0
    await _request(env, certificateRef={"name": "web"}, reason="keyCompromise")
    await _handle(env)
    cert = await env.get(paths.CERTIFICATES, "web")
    ready = _ready(cert)
    assert (ready["status"], ready["reason"]) == ("False", "Revoked")
    assert serial in ready["message"]
    assert "keyCompromise" in ready["message"]
    assert f"RevocationRequest {NAMESPACE}/revoke-web" in ready["message"]
    assert (_ready_gauge("True"), _ready_gauge("False")) == (0.0, 1.0)
    # The certificate controller's next pass (a restart, a Secret event) keeps that state.
    await issuing.handle_certificate(env.deps, cert)
    cert = await env.get(paths.CERTIFICATES, "web")
    assert (_ready(cert)["status"], _ready(cert)["reason"]) == ("False", "Revoked")
    assert cert["status"]["serialNumber"] == serial
    assert (_ready_gauge("True"), _ready_gauge("False")) == (0.0, 1.0)
    # A new certificate makes it Ready again.
    if renewal == "padlock renew":
        await env.kube.merge_patch(
            paths.CERTIFICATES.path(NAMESPACE, "web"),
            {"metadata": {"annotations": {certificates.RENEW_REQUESTED: "2026-06-01T12:30:00Z"}}},
        )
    else:
        due = datetime.datetime.fromisoformat(cert["status"]["renewalTime"])
        env.clock.advance(due - env.clock() + datetime.timedelta(seconds=1))
    await issuing.handle_certificate(env.deps, await env.get(paths.CERTIFICATES, "web"))
    cert = await env.get(paths.CERTIFICATES, "web")
    assert (_ready(cert)["status"], _ready(cert)["reason"]) == ("True", "Ready")
    assert cert["status"]["serialNumber"] != serial
    assert (_ready_gauge("True"), _ready_gauge("False")) == (1.0, 0.0)


async def test_with_reissue_the_certificate_is_not_marked_revoked(env: Env) -> None:
    await _issued(env)
    await _request(env, certificateRef={"name": "web"}, reissue=True)
    await _handle(env)
    cert = await env.get(paths.CERTIFICATES, "web")
    assert (_ready(cert)["status"], _ready(cert)["reason"]) == ("True", "Ready")
