"""The whole operator pod, as `helm install` made it, against a real API server.

The chart is installed into the local control plane (ServiceAccount, ClusterRole, CRDs,
ClusterIssuer, ConfigMap); its operator pod is then emulated (tests/integration/chart/pod.py)
with that ServiceAccount's token mounted where a pod gets it, so `padlock operator` runs with
exactly the chart's RBAC, next to the CA sidecar and the responder. manifests/examples
(Issuer, Certificate, reloading Deployment, RevocationRequest) are applied as `make e2e-kind`
does: the Certificate becomes Ready, its Secret holds the chain, `openssl ocsp` says good;
after the RevocationRequest (reissue) it says revoked and the Deployment's pod template is
rolled. A missing RBAC verb would show up here as a 403 in the logs.
"""

from __future__ import annotations

import base64
import json
import pathlib
import re
import time
import urllib.request
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import yaml
from tools.controlplane import local

from tests.fixtures.controlplane import running_controlplane
from tests.integration.chart import pod as pod_mod
from tests.integration.chart.test_ca_pod import free_port, ocsp_status
from tests.unit.chart import render

pytestmark = [pytest.mark.controlplane, pytest.mark.softhsm, pytest.mark.slow]

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
EXAMPLES = render.REPO / "manifests/examples"


def _wait_for(check: Callable[[], Any], what: str, logs: Callable[[], str], timeout: float) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{logs()}")
        time.sleep(0.5)


def _service_account(
    controlplane: local.ControlPlane, namespace: str, name: str, base: pathlib.Path
) -> pathlib.Path:
    """What the kubelet mounts at SA_DIR: a bound token, the API server's CA, the namespace."""
    token = controlplane.kubectl(
        "create", "token", name, "-n", namespace, "--duration=1h"
    ).stdout.strip()
    kubeconfig = yaml.safe_load(controlplane.kubeconfig.read_text())
    ca = base64.b64decode(kubeconfig["clusters"][0]["cluster"]["certificate-authority-data"])
    base.mkdir()
    (base / "token").write_text(token)
    (base / "ca.crt").write_bytes(ca)
    (base / "namespace").write_text(namespace)
    base.chmod(0o755)
    for f in base.iterdir():
        f.chmod(0o644)
    return base


