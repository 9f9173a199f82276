"""Offline stand-in for the API server's CRD validation, used by the unit tests in this folder.

Does what kube-apiserver does with a custom resource, minus storage: apply the schema's
defaults, validate against the OpenAPI v3 schema (with `jsonschema`), then evaluate every
`x-kubernetes-validations` CEL rule (with `cel-python`, plus the Kubernetes `isIP` function).
It reads the committed crds/*.yaml, so it checks what users would apply.
"""

from __future__ import annotations

import copy
import functools
import ipaddress
import pathlib
from collections.abc import Iterator
from typing import Any

import celpy
import jsonschema
import yaml
from celpy import celtypes

REPO = pathlib.Path(__file__).resolve().parents[3]
CRDS = REPO / "crds"
EXAMPLES = REPO / "manifests" / "examples"


def load_yaml_documents(path: pathlib.Path) -> list[dict[str, Any]]:
    with path.open(encoding="utf-8") as f:
        return [d for d in yaml.safe_load_all(f) if d]


@functools.cache
def crd_schemas() -> dict[str, dict[str, Any]]:
    """Kind → openAPIV3Schema of every committed CRD."""
    out = {}
    for path in sorted(CRDS.glob("*.yaml")):
        (crd,) = load_yaml_documents(path)
        (version,) = crd["spec"]["versions"]
        out[crd["spec"]["names"]["kind"]] = version["schema"]["openAPIV3Schema"]
    return out


def apply_defaults(schema: dict[str, Any], value: Any) -> Any:
    """Structural defaulting: fill absent properties that have a `default` (recursively)."""
    if not isinstance(value, dict) or schema.get("type") != "object":
        if isinstance(value, list) and "items" in schema:
            return [apply_defaults(schema["items"], item) for item in value]
        return value
    out = dict(value)
    for name, prop in schema.get("properties", {}).items():
        if name not in out and "default" in prop:
            out[name] = copy.deepcopy(prop["default"])
        if name in out:
            out[name] = apply_defaults(prop, out[name])
    return out


def _is_ip(value: celtypes.StringType) -> celtypes.BoolType:
    try:
        ipaddress.ip_address(str(value))
    except ValueError:
        return celtypes.BoolType(False)
    return celtypes.BoolType(True)


_ENV = celpy.Environment()
_FUNCTIONS = {"isIP": _is_ip}


@functools.cache
def _program(rule: str) -> celpy.Runner:
    return _ENV.program(_ENV.compile(rule), functions=_FUNCTIONS)


def _cel_errors(schema: dict[str, Any], value: Any, old: Any, path: str) -> Iterator[str]:
    for rule in schema.get("x-kubernetes-validations", []):
        uses_old = "oldSelf" in rule["rule"]
        if uses_old and old is None:
            continue  # transition rules run on updates only
        activation = {"self": celpy.json_to_cel(value)}
        if uses_old:
            activation["oldSelf"] = celpy.json_to_cel(old)
        program = _program(rule["rule"])
        result = program.evaluate(activation)
        if result is not True and result != celtypes.BoolType(True):
            yield f"{path}: {rule['message']}"
    if isinstance(value, dict):
        for name, prop in schema.get("properties", {}).items():
            if name in value:
                old_item = old.get(name) if isinstance(old, dict) else None
                yield from _cel_errors(prop, value[name], old_item, f"{path}.{name}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            yield from _cel_errors(schema["items"], item, None, f"{path}[{i}]")


def errors(obj: dict[str, Any], old: dict[str, Any] | None = None) -> list[str]:
    """Why the API server would refuse `obj` (a whole custom resource); [] if it accepts it."""
    schema = crd_schemas()[obj["kind"]]
    obj = apply_defaults(schema, obj)
    old = apply_defaults(schema, old) if old is not None else None
    validator = jsonschema.Draft202012Validator(
        schema, format_checker=jsonschema.Draft202012Validator.FORMAT_CHECKER
    )
    found = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
    if found:
        return found  # the API server also reports schema errors before CEL ones
    return list(_cel_errors(schema, obj, old, "<root>"))


def cel_errors(obj: dict[str, Any]) -> list[str]:
    """Only the CEL rules' verdicts, even on an object the schema refuses (the API server
    evaluates both and reports every failure)."""
    schema = crd_schemas()[obj["kind"]]
    return list(_cel_errors(schema, apply_defaults(schema, obj), None, "<root>"))
