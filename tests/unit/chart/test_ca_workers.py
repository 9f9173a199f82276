"""`ca.workers` reaches ca.yaml `workers` (default 2) and the schema refuses fewer than 1."""

from __future__ import annotations

import pathlib
from typing import Any

import pytest

from padlock.ca import config
from tests.unit.chart import render


def _loaded(objects: list[dict[str, Any]], tmp_path: pathlib.Path) -> config.CAConfig:
    cm = render.one(objects, "ConfigMap", "padlock-config")
    path = tmp_path / "ca.yaml"
    path.write_text(cm["data"]["ca.yaml"])
    return config.load(path)


def test_the_chart_runs_two_ca_workers_by_default(
    default_objects: list[dict[str, Any]], tmp_path: pathlib.Path
) -> None:
    assert _loaded(default_objects, tmp_path).workers == 2


def test_ca_workers_value_reaches_ca_yaml(tmp_path: pathlib.Path) -> None:
    assert _loaded(render.template(sets=["ca.workers=1"]), tmp_path).workers == 1


def test_values_schema_refuses_zero_ca_workers() -> None:
    with pytest.raises(render.HelmError) as refused:
        render.template(sets=["ca.workers=0"])
    assert "workers" in str(refused.value)
