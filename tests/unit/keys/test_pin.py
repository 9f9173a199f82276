"""Reading the HSM user PIN: from a string or from a file (a mounted Kubernetes Secret)."""

from __future__ import annotations

from pathlib import Path

import pytest

from padlock.keys import base
from padlock.keys.pkcs11 import read_pin


def test_pin_file_first_line_is_the_pin(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("123456\n", encoding="utf-8")
    assert read_pin(pin_file=pin_file) == "123456"


def test_empty_pin_file_is_refused(tmp_path: Path) -> None:
    pin_file = tmp_path / "pin"
    pin_file.write_text("", encoding="utf-8")
    with pytest.raises(base.KeyBackendError, match="is empty"):
        read_pin(pin_file=pin_file)


def test_missing_pin_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(base.KeyBackendError, match=r"cannot read PIN file .*absent"):
        read_pin(pin_file=tmp_path / "absent")


def test_exactly_one_pin_source_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="exactly one"):
        read_pin()
    with pytest.raises(ValueError, match="exactly one"):
        read_pin("1234", tmp_path / "pin")
