"""The certificate controller against kmock and an in-memory CA: issue, re-issue, renew,
fail and recover, without a second certificate per revision."""

from __future__ import annotations

import base64
import datetime
from typing import Any

import kopf
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from padlock.api import labels
from padlock.api.certificate import CertificateSpec
from padlock.controllers import assessment, crypto, issuers, issuing
from padlock.kube import certificates, paths, secrets

from .conftest import NAMESPACE, Env, certificate_body, issuer_body


async def _issuer(env: Env, **spec: Any) -> None:
    body = await env.create(paths.ISSUERS, issuer_body(**spec))
    await issuers.handle_issuer(env.deps, "Issuer", body)


async def _reconcile(env: Env, name: str = "web") -> dict[str, Any]:
    body = await env.get(paths.CERTIFICATES, name)
    await issuing.handle_certificate(env.deps, body)
    return await env.get(paths.CERTIFICATES, name)


async def _secret(env: Env, name: str = "web-tls") -> dict[str, Any]:
    return await env.get(paths.SECRETS, name)


def _data(secret: dict[str, Any], key: str) -> bytes:
    return base64.b64decode(secret["data"][key])


def _ready(cert: dict[str, Any]) -> dict[str, Any]:
    return next(c for c in cert["status"]["conditions"] if c["type"] == "Ready")


def _leaf(secret: dict[str, Any]) -> x509.Certificate:
    return crypto.load_leaf(_data(secret, "tls.crt"))


def _secret_writes(env: Env) -> int:
    return sum(
        1
        for request in env.kmock
        if request.method in ("POST", "PATCH")
        and "/secrets" in str(request.url)
        and "next-key" not in str(request.url)
        and (request.method == "PATCH" or (request.data or {}).get("type") == "kubernetes.io/tls")
    )


