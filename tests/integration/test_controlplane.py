"""The local control plane the integration tests rely on really works.

Proves what tests/fixtures/controlplane.py promises: a real kube-apiserver of the pinned
version with RBAC on, kube-controller-manager running the deployment, replicaset,
serviceaccount, garbage-collector and namespace controllers; and that missing binaries fail
loudly instead of skipping.
"""

from __future__ import annotations

import json
import pathlib
import time
from collections.abc import Callable
from typing import Any

import pytest
import yaml
from tools.controlplane import local

DEPLOYMENT = """
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      containers: [{name: web, image: registry.invalid/web:1}]
"""


def _items(cp: local.ControlPlane, *args: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = json.loads(cp.kubectl("get", *args, "-o", "json").stdout)["items"]
    return items


def _eventually(check: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
    """Poll a condition the controllers make true asynchronously (no fixed sleeps)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not within {timeout:.0f}s: {what}")
        time.sleep(0.2)


@pytest.mark.controlplane
def test_api_server_is_ready_and_reports_the_pinned_version(
    controlplane: local.ControlPlane,
) -> None:
    go_mod = local.REPO / "tools/controlplane/kubernetes/go.mod"
    pinned = local._pinned_version(go_mod, "k8s.io/kubernetes")
    assert controlplane.kubectl("get", "--raw", "/readyz").stdout == "ok"
    version = json.loads(controlplane.kubectl("version", "-o", "json").stdout)
    assert version["serverVersion"]["gitVersion"] == pinned


@pytest.mark.controlplane
def test_rbac_denies_a_service_account_what_no_role_grants(
    controlplane: local.ControlPlane, namespace: str
) -> None:
    sa = f"system:serviceaccount:{namespace}:default"
    denied = controlplane.kubectl("auth", "can-i", "list", "secrets", f"--as={sa}", check=False)
    assert denied.stdout.strip() == "no"
    assert controlplane.kubectl("auth", "can-i", "list", "secrets").stdout.strip() == "yes"


@pytest.mark.controlplane
def test_deployment_rolls_out_a_replicaset_and_pods_then_gc_removes_them(
    controlplane: local.ControlPlane, namespace: str
) -> None:
    controlplane.kubectl("apply", "-n", namespace, "-f", "-", input=DEPLOYMENT)

    def owned_by(kind: str, objs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        refs = [o["metadata"].get("ownerReferences", []) for o in objs]
        return [o for o, r in zip(objs, refs, strict=True) if any(x["kind"] == kind for x in r)]

    # deployment controller -> ReplicaSet; replicaset controller (+ the default
    # ServiceAccount made by the serviceaccount controller) -> 2 Pods.
    _eventually(
        lambda: len(owned_by("Deployment", _items(controlplane, "rs", "-n", namespace))) == 1,
        "a ReplicaSet owned by the Deployment",
    )
    _eventually(
        lambda: len(owned_by("ReplicaSet", _items(controlplane, "pods", "-n", namespace))) == 2,
        "2 Pods owned by the ReplicaSet",
    )

    controlplane.kubectl("delete", "deployment", "web", "-n", namespace, "--cascade=background")
    _eventually(
        lambda: not _items(controlplane, "rs,pods", "-n", namespace),
        "the garbage collector deletes the ReplicaSet and its Pods",
    )


@pytest.mark.controlplane
def test_deleted_namespace_is_emptied_and_removed(controlplane: local.ControlPlane) -> None:
    controlplane.kubectl("create", "namespace", "doomed")
    controlplane.kubectl("create", "configmap", "c", "-n", "doomed", "--from-literal=k=v")
    controlplane.kubectl("delete", "namespace", "doomed", "--wait=true", "--timeout=60s")
    gone = controlplane.kubectl("get", "namespace", "doomed", check=False)
    assert gone.returncode != 0
    assert "NotFound" in gone.stderr


@pytest.mark.controlplane
def test_every_crd_in_the_repo_is_established(controlplane: local.ControlPlane) -> None:
    files = sorted((local.REPO / "crds").glob("*.yaml"))
    if not files:
        pytest.skip("crds/ holds no *.yaml yet")
    names = [yaml.safe_load(f.read_text())["metadata"]["name"] for f in files]
    for crd in _items(controlplane, "crd", *names):
        established = [c for c in crd["status"]["conditions"] if c["type"] == "Established"]
        assert [c["status"] for c in established] == ["True"], crd["metadata"]["name"]


def test_missing_binaries_fail_with_instructions(
    monkeypatch: pytest.MonkeyPatch, tmp_path: pathlib.Path
) -> None:
    monkeypatch.setenv("KUBEBUILDER_ASSETS", str(tmp_path))
    with pytest.raises(local.ControlPlaneError, match=r"etcd, kube-apiserver, kube-controller"):
        local.start(tmp_path / "state")


def test_endpoints_env_sets_and_drops_only_its_own_line(tmp_path: pathlib.Path) -> None:
    env = tmp_path / "endpoints.env"
    env.write_text("CA_SOCKET=/run/ca.sock\nKUBECONFIG=/old\n")
    local.write_endpoints_env(tmp_path, tmp_path / "my kubeconfig")
    assert env.read_text() == f"CA_SOCKET=/run/ca.sock\nKUBECONFIG='{tmp_path}/my kubeconfig'\n"
    local.write_endpoints_env(tmp_path, None)
    assert env.read_text() == "CA_SOCKET=/run/ca.sock\n"
