"""Pod Security (restricted), least-privilege RBAC and the NetworkPolicy, read off the render."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.chart import render


def _pod_templates(objects: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any]]]:
    return [
        (o["metadata"]["name"], o["spec"]["template"]["spec"])
        for o in objects
        if o["kind"] in ("Deployment", "StatefulSet", "DaemonSet")
    ]


@pytest.mark.parametrize("values", ["default", "production"])
def test_every_container_meets_the_restricted_pod_security_profile(
    values: str, default_objects: list[dict[str, Any]], production_objects: list[dict[str, Any]]
) -> None:
    objects = default_objects if values == "default" else production_objects
    pods = _pod_templates(objects)
    assert pods
    for name, pod in pods:
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        assert not pod.get("hostNetwork") and not pod.get("hostPID"), name
        for c in pod["containers"] + pod.get("initContainers", []):
            sc = c["securityContext"]
            where = f"{name}/{c['name']}"
            assert sc["allowPrivilegeEscalation"] is False, where
            assert sc["readOnlyRootFilesystem"] is True, where
            assert sc["runAsNonRoot"] is True, where
            assert sc["capabilities"] == {"drop": ["ALL"]}, where
            assert sc["seccompProfile"] == {"type": "RuntimeDefault"}, where
            assert any(m["mountPath"] == "/tmp" for m in c["volumeMounts"]) or c["name"].startswith(
                "seed"
            ), f"{where} has no writable /tmp"


def test_rbac_grants_exactly_the_documented_rules(default_objects: list[dict[str, Any]]) -> None:
    role = render.one(default_objects, "ClusterRole", "padlock-operator")
    rules = {
        (tuple(r["apiGroups"]), tuple(r["resources"])): tuple(r["verbs"]) for r in role["rules"]
    }
    assert rules == {
        (("padlock.dev",), ("certificates", "issuers", "clusterissuers", "revocationrequests")): (
            "get",
            "list",
            "watch",
            "patch",
        ),
        (
            ("padlock.dev",),
            (
                "certificates/status",
                "issuers/status",
                "clusterissuers/status",
                "revocationrequests/status",
            ),
        ): ("get", "patch", "update"),
        (("",), ("secrets",)): ("get", "list", "watch", "create", "update", "patch", "delete"),
        (("apps",), ("deployments", "statefulsets", "daemonsets")): (
            "get",
            "list",
            "watch",
            "patch",
        ),
        (("",), ("events",)): ("create",),
        (("apiextensions.k8s.io",), ("customresourcedefinitions",)): ("list", "watch"),
    }
    # No wildcard, no pods, no escalation paths.
    flat = [x for r in role["rules"] for x in r["verbs"] + r["resources"] + r["apiGroups"]]
    assert "*" not in flat
    assert not {"pods", "escalate", "bind", "impersonate", "clusterroles"} & set(flat)


def test_chart_readme_explains_every_rbac_rule(default_objects: list[dict[str, Any]]) -> None:
    readme = (render.CHART / "README.md").read_text()
    role = render.one(default_objects, "ClusterRole", "padlock-operator")
    for rule in role["rules"]:
        for resource in rule["resources"]:
            assert f"`{resource}`" in readme, f"README.md does not explain access to {resource}"


def test_standalone_responder_has_no_api_access(production_objects: list[dict[str, Any]]) -> None:
    pod = render.one(production_objects, "Deployment", "padlock-ocsp")["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    bindings = render.find(production_objects, "ClusterRoleBinding") + render.find(
        production_objects, "RoleBinding"
    )
    subjects = {s["name"] for b in bindings for s in b["subjects"]}
    assert pod["serviceAccountName"] not in subjects


def test_network_policy_opens_only_ocsp_and_metrics_on_the_ca_pod(
    default_objects: list[dict[str, Any]],
) -> None:
    policy = render.one(default_objects, "NetworkPolicy", "padlock-ca")
    assert policy["spec"]["policyTypes"] == ["Ingress"]
    pod = render.one(default_objects, "Deployment", "padlock")["spec"]["template"]
    selector = policy["spec"]["podSelector"]["matchLabels"]
    assert selector.items() <= pod["metadata"]["labels"].items()
    opened = sorted(p["port"] for rule in policy["spec"]["ingress"] for p in rule["ports"])
    assert opened == ["ca-metrics", "http", "metrics"]
    # OCSP from anywhere: the rule for http has no `from`.
    (ocsp_rule,) = [r for r in policy["spec"]["ingress"] if r["ports"][0]["port"] == "http"]
    assert "from" not in ocsp_rule
    # Every opened name is a declared container port (the CA is a native sidecar, an init
    # container); the CA container declares only its scrape-only metrics port.
    spec = pod["spec"]
    containers = spec["containers"] + spec["initContainers"]
    declared = {p["name"] for c in containers for p in c.get("ports", [])}
    assert set(opened) <= declared
    assert [p["name"] for p in render.container(spec, "ca")["ports"]] == ["ca-metrics"]


def test_metrics_peers_restrict_scraping(production_objects: list[dict[str, Any]]) -> None:
    """networkPolicy.metricsFrom guards the operator's and the CA's metrics ports alike."""
    policy = render.one(production_objects, "NetworkPolicy", "padlock-ca")
    (metrics_rule,) = policy["spec"]["ingress"]
    assert sorted(p["port"] for p in metrics_rule["ports"]) == ["ca-metrics", "metrics"]
    assert metrics_rule["from"][0]["namespaceSelector"]["matchLabels"] == {
        "kubernetes.io/metadata.name": "monitoring"
    }
    assert render.one(production_objects, "NetworkPolicy", "padlock-ocsp")
