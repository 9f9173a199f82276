"""Render the padlock chart with the real helm binary and validate what comes out.

Used by tests/unit/chart (offline checks) and tests/integration/test_chart.py (install into
the local control plane). helm comes from tools/fetch-kubectl-helm.sh, fetched on first use.
"""

from __future__ import annotations

import copy
import functools
import os
import pathlib
import subprocess
from collections.abc import Iterable, Mapping
from typing import Any

import jsonschema  # type: ignore[import-untyped]
import kubernetes_validate
import yaml

REPO = pathlib.Path(__file__).resolve().parents[3]
CHART = REPO / "charts" / "padlock"
CI_VALUES = CHART / "ci" / "postgres-external-hsm-values.yaml"
KIND_VALUES = CHART / "values-kind.yaml"
# The Kubernetes version the local control plane is built at (tools/controlplane).
KUBE_VERSION = "1.36.0"
# Kinds whose schema we do not hold (Prometheus Operator CRDs): checked by the unit tests'
# own assertions instead.
UNVALIDATED_KINDS = frozenset(
    {("monitoring.coreos.com/v1", "ServiceMonitor"), ("monitoring.coreos.com/v1", "PrometheusRule")}
)


class HelmError(RuntimeError):
    """helm exited non-zero; the message is its stderr."""


def bin_dir() -> pathlib.Path:
    cache = os.environ.get("PADLOCK_BIN_CACHE")
    return pathlib.Path(cache) if cache else pathlib.Path.home() / ".cache/padlock/bin"


@functools.cache
def helm_binary() -> pathlib.Path:
    """The pinned helm, fetched once by tools/fetch-kubectl-helm.sh if not cached yet."""
    path = bin_dir() / "helm"
    if not os.access(path, os.X_OK):
        subprocess.run(["bash", str(REPO / "tools/fetch-kubectl-helm.sh")], check=True)
    return path


def helm(*args: str, kubeconfig: pathlib.Path | None = None) -> str:
    """Run helm; return stdout or raise HelmError with stderr (minus helm's symlink notes)."""
    return helm_run(*args, kubeconfig=kubeconfig).stdout


def helm_run(
    *args: str, kubeconfig: pathlib.Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Run helm; return the finished process (stderr holds API warnings) or raise HelmError."""
    cmd = [str(helm_binary()), *args]
    if kubeconfig is not None:
        cmd.append(f"--kubeconfig={kubeconfig}")
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=REPO)
    proc.stderr = _without_symlink_notes(proc.stderr)
    if proc.returncode != 0:
        raise HelmError(proc.stderr)
    return proc


def _without_symlink_notes(stderr: str) -> str:
    # helm logs one INFO line per file it reads through the crds/ symlink; that is expected.
    return "\n".join(
        line for line in stderr.splitlines() if "found symbolic link in path" not in line
    ).strip()


def template(
    *values_files: pathlib.Path,
    sets: Iterable[str] = (),
    api_versions: Iterable[str] = (),
    include_crds: bool = False,
) -> list[dict[str, Any]]:
    """`helm template` the chart; return the rendered objects (empty documents dropped)."""
    args = ["template", "padlock", str(CHART), "--namespace", "pki"]
    for f in values_files:
        args += ["-f", str(f)]
    for s in sets:
        args += ["--set", s]
    for v in api_versions:
        args += ["--api-versions", v]
    if include_crds:
        args.append("--include-crds")
    return [d for d in yaml.safe_load_all(helm(*args)) if d]


def find(objects: Iterable[Mapping[str, Any]], kind: str, name: str | None = None) -> list[Any]:
    return [
        o for o in objects if o["kind"] == kind and (name is None or o["metadata"]["name"] == name)
    ]


def one(objects: Iterable[Mapping[str, Any]], kind: str, name: str | None = None) -> Any:
    found = find(objects, kind, name)
    assert len(found) == 1, f"expected one {kind} {name or ''}, got {len(found)}"
    return found[0]


def container(pod_spec: Mapping[str, Any], name: str) -> Any:
    """A container of a pod spec by name, regular or init (the CA is a native sidecar)."""
    found = [
        c
        for c in [*pod_spec.get("initContainers", []), *pod_spec["containers"]]
        if c["name"] == name
    ]
    assert len(found) == 1, f"expected one container {name}, got {len(found)}"
    return found[0]


@functools.cache
def crd_schemas() -> dict[tuple[str, str], dict[str, Any]]:
    """(apiVersion, kind) -> openAPIV3Schema of every version in crds/*.yaml."""
    schemas: dict[tuple[str, str], dict[str, Any]] = {}
    for path in sorted((REPO / "crds").glob("padlock.dev_*.yaml")):
        crd = yaml.safe_load(path.read_text())
        group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
        for version in crd["spec"]["versions"]:
            schemas[(f"{group}/{version['name']}", kind)] = version["schema"]["openAPIV3Schema"]
    return schemas


def _closed(schema: Any) -> Any:
    """The CRD schema with unknown fields refused (the API server would prune them silently)."""
    if isinstance(schema, list):
        return [_closed(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: _closed(v) for k, v in schema.items()}
    if (
        "properties" in schema
        and "additionalProperties" not in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
        out["properties"] = {**out["properties"], "apiVersion": {}, "kind": {}, "metadata": {}}
    return out


def validate(obj: Mapping[str, Any]) -> None:
    """Strict schema check: Kubernetes' own for built-in kinds, crds/ for padlock.dev kinds."""
    key = (obj["apiVersion"], obj["kind"])
    if key in UNVALIDATED_KINDS:
        return
    if obj["apiVersion"].startswith("padlock.dev/"):
        schema = crd_schemas().get(key)
        assert schema is not None, f"{key} has no CRD in crds/"
        jsonschema.validate(copy.deepcopy(dict(obj)), _closed(schema))
        return
    kubernetes_validate.validate(dict(obj), KUBE_VERSION, strict=True)
