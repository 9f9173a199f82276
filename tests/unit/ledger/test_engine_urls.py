"""Which ledger URLs padlock accepts, and what it tells the user about the rest."""

from __future__ import annotations

import pytest

from padlock.ca import config
from padlock.ledger import engine


def test_the_default_is_a_sqlite_file_beside_the_ca_config() -> None:
    parsed = engine.parse_url(config.LedgerSettings().url)
    assert parsed.get_backend_name() == "sqlite"
    assert parsed.database == "ledger.db"


def test_plain_postgresql_urls_use_psycopg_3() -> None:
    parsed = engine.parse_url("postgresql://padlock@db.internal/ledger")
    assert parsed.drivername == "postgresql+psycopg"


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("sqlite://", "in-memory SQLite"),
        ("sqlite:///:memory:", "in-memory SQLite"),
        ("postgresql+asyncpg://u@h/d", r"use postgresql\+psycopg://"),
        ("mysql://u@h/d", "backend 'mysql' is not supported"),
        ("not a url", "is not a database URL"),
    ],
)
def test_unsupported_urls_are_refused_with_the_reason(url: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        engine.parse_url(url)


def test_passwords_are_masked_in_messages() -> None:
    shown = engine.display_url("postgresql+psycopg://padlock:s3cret@db/ledger")
    assert "s3cret" not in shown
    assert "padlock:***@db" in shown
