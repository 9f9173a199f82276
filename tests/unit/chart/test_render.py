"""The chart renders, lints and produces only objects the API server would accept."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest
import yaml

from padlock.ca import config
from tests.unit.chart import render

VALUES_FILES = {
    "default": (),
    "postgres-external-hsm": (render.CI_VALUES,),
    "kind": (render.KIND_VALUES,),
}


@pytest.mark.parametrize("name", sorted(VALUES_FILES))
def test_helm_lint_passes(name: str) -> None:
    args = ["lint", str(render.CHART), "--strict"]
    for f in VALUES_FILES[name]:
        args += ["-f", str(f)]
    out = render.helm(*args)
    assert "0 chart(s) failed" in out


@pytest.mark.parametrize("name", sorted(VALUES_FILES))
def test_every_rendered_object_passes_strict_schema_validation(name: str) -> None:
    objects = render.template(
        *VALUES_FILES[name], api_versions=["monitoring.coreos.com/v1"], include_crds=True
    )
    kinds = {o["kind"] for o in objects}
    assert {"Deployment", "ConfigMap", "ClusterRole", "Service", "ClusterIssuer"} <= kinds
    for obj in objects:
        render.validate(obj)


def test_strict_validation_catches_an_unknown_field(default_objects: list[dict[str, Any]]) -> None:
    deployment = render.one(default_objects, "Deployment")
    deployment["spec"]["template"]["spec"]["containers"][0]["imagePullPolicyy"] = "Never"
    with pytest.raises(Exception, match="imagePullPolicyy"):
        render.validate(deployment)


def test_cluster_issuer_is_checked_against_our_crd(default_objects: list[dict[str, Any]]) -> None:
    issuer = render.one(default_objects, "ClusterIssuer")
    issuer["spec"]["ca"]["maxDurationn"] = "1h"
    with pytest.raises(Exception, match="maxDurationn"):
        render.validate(issuer)


def _ca_yaml(objects: list[dict[str, Any]]) -> dict[str, Any]:
    cm = render.one(objects, "ConfigMap", "padlock-config")
    loaded: dict[str, Any] = yaml.safe_load(cm["data"]["ca.yaml"])
    return loaded


def test_default_ca_yaml_loads_with_padlock_ca_config(
    default_objects: list[dict[str, Any]], tmp_path: pathlib.Path
) -> None:
    path = tmp_path / "ca.yaml"
    path.write_text(yaml.safe_dump(_ca_yaml(default_objects)))
    loaded = config.load(path)
    assert loaded.pkcs11.module == config.DEFAULT_SOFTHSM_MODULE
    assert loaded.pkcs11.pin_file == pathlib.Path("/etc/padlock/pin/pin")
    assert loaded.chain_file == pathlib.Path("/etc/padlock/chain/chain.pem")
    assert loaded.listen.socket == pathlib.Path("/run/padlock/ca.sock")
    # Prometheus reaches the scrape-only listener from outside the pod (the Service's port).
    assert (loaded.listen.metrics_host, loaded.listen.metrics_port) == ("0.0.0.0", 9403)
    assert loaded.listen.tcp_port is None  # the signing API stays on the socket
    assert loaded.ledger.url == "sqlite:////var/lib/padlock/ledger/ledger.db"
    assert loaded.urls.ocsp == "http://padlock-ocsp.pki.svc"
    assert loaded.urls.crl_base == "http://padlock-ocsp.pki.svc/crl"
    assert loaded.urls.ca_issuers == "http://padlock-ocsp.pki.svc/ca.crt"


def test_postgres_ca_yaml_loads_with_padlock_ca_config(
    production_objects: list[dict[str, Any]], tmp_path: pathlib.Path
) -> None:
    """The PostgreSQL URL comes from a mounted Secret (ledger.url_file), never the config."""
    rendered = _ca_yaml(production_objects)
    assert rendered["ledger"] == {"url_file": "/etc/padlock/ledger/url"}
    secret_url = "postgresql://padlock:s3cret@db.example:5432/padlock"
    (tmp_path / "url").write_text(secret_url + "\n")
    rendered["ledger"]["url_file"] = str(tmp_path / "url")  # the mounted Secret, here
    path = tmp_path / "ca.yaml"
    path.write_text(yaml.safe_dump(rendered))
    loaded = config.load(path)
    assert loaded.pkcs11.module == "/opt/vendor-hsm/lib/libvendorpkcs11.so"
    assert loaded.ledger.url == secret_url


def test_ca_metrics_port_value_reaches_ca_yaml_and_the_ca_container(
    tmp_path: pathlib.Path,
) -> None:
    objects = render.template(sets=["ca.metricsPort=19403"])
    path = tmp_path / "ca.yaml"
    path.write_text(yaml.safe_dump(_ca_yaml(objects)))
    assert config.load(path).listen.metrics_port == 19403
    pod = render.one(objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    ports = render.container(pod, "ca")["ports"]
    assert ports == [{"name": "ca-metrics", "containerPort": 19403, "protocol": "TCP"}]


def test_ca_yaml_paths_are_the_mounted_paths(default_objects: list[dict[str, Any]]) -> None:
    """Every file ca.yaml names is inside a volume mounted into the CA container."""
    ca = _ca_yaml(default_objects)
    pod = render.one(default_objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    container = render.container(pod, "ca")
    mounts = [m["mountPath"] for m in container["volumeMounts"]]
    files = [
        ca["chain_file"],
        ca["pkcs11"]["pin_file"],
        ca["listen"]["socket"],
        ca["ledger"]["url"].removeprefix("sqlite:///"),
    ]
    for f in files:
        assert any(f.startswith(m + "/") for m in mounts), f"{f} is not under a volume mount"
    env = {e["name"]: e["value"] for e in container["env"]}
    assert env["SOFTHSM2_CONF"].startswith("/etc/padlock/config/")


def test_operator_pod_is_one_replica_recreated(default_objects: list[dict[str, Any]]) -> None:
    spec = render.one(default_objects, "Deployment", "padlock")["spec"]
    assert spec["replicas"] == 1
    assert spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert [c["name"] for c in pod["containers"]] == ["operator", "ocsp"]
    # The CA is a native sidecar: started (socket answering) before the others, stopped last.
    assert [c["name"] for c in pod["initContainers"]] == ["seed-softhsm-token", "ca"]
    ca = render.container(pod, "ca")
    assert ca["restartPolicy"] == "Always"
    assert "/run/padlock/ca.sock" in ca["startupProbe"]["exec"]["command"][-1]


def test_keyless_responder_in_the_ca_pod_mounts_no_hsm(
    default_objects: list[dict[str, Any]],
) -> None:
    pod = render.one(default_objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    ocsp = render.container(pod, "ocsp")
    mounts = {m["name"] for m in ocsp["volumeMounts"]}
    assert mounts == {"config", "chain", "tmp", "ledger"}
    assert "--sign" not in ocsp["args"]
    assert ocsp["args"][ocsp["args"].index("--host") + 1] == "0.0.0.0"


def test_operator_and_ca_share_only_the_socket_volume(
    default_objects: list[dict[str, Any]],
) -> None:
    """The operator container mounts no HSM, PIN, token or ledger volume: only the socket."""
    pod = render.one(default_objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    operator = render.container(pod, "operator")
    assert sorted(m["name"] for m in operator["volumeMounts"]) == ["ca-socket", "tmp"]
    assert "--ca-socket" in operator["args"]


def test_postgres_moves_the_responder_to_its_own_scaled_deployment(
    default_objects: list[dict[str, Any]], production_objects: list[dict[str, Any]]
) -> None:
    assert render.find(default_objects, "Deployment", "padlock-ocsp") == []
    assert render.find(default_objects, "HorizontalPodAutoscaler") == []
    ocsp = render.one(production_objects, "Deployment", "padlock-ocsp")
    hpa = render.one(production_objects, "HorizontalPodAutoscaler", "padlock-ocsp")
    assert hpa["spec"]["minReplicas"] == 3
    assert render.one(production_objects, "PodDisruptionBudget", "padlock-ocsp")
    ca_pod = render.one(production_objects, "Deployment", "padlock")["spec"]["template"]
    assert [c["name"] for c in ca_pod["spec"]["containers"]] == ["operator"]
    assert [c["name"] for c in ca_pod["spec"]["initContainers"]] == ["ca"]
    svc = render.one(production_objects, "Service", "padlock-ocsp")
    assert svc["spec"]["selector"] == ocsp["spec"]["selector"]["matchLabels"]


def test_external_hsm_is_mounted_and_named(production_objects: list[dict[str, Any]]) -> None:
    for deployment, container in (("padlock", "ca"), ("padlock-ocsp", "ocsp")):
        pod = render.one(production_objects, "Deployment", deployment)["spec"]["template"]["spec"]
        volumes = {v["name"]: v for v in pod["volumes"]}
        assert volumes["hsm-module"]["image"]["reference"].endswith("/vendor/hsm-client:7.4")
        assert "softhsm-tokens" not in volumes
        c = render.container(pod, container)
        mounts = {m["mountPath"] for m in c["volumeMounts"]}
        assert {"/opt/vendor-hsm", "/etc/vendor-hsm"} <= mounts
        env = {e["name"] for e in c["env"]}
        assert "VENDOR_HSM_CONF" in env
        assert "SOFTHSM2_CONF" not in env


def test_postgres_url_is_mounted_from_its_secret_not_rendered(
    production_objects: list[dict[str, Any]],
) -> None:
    ca = _ca_yaml(production_objects)
    assert ca["ledger"] == {"url_file": "/etc/padlock/ledger/url"}
    pod = render.one(production_objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["ledger-url"]["secret"]["secretName"] == "padlock-ledger"


def test_root_key_is_never_a_chart_input() -> None:
    values = (render.CHART / "values.yaml").read_text().lower()
    assert "root" not in yaml.safe_load(values).get("ca", {})
    assert "privatekey" not in values.replace(" ", "")
