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
from typing import Any, TypeVar

from padlock import metrics
from padlock.ca import errors
from padlock.keys import base

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Opens the token and returns the issuing key's signer; raises KeyBackendError on failure.
SignerOpener = Callable[[], base.Signer]


class IssuingKey:
    """The intermediate CA's signer, with health tracking and reconnection."""

    def __init__(
        self,
        opener: SignerOpener,
        *,
        retry_interval: float = 1.0,
        probe_interval: float = 5.0,
    ) -> None:
        self._opener = opener
        self._retry_interval = retry_interval
        self._probe_interval = probe_interval
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
        """Reopen the token whenever the key is lost, and probe it while it is up (so
        `/healthz` notices a removed token between requests); runs until cancelled."""
        loop = asyncio.get_running_loop()
        since_probe = 0.0
        while True:
            signer = self._signer
            if signer is None:
                try:
                    await loop.run_in_executor(None, self.open)
                except Exception as exc:  # a backend may leak its library's own errors
                    self._last_error = str(exc) or type(exc).__name__
                    log.warning("HSM reconnect failed: %s", self._last_error)
            elif since_probe >= self._probe_interval:
                since_probe = 0.0
                probe = getattr(self._opener, "probe", None)
                if probe is not None:
                    try:
                        await loop.run_in_executor(None, probe)
                    except Exception as exc:
                        self.mark_lost(signer, exc)
            await asyncio.sleep(self._retry_interval)
            since_probe += self._retry_interval

    def close(self) -> None:
        """Close the token session (if the opener holds one)."""
        with self._lock:
            self._signer = None
            self._last_error = "closed"
        close = getattr(self._opener, "close", None)
        if close is not None:
            close()
        metrics.CA_HSM_UP.set(0)


class TokenKeySource:
    """Opens the key `key_label` in a PKCS#11 token. Keeps one `Token` (PKCS#11 login state
    is per process) and `reconnect()`s it after a loss, re-initialising the library if the
    token went away. Calling the source opens the key; `close()` logs out."""

    def __init__(self, module: str, token_label: str, pin_file: Path, key_label: str) -> None:
        self.module = module
        self.token_label = token_label
        self.pin_file = pin_file
        self.key_label = key_label
        self._token: Any = None

    def __call__(self) -> base.Signer:
        from padlock.keys import pkcs11 as p11

        if self._token is None:
            self._token = p11.Token.open(self.module, self.token_label, pin_file=self.pin_file)
        elif not self._token.connected:
            self._token.reconnect()
        signer: base.Signer = self._token.load(self.key_label)
        return signer

    def load_key(self, key_label: str) -> base.Signer:
        """Another key of the same token (the delegated OCSP responder key): a process may
        hold only one `Token` per token, so other keys are loaded through this source's."""
        self()
        signer: base.Signer = self._token.load(key_label)
        return signer

    def probe(self) -> None:
        """Touch the token (find the key) so a removed token is noticed between requests."""
        if self._token is None:
            raise base.TokenUnavailableError(f"token {self.token_label!r} is not open")
        self._token.load(self.key_label)

    def close(self) -> None:
        if self._token is not None:
            self._token.close()
            self._token = None


def token_opener(module: str, token_label: str, pin_file: Path, key_label: str) -> TokenKeySource:
    """The `SignerOpener` for the config's PKCS#11 token and key label."""
    return TokenKeySource(module, token_label, pin_file, key_label)
