"""manifests/examples: every file is valid for its schema and decodes into the models."""

from __future__ import annotations

import pathlib

import kubernetes_validate
import pytest

from padlock.api import group, labels
from padlock.api.wire import Model
from tests.unit.api import crdcheck
from tests.unit.api.test_models import SPEC_MODELS

EXAMPLES = sorted(crdcheck.EXAMPLES.glob("*.yaml"))
# kubernetes-validate's newest bundled schemas; the control plane runs 1.36.
KUBERNETES_SCHEMA_VERSION = "1.33"


def test_examples_cover_every_kind() -> None:
    kinds = {d["kind"] for p in EXAMPLES for d in crdcheck.load_yaml_documents(p)}
    assert {k.value for k in group.Kind} <= kinds
    assert "Deployment" in kinds


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_is_valid(path: pathlib.Path) -> None:
    for doc in crdcheck.load_yaml_documents(path):
        if doc["apiVersion"] == group.API_VERSION:
            assert crdcheck.errors(doc) == []
            model: type[Model] = SPEC_MODELS[group.Kind(doc["kind"])]
            assert model.from_dict(doc["spec"]).to_dict() == doc["spec"]
        else:
            kubernetes_validate.validate(doc, KUBERNETES_SCHEMA_VERSION, strict=True)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_examples_leave_the_namespace_to_kubectl(path: pathlib.Path) -> None:
    for doc in crdcheck.load_yaml_documents(path):
        assert "namespace" not in doc["metadata"], f"{path.name} pins a namespace"


def test_reload_example_opts_in_and_mounts_the_example_secret() -> None:
    (deployment,) = crdcheck.load_yaml_documents(crdcheck.EXAMPLES / "deployment-reload.yaml")
    (cert,) = crdcheck.load_yaml_documents(crdcheck.EXAMPLES / "certificate.yaml")
    assert deployment["metadata"]["annotations"][labels.RELOAD] == "true"
    volumes = deployment["spec"]["template"]["spec"]["volumes"]
    assert {"name": "tls", "secret": {"secretName": cert["spec"]["secretName"]}} in volumes