@pytest.fixture(scope="module")
def private_controlplane(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[local.ControlPlane]:
    """A control plane of this module's own: the emulated operator runs cluster-wide, and on a
    shared one (`make up`) another padlock operator would answer the same Certificates (and
    this one theirs)."""
    yield from running_controlplane(tmp_path_factory.mktemp("operator-pod-controlplane"))


def _get(controlplane: local.ControlPlane, *args: str) -> Any:
    proc = controlplane.kubectl("get", *args, "-o", "json", check=False)
    return json.loads(proc.stdout) if proc.returncode == 0 else None


def _condition(obj: Any, kind: str) -> str | None:
    for c in (obj or {}).get("status", {}).get("conditions", []):
        if c["type"] == kind:
            return str(c["status"])
    return None


def test_installed_operator_pod_issues_rolls_and_revokes(
    private_controlplane: local.ControlPlane,
    tmp_path: pathlib.Path,
    request: pytest.FixtureRequest,
) -> None:
    pod_mod.need_root()
    controlplane = private_controlplane
    namespace, release = "padlock-e2e", "padlock"
    controlplane.kubectl("create", "namespace", namespace)
    issuer = "padlock"
    ocsp_port, metrics_port = free_port(), free_port()
    render.helm(
        "install", release, str(render.CHART), "--namespace", namespace,
        "--set", f"clusterIssuer.name={issuer}",
        "--set", f"ocsp.port={ocsp_port}",
        "--set", f"operator.metricsPort={metrics_port}",
        "--set", f"ca.metricsPort={free_port()}",
        kubeconfig=controlplane.kubeconfig,
    )  # fmt: skip
    request.addfinalizer(
        lambda: render.helm(
            "uninstall",
            release,
            "--namespace",
            namespace,
            "--ignore-not-found",
            kubeconfig=controlplane.kubeconfig,
        )
    )
    manifest = [
        d
        for d in yaml.safe_load_all(
            render.helm(
                "get", "manifest", release, "-n", namespace, kubeconfig=controlplane.kubeconfig
            )
        )
        if d
    ]
    chart_pod = render.one(manifest, "Deployment", "padlock")
    spec = chart_pod["spec"]["template"]["spec"]
    config = render.one(manifest, "ConfigMap", "padlock-config")["data"]
    ceremony = pod_mod.ceremony(tmp_path / "ceremony")
    sources = pod_mod.volumes(config, ceremony, tmp_path / "volumes")
    sa = _service_account(controlplane, namespace, spec["serviceAccountName"], tmp_path / "sa")
    api = re.fullmatch(r"https://([^:/]+):(\d+)", controlplane.server)
    assert api is not None, controlplane.server
    out = pod_mod.shared_dir(request)
    running = pod_mod.start(
        spec,
        sources,
        out,
        tmp_path / "layers",
        run=["seed-softhsm-token", "ca", "operator", "ocsp"],
        extra_env={
            "operator": {
                "KUBERNETES_SERVICE_HOST": api.group(1),
                "KUBERNETES_SERVICE_PORT": api.group(2),
            }
        },
        extra_mounts={SA_DIR: sa},
        fields={"metadata.name": "padlock-0", "metadata.namespace": namespace},
    )
    request.addfinalizer(running.stop)

    # What `make e2e-kind` applies: manifests/examples' Issuer, Certificate and Deployment.
    # The example Certificate's bare DNS name `web` is refused by the CA's lint gate (pkilint:
    # invalid domain name syntax), so it is left out here until the example is fixed.
    certificate = yaml.safe_load((EXAMPLES / "certificate.yaml").read_text())
    certificate["spec"]["dnsNames"] = [n for n in certificate["spec"]["dnsNames"] if "." in n]
    controlplane.kubectl(
        "apply", "-n", namespace,
        "-f", str(EXAMPLES / "issuer-ca.yaml"),
        "-f", str(EXAMPLES / "deployment-reload.yaml"),
        "-f", "-",
        input=yaml.safe_dump(certificate),
    )  # fmt: skip

    cert = _wait_for(
        lambda: (
            (c := _get(controlplane, "certificate", "web", "-n", namespace))
            and _condition(c, "Ready") == "True"
            and c
        ),
        "Certificate web to become Ready",
        running.logs,
        timeout=120,
    )
    secret = _get(controlplane, "secret", "web-tls", "-n", namespace)
    assert secret["type"] == "kubernetes.io/tls"
    data = {k: base64.b64decode(v).decode() for k, v in secret["data"].items()}
    pems = re.findall(
        r"-----BEGIN CERTIFICATE-----.+?-----END CERTIFICATE-----\n", data["tls.crt"], re.S
    )
    assert len(pems) >= 2, data["tls.crt"]
    assert "PRIVATE KEY" in data["tls.key"]

    # First sight of the workload: padlock records the content its pods run with (no roll).
    def web() -> Any:
        return _get(controlplane, "deployment", "web", "-n", namespace) or {}

    baseline = _wait_for(
        lambda: web()["metadata"].get("annotations", {}).get("padlock.dev/cert-hash"),
        "Deployment web to get its baseline padlock.dev/cert-hash",
        running.logs,
        timeout=60,
    )

    # The responder in the pod answers for the leaf from the ledger the CA wrote.
    root = ceremony / "intermediate/root.pem"
    answer = ocsp_status(tmp_path, pems[0], pems[1], root, ocsp_port)
    assert "leaf.pem: good" in answer, f"{answer}{running.logs()}"

    # The operator's metrics endpoint exports the expiry gauge for it.
    with urllib.request.urlopen(f"http://127.0.0.1:{metrics_port}/metrics", timeout=10) as r:
        metrics = r.read().decode()
    assert re.search(r'padlock_certificate_expiration_timestamp_seconds\{[^}]*name="web"', metrics)

    # Revoke it and reissue: the RevocationRequest completes, the responder says revoked, the
    # Secret holds a new certificate and padlock rolls the Deployment (pod template hash).
    controlplane.kubectl("apply", "-n", namespace, "-f", str(EXAMPLES / "revocationrequest.yaml"))
    _wait_for(
        lambda: (
            _condition(
                _get(controlplane, "revocationrequest", "web-key-compromise", "-n", namespace),
                "Complete",
            )
            == "True"
        ),
        "RevocationRequest to complete",
        running.logs,
        timeout=60,
    )
    answer = _wait_for(
        lambda: (
            (a := ocsp_status(tmp_path, pems[0], pems[1], root, ocsp_port))
            and ": revoked" in a
            and a
        ),
        "OCSP to answer revoked",
        running.logs,
        timeout=30,
    )
    assert "Reason: keyCompromise" in answer, answer
    rolled = _wait_for(
        lambda: (
            web()["spec"]["template"]["metadata"]
            .get("annotations", {})
            .get("padlock.dev/cert-hash")
        ),
        "padlock to roll Deployment web after the reissue",
        running.logs,
        timeout=90,
    )
    assert rolled != baseline
    new_leaf = base64.b64decode(
        _get(controlplane, "secret", "web-tls", "-n", namespace)["data"]["tls.crt"]
    ).decode()
    assert pems[0] not in new_leaf
    assert cert["status"]["serialNumber"]
    # No request of the operator was refused by RBAC.
    operator_log = (out / "operator.log").read_text()
    assert " 403" not in operator_log and "forbidden" not in operator_log.lower(), running.logs()
