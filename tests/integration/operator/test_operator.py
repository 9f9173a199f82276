"""`padlock operator` on the real local control plane with the real CA (SoftHSM): issue,
change, delete, tamper, renew, keep the key, survive the CA going away, roll workloads once.

Secret policy on Certificate deletion (documented in padlock.controllers.issuing): the Secret
is kept, as with cert-manager's default, so running workloads keep their certificate; its
series disappear from /metrics.
"""

from __future__ import annotations

import base64
import contextlib
import json
import sqlite3
import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from padlock.api import labels
from padlock.controllers import crypto
from tests.integration.operator.conftest import (
    PADLOCK,
    CAService,
    Kube,
    OperatorProcess,
    certificate_yaml,
    eventually,
    issuer_yaml,
)

pytestmark = [pytest.mark.controlplane, pytest.mark.softhsm, pytest.mark.slow]


def _issuer_ready(kube: Kube, name: str = "ca") -> dict[str, str] | None:
    issuer = kube.get("issuers.padlock.dev", name) or {}
    for condition in (issuer.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Ready":
            return dict(condition)
    return None


def _leaf(kube: Kube, secret: str) -> x509.Certificate:
    data = kube.secret_data(secret, "tls.crt")
    assert data is not None
    return crypto.load_leaf(data)


def _dns(cert: x509.Certificate) -> list[str]:
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return sorted(san.get_values_for_type(x509.DNSName))


def _gauge_line(operator: OperatorProcess, kube: Kube, name: str) -> str | None:
    for line in operator.metrics().splitlines():
        if (
            line.startswith("padlock_certificate_expiration_timestamp_seconds{")
            and f'name="{name}"' in line
            and f'namespace="{kube.namespace}"' in line
        ):
            return line
    return None


def test_issue_change_delete_tamper_and_delete_the_certificate(
    kube: Kube, operator: OperatorProcess, ca_service: CAService, tmp_path: Path
) -> None:
    kube.apply(issuer_yaml())
    ready = eventually(lambda: _issuer_ready(kube), 60, "Issuer Ready")
    assert ready["status"] == "True", ready
    kube.apply(certificate_yaml())
    status = kube.wait_revision("web", 1)

    # The Secret: leaf + chain, key, the CA's root; openssl verifies the chain.
    tls_crt = kube.secret_data("web-tls", "tls.crt")
    tls_key = kube.secret_data("web-tls", "tls.key")
    ca_crt = kube.secret_data("web-tls", "ca.crt")
    assert tls_crt and tls_key and ca_crt
    assert x509.load_pem_x509_certificate(ca_crt) == x509.load_pem_x509_certificate(
        ca_service.root_pem
    )
    chain = x509.load_pem_x509_certificates(tls_crt)
    assert len(chain) >= 2
    leaf_file, chain_file, ca_file = (
        tmp_path / "leaf.pem",
        tmp_path / "chain.pem",
        tmp_path / "ca.pem",
    )
    leaf_file.write_bytes(chain[0].public_bytes(serialization.Encoding.PEM))
    chain_file.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain[1:]))
    ca_file.write_bytes(ca_crt)
    verify = subprocess.run(
        [
            "openssl",
            "verify",
            "-CAfile",
            str(ca_file),
            "-untrusted",
            str(chain_file),
            str(leaf_file),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert crypto.key_matches_cert(crypto.load_key(tls_key), chain[0])
    assert _dns(chain[0]) == ["web.example.test"]
    assert status["serialNumber"] == f"{chain[0].serial_number:x}".zfill(
        len(status["serialNumber"])
    )
    assert _gauge_line(operator, kube, "web") is not None

    # A spec change re-issues with the new names.
    kube.apply(certificate_yaml(dns=("web.example.test", "www.example.test")))
    kube.wait_revision("web", 2)
    assert _dns(_leaf(kube, "web-tls")) == ["web.example.test", "www.example.test"]

    # A deleted Secret comes back.
    kube.kubectl("delete", "secret", "web-tls")
    kube.wait_revision("web", 3)
    assert kube.get("secret", "web-tls") is not None

    # A tampered key is replaced by a fresh, matching pair.
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    patch = {"data": {"tls.key": base64.b64encode(other).decode()}}
    kube.kubectl("patch", "secret", "web-tls", "--type", "merge", "-p", json.dumps(patch))
    kube.wait_revision("web", 4)
    key = kube.secret_data("web-tls", "tls.key")
    assert key is not None and key != other
    assert crypto.key_matches_cert(crypto.load_key(key), _leaf(kube, "web-tls"))

    # Deleting the Certificate removes its series and keeps its Secret.
    kube.kubectl("delete", "certificates.padlock.dev", "web")
    eventually(lambda: _gauge_line(operator, kube, "web") is None, 30, "gauges removed")
    assert kube.get("secret", "web-tls") is not None


def test_renewal_by_time_keeps_the_key_with_rotation_policy_never(
    kube: Kube, operator: OperatorProcess
) -> None:
    kube.apply(issuer_yaml())
    kube.apply(
        certificate_yaml(
            "short",
            extra="  renewBefore: 57m\n  privateKey: {rotationPolicy: Never}",
            duration="1h",
        )
    )
    first = kube.wait_revision("short", 1)
    key = kube.secret_data("short-tls", "tls.key")
    # renewBefore 57m of a 1h certificate: renewal 1.5-3 min after notBefore (the CA backdates
    # notBefore by about a minute, so a renewBefore within a minute of the duration would
    # renew back to back).
    second = kube.wait_revision("short", 2, timeout=240)
    assert second["serialNumber"] != first["serialNumber"]
    assert kube.secret_data("short-tls", "tls.key") == key


def _replicasets(kube: Kube) -> list[str]:
    return sorted(
        rs["metadata"]["name"]
        for rs in kube.items("replicasets")
        if any(o.get("name") == "app" for o in rs["metadata"].get("ownerReferences") or [])
    )


DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata:
  name: app
  annotations: {"padlock.dev/reload": "true"}
spec:
  replicas: 1
  selector: {matchLabels: {app: app}}
  template:
    metadata: {labels: {app: app}}
    spec:
      containers: [{name: app, image: registry.invalid/app:1}]
      volumes: [{name: tls, secret: {secretName: app-tls}}]
"""


def test_a_renewal_rolls_an_opted_in_deployment_once_and_a_restart_does_not(
    kube: Kube, operator: OperatorProcess, controlplane: object
) -> None:
    kube.apply(issuer_yaml())
    kube.apply(certificate_yaml("app"))
    kube.wait_revision("app", 1)
    kube.apply(DEPLOYMENT)
    eventually(lambda: len(_replicasets(kube)) == 1, 60, "first ReplicaSet")
    baseline = eventually(
        lambda: (
            (kube.get("deployment", "app") or {})["metadata"]
            .get("annotations", {})
            .get(labels.CERT_HASH)
        ),
        60,
        "baseline hash recorded on the Deployment",
    )
    assert len(_replicasets(kube)) == 1, "recording the baseline must not roll"

    renew = subprocess.run(
        [PADLOCK, "renew", "app", "-n", kube.namespace, "--kubeconfig",
         str(controlplane.kubeconfig)],  # type: ignore[attr-defined]
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert renew.returncode == 0, renew.stderr
    kube.wait_revision("app", 2)
    tls_crt = kube.secret_data("app-tls", "tls.crt")
    assert tls_crt is not None
    new_hash = crypto.content_hash(tls_crt)
    assert new_hash != baseline
    eventually(lambda: len(_replicasets(kube)) == 2, 60, "a new ReplicaSet after the renewal")
    template = (kube.get("deployment", "app") or {})["spec"]["template"]["metadata"]
    assert template["annotations"][labels.CERT_HASH] == new_hash

    operator.restart()
    # The restarted operator has resumed the Certificate once its gauge is back.
    eventually(lambda: _gauge_line(operator, kube, "app"), 60, "resumed after restart")
    assert len(_replicasets(kube)) == 2
    assert kube.certificate_status("app")["revision"] == 2

    status = subprocess.run(
        [PADLOCK, "status", "-n", kube.namespace, "--kubeconfig",
         str(controlplane.kubeconfig)],  # type: ignore[attr-defined]
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert status.returncode == 0, status.stderr
    assert "app" in status.stdout and "True" in status.stdout


def test_ca_down_then_back_fails_with_backoff_then_issues(
    kube: Kube, operator: OperatorProcess, ca_service: CAService
) -> None:
    kube.apply(issuer_yaml())
    eventually(lambda: (_issuer_ready(kube) or {}).get("status") == "True", 60, "Issuer Ready")
    ca_service.stop()
    try:
        kube.apply(certificate_yaml("late"))
        failed = eventually(
            lambda: (
                (kube.ready("late") or {}).get("status") == "False"
                and kube.certificate_status("late").get("failedIssuanceAttempts")
            ),
            60,
            "Ready=False with failedIssuanceAttempts",
        )
        assert failed
        ready = kube.ready("late") or {}
        assert "cannot reach the CA" in ready.get("message", ""), ready
    finally:
        ca_service.start()
    kube.wait_revision("late", 1, timeout=120)
    assert "failedIssuanceAttempts" not in kube.certificate_status("late")


def test_self_signed_and_acme_issuers(kube: Kube, operator: OperatorProcess) -> None:
    kube.apply(issuer_yaml("self", "selfSigned: {}"))
    kube.apply(
        issuer_yaml(
            "acme",
            "acme: {server: 'https://acme.example.test/dir', privateKeySecretRef: {name: acme}}",
        )
    )
    kube.apply(certificate_yaml("selfie", issuer="self"))
    kube.wait_revision("selfie", 1)
    leaf = _leaf(kube, "selfie-tls")
    leaf.verify_directly_issued_by(leaf)
    acme = eventually(lambda: _issuer_ready(kube, "acme"), 60, "ACME issuer status")
    assert (acme["status"], acme["message"]) == ("False", "ACME is not supported yet")


def _ledger_keys(ca_service: CAService, namespace: str) -> list[str]:
    url = ca_service.files.config.ledger.url
    assert url.startswith("sqlite:///"), url
    with contextlib.closing(
        sqlite3.connect(f"file:{url.removeprefix('sqlite:///')}?mode=ro", uri=True)
    ) as db:
        rows = db.execute(
            "SELECT idempotency_key FROM certificate WHERE idempotency_key LIKE ?",
            (f"{namespace}/%",),
        ).fetchall()
    return sorted(str(row[0]) for row in rows)


def test_kill_9_mid_burst_never_issues_twice_for_a_revision(
    kube: Kube, operator: OperatorProcess, ca_service: CAService
) -> None:
    kube.apply(issuer_yaml())
    eventually(lambda: (_issuer_ready(kube) or {}).get("status") == "True", 60, "Issuer Ready")
    count = 20
    kube.apply("\n---\n".join(certificate_yaml(f"burst{i}") for i in range(count)))

    def ready_count() -> int:
        return sum(
            1
            for item in kube.items("certificates.padlock.dev")
            if any(
                c.get("type") == "Ready" and c.get("status") == "True"
                for c in (item.get("status") or {}).get("conditions") or []
            )
        )

    eventually(lambda: ready_count() >= 3, 120, "a few Ready before the kill")
    assert operator.proc is not None
    operator.proc.kill()  # SIGKILL: no cleanup, issuances in flight
    operator.proc.wait()
    operator.proc = None
    operator.start()
    eventually(lambda: ready_count() == count, 240, "all Ready after the restart")
    keys = _ledger_keys(ca_service, kube.namespace)
    # One ledger certificate per Certificate, all for revision 1 (namespace/name/1/uid).
    missing = sorted({f"burst{i}" for i in range(count)} - {k.split("/")[1] for k in keys})
    detail = [
        (name, f"{_leaf(kube, f'{name}-tls').serial_number:x}", kube.certificate_status(name))
        for name in missing
    ]
    assert len(keys) == count, detail
    assert {key.split("/")[2] for key in keys} == {"1"}
    for i in range(count):
        assert kube.certificate_status(f"burst{i}")["revision"] == 1
        key = kube.secret_data(f"burst{i}-tls", "tls.key")
        assert key is not None
        assert crypto.key_matches_cert(crypto.load_key(key), _leaf(kube, f"burst{i}-tls"))
