"""The ledger suite runs once per backend: a SQLite file and a real PostgreSQL database."""

from __future__ import annotations

import pathlib

import pytest

from tests.integration.ledger import certs


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def ledger_url(request: pytest.FixtureRequest, tmp_path: pathlib.Path) -> str:
    """A URL to an empty ledger database on each backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    url: str = request.getfixturevalue("postgres_database_url")
    return url


@pytest.fixture(scope="session")
def software_ca() -> certs.SoftwareCA:
    return certs.SoftwareCA()
