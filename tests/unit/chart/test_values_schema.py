"""A wrong value stops `helm template`/`helm install` with a message naming the value."""

from __future__ import annotations

import json

import pytest

from tests.unit.chart import render

# (what is wrong, --set arguments, text the error must contain)
WRONG_VALUES = [
    (
        "module not a string",
        ["hsm.pkcs11.module=3"],
        "at '/hsm/pkcs11/module': got number, want string",
    ),
    (
        "unknown ledger type",
        ["ledger.type=mysql"],
        "at '/ledger/type': value must be one of 'sqlite', 'postgres'",
    ),
    (
        "unknown hsm type",
        ["hsm.type=yubihsm"],
        "at '/hsm/type': value must be one of 'softhsm', 'pkcs11'",
    ),
    ("misspelt key", ["ocsp.replica=3"], "at '/ocsp': additional properties 'replica' not allowed"),
    ("root UID", ["securityContext.runAsUser=0"], "at '/securityContext/runAsUser'"),
    (
        "relative module path",
        ["hsm.type=pkcs11", "hsm.pkcs11.module=lib.so"],
        "at '/hsm/pkcs11/module'",
    ),
    ("token label too long", ["hsm.tokenLabel=" + "x" * 33], "at '/hsm/tokenLabel'"),
    ("bad alert window", ["monitoring.prometheusRule.notReadyFor=15 minutes"], "notReadyFor"),
    (
        "monitoring switch",
        ["monitoring.serviceMonitor.enabled=maybe"],
        "/monitoring/serviceMonitor/enabled",
    ),
    ("bad digest", ["image.digest=latest"], "at '/image/digest'"),
    ("CA metrics port zero", ["ca.metricsPort=0"], "at '/ca/metricsPort': minimum: got 0, want 1"),
    (
        "CA metrics port above 65535",
        ["ca.metricsPort=65536"],
        "at '/ca/metricsPort': maximum: got 65,536, want 65,535",
    ),
    (
        "CA metrics port not a number",
        ["ca.metricsPort=metrics"],
        "at '/ca/metricsPort': got string, want integer",
    ),
    (
        "CA and operator metrics on one port",
        ["ca.metricsPort=9402"],
        "ca.metricsPort and operator.metricsPort are both 9402",
    ),
    (
        "CA metrics on the in-pod responder's port",
        ["ca.metricsPort=8080"],
        "ca.metricsPort and ocsp.port are both 8080: the responder runs in the CA pod",
    ),
    (
        "operator metrics on the in-pod responder's port",
        ["operator.metricsPort=8080"],
        "operator.metricsPort and ocsp.port are both 8080",
    ),
    (
        "pkcs11 without module",
        ["hsm.type=pkcs11"],
        "hsm.pkcs11.module: set the absolute path of the PKCS#11 module",
    ),
    (
        "responder signing on demand in its own Deployment with SoftHSM",
        ["ledger.type=postgres", "ocsp.sign=true"],
        "SoftHSM's token is one PVC in the CA pod. Use hsm.type=pkcs11, set ocsp.inCAPod=true",
    ),
    (
        "HPA bounds",
        [
            "ledger.type=postgres",
            "ocsp.inCAPod=true",
            "ocsp.autoscaling.minReplicas=5",
            "ocsp.autoscaling.maxReplicas=2",
        ],
        "minReplicas (5) is greater than maxReplicas (2)",
    ),
]


@pytest.mark.parametrize(
    ("sets", "message"), [(s, m) for _, s, m in WRONG_VALUES], ids=[w[0] for w in WRONG_VALUES]
)
def test_wrong_value_fails_with_a_message_naming_it(sets: list[str], message: str) -> None:
    with pytest.raises(render.HelmError) as failure:
        render.template(sets=sets)
    assert message in str(failure.value)


def test_postgres_with_softhsm_works_when_the_responder_stays_in_the_ca_pod() -> None:
    objects = render.template(sets=["ledger.type=postgres", "ocsp.inCAPod=true", "ocsp.sign=true"])
    assert render.find(objects, "Deployment", "padlock-ocsp") == []


def test_ca_metrics_may_share_a_port_number_with_a_responder_in_its_own_pod() -> None:
    """With PostgreSQL the responder is its own Deployment: 8080 is free in the CA pod."""
    objects = render.template(sets=["ledger.type=postgres", "ca.metricsPort=8080"])
    pod = render.one(objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    assert render.container(pod, "ca")["ports"][0]["containerPort"] == 8080


def test_postgres_with_softhsm_runs_a_keyless_responder_deployment() -> None:
    """Without ocsp.sign the responder holds no key, so its own Deployment needs no HSM."""
    objects = render.template(sets=["ledger.type=postgres"])
    pod = render.one(objects, "Deployment", "padlock-ocsp")["spec"]["template"]["spec"]
    assert {v["name"] for v in pod["volumes"]} == {"tmp", "config", "chain", "ledger-url"}
    (container,) = pod["containers"]
    assert "--sign" not in container["args"]
    assert "env" not in container


def test_every_default_value_is_described_by_the_schema() -> None:
    """values.yaml and values.schema.json name the same keys (no key the schema forgot)."""
    import yaml

    schema = json.loads((render.CHART / "values.schema.json").read_text())
    values = yaml.safe_load((render.CHART / "values.yaml").read_text())

    def walk(v: object, s: dict[str, object], where: str) -> None:
        if not isinstance(v, dict) or "properties" not in s:
            return
        props = s["properties"]
        assert isinstance(props, dict)
        for key, sub in v.items():
            assert key in props, f"values.yaml key {where}{key} is missing from the schema"
            walk(sub, props[key], f"{where}{key}.")

    walk(values, schema, "")
