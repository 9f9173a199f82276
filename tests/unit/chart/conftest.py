"""Rendered chart fixtures shared by the chart unit tests (one helm run per values set)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.unit.chart import render


@pytest.fixture(scope="session")
def default_objects() -> list[dict[str, Any]]:
    """The chart with its default values: SoftHSM + SQLite, responder in the CA pod."""
    return render.template()


@pytest.fixture(scope="session")
def production_objects() -> list[dict[str, Any]]:
    """ci/postgres-external-hsm-values.yaml: PostgreSQL, vendor PKCS#11, responder Deployment."""
    return render.template(render.CI_VALUES)
