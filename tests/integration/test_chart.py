"""`helm install` of charts/padlock into the local control plane: the API server (with its
admission plug-ins, Pod Security `restricted` enforced on the namespace, and our CRDs' CEL
rules) accepts every object, and `helm uninstall` removes all but the CRDs.

No kubelet runs, so pods never start: what is proven is the API objects themselves, including
that the ReplicaSet controller may create the pods under the restricted profile.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Iterator
from typing import Any

import pytest
import yaml
from tools.controlplane import local

from tests.unit.chart import render

pytestmark = [pytest.mark.controlplane, pytest.mark.slow]

MONITORING_AUTO = [
    "monitoring.serviceMonitor.enabled=auto",
    "monitoring.prometheusRule.enabled=auto",
]


def _restricted(controlplane: local.ControlPlane, namespace: str) -> None:
    controlplane.kubectl(
        "label",
        "--overwrite",
        "namespace",
        namespace,
        "pod-security.kubernetes.io/enforce=restricted",
        "pod-security.kubernetes.io/warn=restricted",
    )


def _install(controlplane: local.ControlPlane, namespace: str, *args: str) -> tuple[str, str]:
    """helm install a uniquely named release; return (release, helm's stdout + stderr)."""
    release = f"pl-{namespace.removeprefix('test-')[:8]}"
    proc = render.helm_run(
        "install",
        release,
        str(render.CHART),
        "--namespace",
        namespace,
        "--set",
        f"clusterIssuer.name={release}",
        *args,
        kubeconfig=controlplane.kubeconfig,
    )
    return release, proc.stdout + proc.stderr


def _manifest(
    controlplane: local.ControlPlane, release: str, namespace: str
) -> list[dict[str, Any]]:
    text = render.helm(
        "get", "manifest", release, "--namespace", namespace, kubeconfig=controlplane.kubeconfig
    )
    return [d for d in yaml.safe_load_all(text) if d]


def _ref(obj: dict[str, Any], namespace: str) -> list[str]:
    kind = obj["kind"]
    group = obj["apiVersion"].split("/")[0] if "/" in obj["apiVersion"] else ""
    resource = f"{kind.lower()}.{group}" if group else kind.lower()
    args = [resource, obj["metadata"]["name"]]
    if kind not in ("ClusterRole", "ClusterRoleBinding", "ClusterIssuer"):
        args += ["--namespace", namespace]
    return args


def _exists(controlplane: local.ControlPlane, obj: dict[str, Any], namespace: str) -> bool:
    """Present and not being deleted. A PVC keeps its pvc-protection finalizer here (the local
    kube-controller-manager runs no PVC-protection controller), so "deleting" counts as gone."""
    proc = controlplane.kubectl("get", *_ref(obj, namespace), "-o", "json", check=False)
    if proc.returncode != 0:
        assert "NotFound" in proc.stderr, proc.stderr
        return False
    return "deletionTimestamp" not in json.loads(proc.stdout)["metadata"]


def _wait(predicate: Any, what: str, timeout: float = 60.0, describe: Any = None) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            detail = f": {describe()}" if describe is not None else ""
            pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}{detail}")
        time.sleep(0.5)


@pytest.fixture
def cleanup(controlplane: local.ControlPlane) -> Iterator[list[tuple[str, str]]]:
    """Releases to uninstall if a test stops half-way (so cluster-scoped names stay free)."""
    releases: list[tuple[str, str]] = []
    yield releases
    for release, namespace in releases:
        with contextlib.suppress(render.HelmError):
            render.helm(
                "uninstall",
                release,
                "--namespace",
                namespace,
                "--ignore-not-found",
                kubeconfig=controlplane.kubeconfig,
            )


