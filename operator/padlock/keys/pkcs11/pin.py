"""The HSM user PIN: given directly, or read from a file (a mounted Kubernetes Secret).

Called by `Token.open()`. The PIN is never logged and never appears in an error message.
"""

from __future__ import annotations

from pathlib import Path

from padlock.keys import base


def read_pin(pin: str | None = None, pin_file: Path | None = None) -> str:
    """The user PIN, given directly or as the first line of a file (a mounted Secret)."""
    if (pin is None) == (pin_file is None):
        raise ValueError("give exactly one of pin or pin_file")
    if pin_file is not None:
        try:
            lines = pin_file.read_text(encoding="utf-8").splitlines()
        except OSError as err:
            raise base.KeyBackendError(f"cannot read PIN file {pin_file}: {err.strerror}") from None
        pin = lines[0] if lines else ""
        if not pin:
            raise base.KeyBackendError(f"PIN file {pin_file} is empty")
    assert pin is not None
    if not pin:
        raise ValueError("the PIN is empty")
    return pin
