"""Shared pytest set-up: fixture plug-ins live in tests/fixtures/, one per real dependency."""

pytest_plugins = [
    "tests.fixtures.softhsm",
    "tests.fixtures.postgres",
    "tests.fixtures.controlplane",
    "tests.fixtures.ca",
]
