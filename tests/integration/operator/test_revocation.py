"""RevocationRequests on the real local control plane with the real CA (SoftHSM, SQLite ledger):
a Certificate's certificate is revoked in the CA's ledger and re-issued with a new key; an
unknown serial fails with the CA's message; an operator restart changes nothing; without
reissue the Certificates turn Ready=False/Revoked, stay so across a restart, and a renewal
makes them Ready again."""

from __future__ import annotations

from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from prometheus_client.parser import text_string_to_metric_families

from padlock.controllers import crypto
from padlock.kube.certificates import RENEW_REQUESTED
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from tests.integration.operator.conftest import (
    CAService,
    Kube,
    OperatorProcess,
    certificate_yaml,
    eventually,
    issuer_yaml,
)

pytestmark = [pytest.mark.controlplane, pytest.mark.softhsm, pytest.mark.slow]

RR = "revocationrequests.padlock.dev"


def _request_yaml(name: str, spec: str) -> str:
    return f"""
apiVersion: padlock.dev/v1alpha1
kind: RevocationRequest
metadata: {{name: {name}}}
spec:
{spec}
"""


def _complete(kube: Kube, name: str) -> dict[str, Any] | None:
    for condition in ((kube.get(RR, name) or {}).get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Complete":
            return dict(condition)
    return None


def _public_key(kube: Kube, secret: str) -> bytes:
    tls_crt = kube.secret_data(secret, "tls.crt")
    assert tls_crt is not None
    return (
        crypto.load_leaf(tls_crt)
        .public_key()
        .public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    )


def _ledger_status(ca_service: CAService, serial: str) -> records.CertificateStatus:
    config = ca_service.files.config
    intermediate = x509.load_pem_x509_certificates(config.chain_file.read_bytes())[0]
    with ledger_mod.Ledger(config.ledger.url, migrate=False) as ledger:
        ca_id = ledger.register_ca(intermediate, ca_type=records.CAType.INTERMEDIATE)
        return ledger.certificate_status(ca_id, int(serial, 16))


def _ready_gauge(operator: OperatorProcess, namespace: str, name: str) -> str | None:
    """The condition whose padlock_certificate_ready_status series is 1, from /metrics."""
    for family in text_string_to_metric_families(operator.metrics()):
        for sample in family.samples:
            if (
                sample.name == "padlock_certificate_ready_status"
                and sample.labels.get("namespace") == namespace
                and sample.labels.get("name") == name
                and sample.value == 1.0
            ):
                return sample.labels["condition"]
    return None


def _events(kube: Kube, kind: str, name: str) -> list[str]:
    selector = f"involvedObject.kind={kind},involvedObject.name={name}"
    return [e["reason"] for e in kube.items("events", "--field-selector", selector)]


def test_certificate_ref_revokes_then_reissues_with_a_new_key_and_a_restart_changes_nothing(
    kube: Kube, operator: OperatorProcess, ca_service: CAService
) -> None:
    kube.apply(issuer_yaml())
    # rotationPolicy Never: a plain renewal would keep the key; a revocation must not.
    kube.apply(certificate_yaml(extra="  privateKey: {rotationPolicy: Never}"))
    old = kube.wait_revision("web", 1)
    old_key = _public_key(kube, "web-tls")
    assert _ledger_status(ca_service, old["serialNumber"]).status is records.Status.GOOD

    kube.apply(
        _request_yaml(
            "web-key-compromise",
            "  certificateRef: {name: web}\n  reason: keyCompromise\n  reissue: true",
        )
    )
    complete = eventually(
        lambda: (c := _complete(kube, "web-key-compromise")) and c["status"] == "True" and c,
        60,
        "RevocationRequest Complete",
    )
    assert complete["reason"] == "Revoked"
    status = (kube.get(RR, "web-key-compromise") or {})["status"]
    assert status["revokedSerials"] == [old["serialNumber"]]
    assert status["revokedAt"]
    revoked = _ledger_status(ca_service, old["serialNumber"])
    assert revoked.status is records.Status.REVOKED
    assert revoked.reason_code == 1  # keyCompromise (RFC 5280 §5.3.1)

    new = kube.wait_revision("web", 2)
    assert new["serialNumber"] != old["serialNumber"]
    assert _public_key(kube, "web-tls") != old_key
    assert _ledger_status(ca_service, new["serialNumber"]).status is records.Status.GOOD
    assert "Revoked" in _events(kube, "RevocationRequest", "web-key-compromise")
    assert "Revoked" in _events(kube, "Certificate", "web")

    # An operator restart resumes the request: nothing is revoked or issued again.
    before = kube.get(RR, "web-key-compromise") or {}
    seen = len(operator.log.read_text())
    operator.restart()
    line = f"{kube.namespace}/web-key-compromise is already Complete"
    eventually(
        lambda: line in operator.log.read_text()[seen:],
        60,
        "the resumed request to be seen as Complete",
    )
    after = kube.get(RR, "web-key-compromise") or {}
    assert after["status"] == before["status"]
    assert kube.certificate_status("web")["revision"] == 2
    assert _ledger_status(ca_service, new["serialNumber"]).status is records.Status.GOOD


def test_an_unknown_serial_fails_with_the_cas_message(
    kube: Kube, operator: OperatorProcess
) -> None:
    kube.apply(issuer_yaml())
    kube.apply(
        _request_yaml("unknown", "  serialNumber: " + "7f" * 19 + "\n  issuerRef: {name: ca}")
    )
    complete = eventually(
        lambda: (c := _complete(kube, "unknown")) and c["reason"] != "CAUnreachable" and c,
        60,
        "RevocationRequest failed",
    )
    assert complete["reason"] == "UnknownSerial", complete
    assert "this CA has no certificate with serial " + "7F" * 19 in complete["message"]
    assert "revokedSerials" not in ((kube.get(RR, "unknown") or {}).get("status") or {})
    assert "RevocationFailed" in _events(kube, "RevocationRequest", "unknown")


def test_all_from_issuer_revokes_every_certificate_of_the_ca(
    kube: Kube, operator: OperatorProcess, ca_service: CAService
) -> None:
    # Last in this module: the drill revokes everything the module's CA ever issued.
    kube.apply(issuer_yaml())
    kube.apply(certificate_yaml("one", dns=("one.example.test",)))
    kube.apply(certificate_yaml("two", dns=("two.example.test",)))
    serials = [kube.wait_revision(name, 1)["serialNumber"] for name in ("one", "two")]
    kube.apply(
        _request_yaml(
            "drill", "  issuerRef: {name: ca}\n  scope: AllFromIssuer\n  reason: cACompromise"
        )
    )
    eventually(
        lambda: (c := _complete(kube, "drill")) and c["status"] == "True",
        120,
        "the drill Complete",
    )
    status = (kube.get(RR, "drill") or {})["status"]
    assert set(serials) <= set(status["revokedSerials"])
    for serial in serials:
        revoked = _ledger_status(ca_service, serial)
        assert revoked.status is records.Status.REVOKED
        assert revoked.reason_code == 2  # cACompromise (RFC 5280 §5.3.1)
    for name in ("one", "two"):
        assert "Revoked" in _events(kube, "Certificate", name)
        # Without reissue the Certificate is no longer Ready (its Secret holds a revoked cert).
        ready = kube.ready(name) or {}
        assert (ready.get("status"), ready.get("reason")) == ("False", "Revoked"), ready
        assert kube.certificate_status(name)["serialNumber"] in ready["message"]
        assert f"RevocationRequest {kube.namespace}/drill" in ready["message"]
        assert _ready_gauge(operator, kube.namespace, name) == "False"

    # A restarted operator resumes the Certificates and keeps them not Ready.
    operator.restart()
    eventually(
        lambda: _ready_gauge(operator, kube.namespace, "one") == "False",
        60,
        "the resumed Certificate's Ready gauge back at False",
    )
    assert (kube.ready("one") or {}).get("reason") == "Revoked"
    assert kube.certificate_status("one")["revision"] == 1

    # `padlock renew` (its annotation) issues a new certificate: Ready again, new serial.
    kube.kubectl(
        "annotate", "certificates.padlock.dev", "one", f"{RENEW_REQUESTED}=2026-06-01T12:00:00Z"
    )
    renewed = kube.wait_revision("one", 2)
    assert renewed["serialNumber"] != serials[0]
    assert (kube.ready("one") or {}).get("reason") == "Ready"
    assert _ledger_status(ca_service, renewed["serialNumber"]).status is records.Status.GOOD
    eventually(
        lambda: _ready_gauge(operator, kube.namespace, "one") == "True",
        30,
        "the Ready gauge back at True",
    )
    assert (kube.ready("two") or {}).get("reason") == "Revoked"
