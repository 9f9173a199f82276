"""ca.yaml `workers`: validated, and how pkilint processes are divided among the workers."""

from __future__ import annotations

from pathlib import Path

import pytest

from padlock.ca import config


def _load(tmp_path: Path, text: str) -> config.CAConfig:
    path = tmp_path / "ca.yaml"
    path.write_text(text)
    return config.load(path)


def test_one_worker_is_the_default(tmp_path: Path) -> None:
    assert _load(tmp_path, "{}").workers == 1


@pytest.mark.parametrize("value", ["0", "-1"])
def test_fewer_than_one_worker_is_refused_with_the_value(tmp_path: Path, value: str) -> None:
    with pytest.raises(config.ConfigError, match=f"workers must be >= 1, got {value}"):
        _load(tmp_path, f"workers: {value}\n")


def test_workers_must_be_an_integer(tmp_path: Path) -> None:
    with pytest.raises(config.ConfigError, match="field workers must be int"):
        _load(tmp_path, "workers: two\n")


@pytest.mark.parametrize(
    ("processes", "workers", "each"), [(2, 1, 2), (2, 2, 1), (3, 2, 2), (1, 4, 1), (0, 2, 0)]
)
def test_lint_processes_are_divided_among_workers_rounding_up(
    tmp_path: Path, processes: int, workers: int, each: int
) -> None:
    loaded = _load(tmp_path, f"workers: {workers}\nlint: {{processes: {processes}}}\n")
    assert loaded.per_worker_lint_processes() == each


def test_access_log_is_off_unless_asked(tmp_path: Path) -> None:
    assert _load(tmp_path, "{}").listen.access_log is False
    assert _load(tmp_path, "listen: {access_log: true}\n").listen.access_log is True