def test_default_install_is_accepted_under_restricted_pod_security_and_uninstalls_cleanly(
    controlplane: local.ControlPlane, namespace: str, cleanup: list[tuple[str, str]]
) -> None:
    _restricted(controlplane, namespace)
    release, out = _install(
        controlplane,
        namespace,
        "--set",
        "hsm.softhsm.persistence.keepOnUninstall=false",
        "--set",
        "ledger.sqlite.persistence.keepOnUninstall=false",
    )
    cleanup.append((release, namespace))
    assert "violate PodSecurity" not in out
    objects = _manifest(controlplane, release, namespace)
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "ClusterIssuer", "NetworkPolicy", "PersistentVolumeClaim"} <= kinds
    for obj in objects:
        assert _exists(controlplane, obj, namespace), f"{obj['kind']} {obj['metadata']['name']}"
    # The API server kept both scrape ports: the operator's and the CA's scrape-only listener.
    metrics_svc = json.loads(
        controlplane.kubectl(
            "get", "service", f"{release}-padlock-metrics", "-n", namespace, "-o", "json"
        ).stdout
    )
    assert {p["name"]: p["targetPort"] for p in metrics_svc["spec"]["ports"]} == {
        "metrics": "metrics",
        "ca-metrics": "ca-metrics",
    }

    # The ReplicaSet controller creates the pod: Pod Security admission let it in.
    selector = f"app.kubernetes.io/instance={release},app.kubernetes.io/component=ca"

    def pod_created() -> bool:
        pods = controlplane.kubectl("get", "pods", "-n", namespace, "-l", selector, "-o", "name")
        if pods.stdout.strip():
            return True
        events = controlplane.kubectl("get", "events", "-n", namespace, "-o", "yaml").stdout
        assert "violates PodSecurity" not in events, events
        return False

    _wait(pod_created, "the operator pod to be created")

    render.helm("uninstall", release, "--namespace", namespace, kubeconfig=controlplane.kubeconfig)
    cleanup.clear()

    def remaining() -> list[str]:
        return [
            f"{o['kind']}/{o['metadata']['name']}"
            for o in objects
            if _exists(controlplane, o, namespace)
        ]

    _wait(lambda: not remaining(), "every release object to be deleted", describe=remaining)
    crds = controlplane.kubectl("get", "crd", "-o", "name").stdout.split()
    assert "customresourcedefinition.apiextensions.k8s.io/certificates.padlock.dev" in crds
    assert "customresourcedefinition.apiextensions.k8s.io/clusterissuers.padlock.dev" in crds


def test_uninstall_keeps_the_token_and_ledger_claims_by_default(
    controlplane: local.ControlPlane, namespace: str, cleanup: list[tuple[str, str]]
) -> None:
    release, _ = _install(controlplane, namespace)
    cleanup.append((release, namespace))
    render.helm("uninstall", release, "--namespace", namespace, kubeconfig=controlplane.kubeconfig)
    cleanup.clear()
    claims = controlplane.kubectl("get", "pvc", "-n", namespace, "-o", "name").stdout.split()
    assert sorted(claims) == [
        f"persistentvolumeclaim/{release}-padlock-ledger",
        f"persistentvolumeclaim/{release}-padlock-softhsm",
    ]
    assert not _exists(
        controlplane,
        {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": f"{release}-padlock"}},
        namespace,
    )


def test_production_values_install_with_responder_deployment_hpa_and_pdb(
    controlplane: local.ControlPlane, namespace: str, cleanup: list[tuple[str, str]]
) -> None:
    _restricted(controlplane, namespace)
    sets = [a for s in MONITORING_AUTO for a in ("--set", s)]
    release, out = _install(controlplane, namespace, "-f", str(render.CI_VALUES), *sets)
    cleanup.append((release, namespace))
    assert "violate PodSecurity" not in out
    objects = _manifest(controlplane, release, namespace)
    for kind in ("HorizontalPodAutoscaler", "PodDisruptionBudget"):
        (obj,) = render.find(objects, kind)
        assert _exists(controlplane, obj, namespace)
    assert len(render.find(objects, "Deployment")) == 2
    # The API server kept the image volume holding the vendor PKCS#11 module (a disabled
    # feature gate would drop the field silently and leave a volume with no source).
    stored = json.loads(
        controlplane.kubectl(
            "get", "deployment", f"{release}-padlock", "-n", namespace, "-o", "json"
        ).stdout
    )
    volumes = {v["name"]: v for v in stored["spec"]["template"]["spec"]["volumes"]}
    assert volumes["hsm-module"]["image"]["reference"].endswith("/vendor/hsm-client:7.4")


def test_api_server_refuses_a_cluster_issuer_the_crd_rules_forbid(
    controlplane: local.ControlPlane, namespace: str
) -> None:
    """Same object shape the chart renders, broken: the CRD's one-of rule (CEL) refuses it."""
    (issuer,) = render.find(render.template(), "ClusterIssuer")
    issuer["metadata"]["name"] = f"broken-{namespace}"
    issuer["spec"]["selfSigned"] = {}
    proc = controlplane.kubectl("create", "-f", "-", input=yaml.safe_dump(issuer), check=False)
    assert proc.returncode != 0
    assert "spec" in proc.stderr
