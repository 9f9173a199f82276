"""The issuing key's health: one token session, declared lost on failure, reopened in the
background.

Called by `padlock.ca.pipeline` (every signature goes through `IssuingKey.sign_with()`), by
`padlock.services.ca_http` (`/healthz` reads `healthy`; the app's cleanup context runs
`reconnect_forever()`), and by tests that pull the token away.

A lost session (token removed, PKCS#11 library error: the key backend raises
`TokenUnavailableError` / `KeyBackendError`) flips the key to unhealthy at once, so new
requests are refused with `HsmUnavailable` (HTTP 503) *before* anything is written; the
background task then reopens the token every `retry_interval` seconds until it works.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from padlock import metrics
from padlock.ca import errors
from padlock.keys import base

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Opens the token and returns the issuing key's signer; raises KeyBackendError on failure.
SignerOpener = Callable[[], base.Signer]


class IssuingKey:
    """The intermediate CA's signer, with health tracking and reconnection."""

    def __init__(self, opener: SignerOpener, *, retry_interval: float = 1.0) -> None:
        self._opener = opener
        self._retry_interval = retry_interval
        self._lock = threading.Lock()
        self._signer: base.Signer | None = None
        self._last_error = "token not opened yet"

    @property
    def healthy(self) -> bool:
        return self._signer is not None

    @property
    def last_error(self) -> str:
        return self._last_error

    def open(self) -> None:
        """Open the token now (blocking); KeyBackendError propagates to the caller."""
        signer = self._opener()
        with self._lock:
            self._signer = signer
        metrics.CA_HSM_UP.set(1)
        log.info("issuing key %r is available", signer.label)

    def sign_with(self, work: Callable[[base.SigningKey], T]) -> T:
        """Run `work(private_key)` (blocking, in a worker thread); a backend failure marks the
        key lost and raises `HsmUnavailable`."""
        signer = self._signer
        if signer is None:
            raise errors.HsmUnavailable(f"the HSM is unavailable: {self._last_error}")
        try:
            return work(signer.private_key())
        except base.UnsupportedSigningError:
            raise
        except base.KeyBackendError as exc:
            self.mark_lost(signer, exc)
            raise errors.HsmUnavailable(f"the HSM is unavailable: {exc}") from None

    def mark_lost(self, signer: base.Signer, exc: BaseException) -> None:
        """Declare the session `signer` came from dead (no-op if already replaced)."""
        with self._lock:
            if self._signer is signer:
                self._signer = None
                self._last_error = str(exc) or type(exc).__name__
                log.error("issuing key lost: %s; reconnecting in the background", exc)
        metrics.CA_HSM_UP.set(0)

    async def reconnect_forever(self) -> None:
        """Reopen the token whenever the key is lost; runs until cancelled."""
        loop = asyncio.get_running_loop()
        while True:
            if self._signer is None:
                try:
                    await loop.run_in_executor(None, self.open)
                except base.KeyBackendError as exc:
                    self._last_error = str(exc) or type(exc).__name__
                    log.warning("HSM reconnect failed: %s", exc)
            await asyncio.sleep(self._retry_interval)


def token_opener(module: str, token_label: str, pin_file: Path, key_label: str) -> SignerOpener:
    """An opener for the key `key_label` in a PKCS#11 token; keeps one `Token` and
    `reconnect()`s it after a loss (re-initialising the library if the token went away)."""
    from padlock.keys import pkcs11 as p11

    state: dict[str, p11.Token] = {}

    def open_signer() -> base.Signer:
        token = state.get("token")
        if token is None:
            token = state["token"] = p11.Token.open(module, token_label, pin_file=pin_file)
        elif not token.connected:
            token.reconnect()
        return token.load(key_label)

    return open_signer
