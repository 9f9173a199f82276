"""The loaded PKCS#11 libraries of this process: one per module path, each with its lock.

Called by `padlock.keys.pkcs11.token` only. Why one lock per library, and the generation
counter, is explained in docs/design/20261127.pkcs11-sessions-and-threads.md: python-pkcs11
initialises modules with `C_Initialize(NULL)`, so the module may not be entered by two threads
at once (PKCS#11 v3.0 base §5.4), and SoftHSM then runs without its own mutexes.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING

import pkcs11
from pkcs11 import exceptions as p11err

from padlock.keys import base

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as P11Lib

# Errors after which the session cannot be trusted: the handle is gone, the device or library
# failed, or the login was lost (PKCS#11 v3.0 base §5.1.5 return values).
SESSION_LOST: tuple[type[Exception], ...] = (
    p11err.SessionHandleInvalid,
    p11err.SessionClosed,
    p11err.DeviceRemoved,
    p11err.DeviceError,
    p11err.DeviceMemory,
    p11err.TokenNotPresent,
    p11err.TokenNotRecognised,
    p11err.GeneralError,
    p11err.FunctionFailed,
    p11err.HostMemory,
    p11err.UserNotLoggedIn,
    p11err.KeyHandleInvalid,
    p11err.ObjectHandleInvalid,
    p11err.SlotIDInvalid,
)


class Library:
    """One loaded PKCS#11 library, shared by every `Token` of this process that uses it."""

    def __init__(self, path: str, lib: P11Lib) -> None:
        self.path = path
        self.lib = lib
        self.lock = threading.RLock()
        # Bumped on every C_Finalize/C_Initialize we do, so tokens know their session died.
        self.generation = 0
        # Login state is per application and token (PKCS#11 v3.0 base §5.6), so one `Token`
        # object per token label per process; a second open would share (and log out) the first.
        self.open_tokens: dict[str, object] = {}

    def rescan(self) -> None:
        """Re-initialise the library so it sees tokens created since it was loaded."""
        with self.lock:
            # Every session of the process ends here, whether or not C_Finalize succeeds
            # (it fails when the library was already finalised under us).
            self.generation += 1
            with contextlib.suppress(p11err.PKCS11Error):
                self.lib.finalize()
            self.lib.initialize()


_LIBRARIES: dict[str, Library] = {}
_LIBRARIES_LOCK = threading.Lock()


def load(path: str) -> Library:
    """The process-wide `Library` for a module path, loading (C_Initialize) it on first use."""
    with _LIBRARIES_LOCK:
        if path not in _LIBRARIES:
            if not Path(path).is_file():
                raise base.KeyBackendError(f"PKCS#11 module {path} does not exist")
            try:
                _LIBRARIES[path] = Library(path, pkcs11.lib(path))
            except p11err.PKCS11Error as err:
                raise base.KeyBackendError(
                    f"cannot load PKCS#11 module {path}: {describe(err)}"
                ) from err
        return _LIBRARIES[path]


def describe(err: Exception) -> str:
    """An error's class and text, for messages (PKCS#11 errors carry no secrets)."""
    text = str(err)
    return f"{type(err).__name__} ({text})" if text else type(err).__name__
