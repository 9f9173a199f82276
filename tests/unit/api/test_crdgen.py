"""padlock.api.crdgen: the committed crds/ are exactly what the models generate, and the
generated schemas carry what the API server needs (descriptions, rules, names)."""

from __future__ import annotations

import pathlib
from collections.abc import Iterator
from typing import Any

import pytest
import yaml

from padlock.api import crdgen, group
from tests.unit.api import crdcheck


def test_committed_crds_equal_the_generated_ones() -> None:
    generated = crdgen.generate()
    committed = {p.name: p.read_text(encoding="utf-8") for p in crdcheck.CRDS.glob("*.yaml")}
    assert sorted(committed) == sorted(generated), "crds/ holds other files than the models"
    for name, text in generated.items():
        assert committed[name] == text, (
            f"crds/{name} is stale: run `python -m padlock.api.crdgen --out crds/`"
        )


def test_check_mode_reports_a_stale_file_and_writes_nothing(
    tmp_path: pathlib.Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert crdgen.main(["--out", str(tmp_path)]) == 0
    assert crdgen.main(["--out", str(tmp_path), "--check"]) == 0
    stale = tmp_path / "padlock.dev_certificates.yaml"
    stale.write_text("# edited by hand\n", encoding="utf-8")
    assert crdgen.main(["--out", str(tmp_path), "--check"]) == 1
    assert "padlock.dev_certificates.yaml" in capsys.readouterr().err
    assert stale.read_text(encoding="utf-8") == "# edited by hand\n"


def _walk(schema: dict[str, Any], path: str) -> Iterator[tuple[str, dict[str, Any]]]:
    yield path, schema
    for name, prop in schema.get("properties", {}).items():
        yield from _walk(prop, f"{path}.{name}")
    if "items" in schema:
        yield from _walk(schema["items"], f"{path}[]")
    if isinstance(schema.get("additionalProperties"), dict):
        yield from _walk(schema["additionalProperties"], f"{path}{{}}")


@pytest.mark.parametrize("resource", crdgen.RESOURCES, ids=lambda r: r.names.kind.value)
def test_every_spec_and_status_field_has_a_description(resource: crdgen.Resource) -> None:
    root = crdgen.crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for part in ("spec", "status"):
        for path, schema in _walk(root["properties"][part], part):
            if path.endswith("[]") or path.endswith("{}"):
                continue  # list items and map values are described by their field
            assert schema.get("description"), f"{resource.names.kind}: {path} has no description"


def test_spec_strings_and_lists_are_bounded() -> None:
    # The API server estimates each CEL rule's cost from maxLength/maxItems and refuses a CRD
    # whose rules could cost too much; bounding every spec string and list keeps that true
    # when someone adds a rule.
    for resource in crdgen.RESOURCES:
        root = crdgen.crd(resource)["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        for path, schema in _walk(root["properties"]["spec"], "spec"):
            if path.endswith("{}"):
                continue  # label/annotation values: no rule reads them
            if schema.get("type") == "array":
                assert "maxItems" in schema, f"{resource.names.kind}: {path}"
            if schema.get("type") == "string" and "enum" not in schema:
                assert "maxLength" in schema, f"{resource.names.kind}: {path} is unbounded"


def test_names_do_not_clash_with_cert_manager() -> None:
    cert_manager_short_names = {"cert", "certs", "cr", "crs"}
    ours = [s for n in group.ALL for s in n.short_names]
    assert len(ours) == len(set(ours))
    assert not cert_manager_short_names & set(ours)
    for resource in crdgen.RESOURCES:
        crd = crdgen.crd(resource)
        assert crd["metadata"]["name"].endswith(".padlock.dev")
        assert crd["spec"]["names"]["categories"] == ["padlock"]
        assert crd["spec"]["versions"][0]["subresources"] == {"status": {}}


def test_certificate_printer_columns() -> None:
    (resource,) = [r for r in crdgen.RESOURCES if r.names is group.CERTIFICATE]
    columns = crdgen.crd(resource)["spec"]["versions"][0]["additionalPrinterColumns"]
    default_view = [c["name"] for c in columns if not c.get("priority")]
    assert default_view == ["Ready", "Secret", "Issuer", "NotAfter", "Age"]


def test_generated_yaml_parses_back_to_the_crd() -> None:
    for resource in crdgen.RESOURCES:
        assert yaml.safe_load(crdgen.render(resource)) == crdgen.crd(resource)