async def test_create_writes_a_tls_secret_whose_key_matches_its_chain(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    cert = await _reconcile(env)
    secret = await _secret(env)
    assert secret["type"] == "kubernetes.io/tls"
    leaf = _leaf(secret)
    key = crypto.load_key(_data(secret, "tls.key"))
    assert crypto.key_matches_cert(key, leaf)
    chain = x509.load_pem_x509_certificates(_data(secret, "tls.crt"))
    assert [c.subject for c in chain] == [leaf.subject, env.ca.intermediate.subject]
    leaf.verify_directly_issued_by(env.ca.intermediate)
    assert x509.load_pem_x509_certificate(_data(secret, "ca.crt")) == env.ca.root
    sans = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert sorted(sans.get_values_for_type(x509.DNSName)) == ["web.apps.svc", "web.example.test"]
    meta = secret["metadata"]
    assert meta["labels"][labels.MANAGED_BY] == "padlock"
    assert meta["labels"][labels.CERTIFICATE_NAME] == "web"
    assert meta["annotations"][labels.REVISION] == "1"
    status = cert["status"]
    assert _ready(cert)["status"] == "True"
    assert status["revision"] == 1
    assert status["serialNumber"] == f"{leaf.serial_number:x}".rjust(
        len(status["serialNumber"]), "0"
    )
    assert status["notAfter"] == leaf.not_valid_after_utc.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert env.ca.sign_calls[0]["key"] == f"{NAMESPACE}/web/1/{cert['metadata']['uid']}"
    assert env.ca.sign_calls[0]["lifetime"] == 720 * 3600
    # The pending-key Secret is gone once the TLS Secret holds the key.
    with pytest.raises(Exception, match="404"):
        await env.get(paths.SECRETS, secrets.next_key_name("web-tls"))
    reasons = [e["reason"] for e in env.kmock.objects.values() if e.get("kind") == "Event"]
    assert "Issued" in reasons


async def test_a_restart_neither_calls_the_ca_nor_rewrites_the_secret(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    await _reconcile(env)
    writes = _secret_writes(env)
    await _reconcile(env)
    await _reconcile(env)
    assert len(env.ca.sign_calls) == 1
    assert _secret_writes(env) == writes


async def test_a_lost_ca_answer_is_retried_into_the_same_certificate(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    env.ca.lose_next_answer = True  # the CA commits, then the answer times out
    with pytest.raises(kopf.TemporaryError):
        await _reconcile(env)
    cert = await _reconcile(env)
    assert len(env.ca.issued) == 1, "one certificate for revision 1, not two"
    keys = {call["key"] for call in env.ca.sign_calls}
    assert len(env.ca.sign_calls) == 2 and len(keys) == 1
    secret = await _secret(env)
    assert crypto.key_matches_cert(crypto.load_key(_data(secret, "tls.key")), _leaf(secret))
    assert cert["status"]["revision"] == 1


async def test_a_secret_written_before_a_crash_is_adopted_without_the_ca(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    await _reconcile(env)
    # As if the status patch after the Secret write had been lost.
    await env.kube.merge_patch(
        paths.CERTIFICATES.path(NAMESPACE, "web", "status"),
        {"status": {"revision": None, "conditions": None}},
    )
    cert = await _reconcile(env)
    assert len(env.ca.sign_calls) == 1
    assert cert["status"]["revision"] == 1
    assert _ready(cert)["status"] == "True"


async def test_a_deleted_secret_is_reissued_as_the_next_revision(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    await _reconcile(env)
    await env.kube.delete(paths.SECRETS.path(NAMESPACE, "web-tls"))
    cert = await _reconcile(env)
    assert len(env.ca.sign_calls) == 2
    assert cert["status"]["revision"] == 2
    assert (await _secret(env))["metadata"]["annotations"][labels.REVISION] == "2"


async def test_a_tampered_key_is_reissued(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    await _reconcile(env)
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    await env.kube.merge_patch(
        paths.SECRETS.path(NAMESPACE, "web-tls"),
        {"data": {"tls.key": base64.b64encode(other).decode()}},
    )
    verdict = assessment.assess(
        await _secret(env),
        CertificateSpec.from_dict(certificate_body()["spec"]),
        "x",
        "uid",
        None,
        env.clock(),
    )
    assert verdict.message == "tls.key does not match tls.crt"
    cert = await _reconcile(env)
    secret = await _secret(env)
    assert crypto.key_matches_cert(crypto.load_key(_data(secret, "tls.key")), _leaf(secret))
    assert cert["status"]["revision"] == 2


async def test_a_name_change_reissues_but_a_secret_template_change_does_not(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    await _reconcile(env)
    path = paths.CERTIFICATES.path(NAMESPACE, "web")
    await env.kube.merge_patch(path, {"spec": {"secretTemplate": {"labels": {"team": "a"}}}})
    await _reconcile(env)
    assert len(env.ca.sign_calls) == 1
    await env.kube.merge_patch(path, {"spec": {"dnsNames": ["new.example.test"]}})
    cert = await _reconcile(env)
    assert len(env.ca.sign_calls) == 2
    sans = _leaf(await _secret(env)).extensions.get_extension_for_class(x509.SubjectAlternativeName)
    assert sans.value.get_values_for_type(x509.DNSName) == ["new.example.test"]
    assert cert["status"]["revision"] == 2


async def test_renewal_time_is_before_expiry_by_a_third_plus_jitter(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    cert = await _reconcile(env)
    parse = datetime.datetime.fromisoformat
    not_after = parse(cert["status"]["notAfter"])
    renewal = parse(cert["status"]["renewalTime"])
    window = datetime.timedelta(hours=720) / 3
    assert not_after - window * 1.1 <= renewal <= not_after - window
    assert env.deps.scheduler.when((NAMESPACE, "web")) == renewal


@pytest.mark.parametrize(("policy", "same_key"), [("Never", True), ("Always", False)])
async def test_renewal_keeps_the_key_only_with_rotation_policy_never(
    env: Env, policy: str, same_key: bool
) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body(privateKey={"rotationPolicy": policy}))
    await _reconcile(env)
    first = await _secret(env)
    env.clock.advance(datetime.timedelta(hours=700))  # past the renewal time
    cert = await _reconcile(env)
    second = await _secret(env)
    assert cert["status"]["revision"] == 2
    assert _leaf(first).serial_number != _leaf(second).serial_number
    assert (_data(first, "tls.key") == _data(second, "tls.key")) is same_key
    reasons = [e["reason"] for e in env.kmock.objects.values() if e.get("kind") == "Event"]
    assert "Renewed" in reasons


async def test_ca_down_sets_not_ready_with_growing_backoff_then_recovers(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    env.ca.down = True
    with pytest.raises(kopf.TemporaryError) as first:
        await _reconcile(env)
    with pytest.raises(kopf.TemporaryError) as second:
        await _reconcile(env)
    assert second.value.delay is not None and first.value.delay is not None
    assert second.value.delay > first.value.delay
    cert = await env.get(paths.CERTIFICATES, "web")
    assert cert["status"]["failedIssuanceAttempts"] == 2
    assert _ready(cert)["status"] == "False"
    assert "cannot reach the CA" in _ready(cert)["message"]
    env.ca.down = False
    cert = await _reconcile(env)
    assert _ready(cert)["status"] == "True"
    assert "failedIssuanceAttempts" not in cert["status"]


async def test_a_policy_refusal_is_permanent_and_shows_the_cas_message(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    env.ca.refusal = "lifetime 720h exceeds the issuer maximum 24h"
    with pytest.raises(kopf.PermanentError, match="exceeds the issuer maximum"):
        await _reconcile(env)
    ready = _ready(await env.get(paths.CERTIFICATES, "web"))
    assert ready["status"] == "False"
    assert ready["reason"] == "PolicyViolation"
    assert "lifetime 720h exceeds the issuer maximum 24h" in ready["message"]


async def test_a_self_signed_issuer_signs_with_the_certificates_own_key(env: Env) -> None:
    await _issuer(env, selfSigned={})
    await env.create(paths.CERTIFICATES, certificate_body())
    cert = await _reconcile(env)
    secret = await _secret(env)
    leaf = _leaf(secret)
    leaf.verify_directly_issued_by(leaf)
    assert _data(secret, "ca.crt") == _data(secret, "tls.crt")
    assert env.ca.sign_calls == []
    assert _ready(cert)["status"] == "True"


async def test_an_acme_issuer_is_not_ready_and_its_certificates_fail_for_good(env: Env) -> None:
    await _issuer(
        env, acme={"server": "https://acme.example.test/dir", "privateKeySecretRef": {"name": "a"}}
    )
    issuer = await env.get(paths.ISSUERS, "ca")
    ready = issuer["status"]["conditions"][0]
    assert (ready["status"], ready["message"]) == ("False", "ACME is not supported yet")
    await env.create(paths.CERTIFICATES, certificate_body())
    with pytest.raises(kopf.PermanentError, match="ACME is not supported yet"):
        await _reconcile(env)


async def test_a_missing_issuer_is_retried(env: Env) -> None:
    await env.create(paths.CERTIFICATES, certificate_body())
    with pytest.raises(kopf.TemporaryError, match="Issuer ca in namespace apps does not exist"):
        await _reconcile(env)
    assert _ready(await env.get(paths.CERTIFICATES, "web"))["reason"] == "IssuerNotFound"


async def test_a_renewal_request_reissues_exactly_once(env: Env) -> None:
    await _issuer(env)
    await env.create(paths.CERTIFICATES, certificate_body())
    await _reconcile(env)
    assert await certificates.request_renewal(env.kube, NAMESPACE, "web", env.clock())
    cert = await _reconcile(env)
    await _reconcile(env)
    assert len(env.ca.sign_calls) == 2
    assert cert["status"]["revision"] == 2


async def test_a_longer_duration_than_the_issuer_allows_is_refused_before_the_ca(
    env: Env,
) -> None:
    await _issuer(env, ca={"maxDuration": "24h"})
    await env.create(paths.CERTIFICATES, certificate_body())
    with pytest.raises(kopf.PermanentError, match="exceeds the maxDuration of Issuer ca"):
        await _reconcile(env)
    assert env.ca.sign_calls == []
