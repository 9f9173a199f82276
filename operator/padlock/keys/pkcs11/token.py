"""An open, logged-in PKCS#11 token, and the signers for the keys inside it.

Called by the CA at start-up (`Token.open(module, token_label, pin_file=...)`, then
`token.load("intermediate")`) and by `padlock ca init-intermediate` (`token.generate(...)`).
Signing itself arrives through `hsm_key` objects handed to `cryptography`'s builders.

Threads: every call goes through the library's lock (`library.Library.lock`) and a token keeps
a single logged-in session, so CA worker threads may share one `Token` freely. A session per
thread without that lock crashes SoftHSM (bench/bench_signing.py); see
docs/design/20261127.pkcs11-sessions-and-threads.md.

Failure: when the session or library is lost (token removed, library error) the call raises
`TokenUnavailableError`, the token stays unusable and the CA reports unhealthy until it calls
`reconnect()`. Neither the PIN nor key material is ever logged or put into an error message.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, cast

import pkcs11
from pkcs11 import exceptions as p11err

from padlock.keys import base
from padlock.keys.pkcs11 import library, objects
from padlock.keys.pkcs11.pin import read_pin
from padlock.keys.pkcs11.signer import Pkcs11Signer
from padlock.pki.algorithms import KeyAlgorithm


class Token:
    """A logged-in session on one token of a PKCS#11 module. Make it with `Token.open()`."""

    def __init__(self, module: library.Library, token_label: str, pin: str) -> None:
        self._module = module
        self.label = token_label
        self.__pin = pin
        self._session: pkcs11.Session | None = None
        self._generation = -1
        self._lost: str | None = "not connected"
        self._keys: dict[str, pkcs11.PrivateKey] = {}

    def __repr__(self) -> str:
        state = "connected" if self._lost is None else self._lost
        return f"<Token {self.label!r} in {self._module.path}: {state}>"

    @classmethod
    def open(
        cls,
        module_path: str | Path,
        token_label: str,
        *,
        pin: str | None = None,
        pin_file: Path | None = None,
    ) -> Token:
        """Load the module, find the token by label, open a session and log in as user."""
        token = cls(library.load(str(module_path)), token_label, read_pin(pin, pin_file))
        with token._module.lock:
            if token_label in token._module.open_tokens:
                raise base.KeyBackendError(
                    f"token {token_label!r} is already open in this process; share that Token "
                    "(PKCS#11 login state is per process, closing one would log out both)"
                )
            try:
                token._connect()
            except base.KeyNotFoundError:
                # A token initialised after the library was loaded stays invisible until the
                # library runs C_Initialize again (SoftHSM scans its token directory only then).
                token._module.rescan()
                token._connect()
            token._module.open_tokens[token_label] = token
        return token

    @property
    def module_path(self) -> str:
        return self._module.path

    @property
    def connected(self) -> bool:
        """False after a lost session or `close()`, until `reconnect()` succeeds."""
        return self._lost is None

    def __enter__(self) -> Token:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # -- session management -------------------------------------------------------------

    def _find_token(self) -> pkcs11.Token:
        try:
            return self._module.lib.get_token(token_label=self.label)
        except p11err.NoSuchToken:
            present = sorted(t.label for t in self._module.lib.get_tokens() if t.label)
            raise base.KeyNotFoundError(
                f"no token labelled {self.label!r} in PKCS#11 module {self._module.path} "
                f"(tokens present: {', '.join(map(repr, present)) or 'none'})"
            ) from None
        except p11err.MultipleTokensReturned:
            raise base.KeyBackendError(
                f"more than one token is labelled {self.label!r} in {self._module.path}"
            ) from None
        except p11err.PKCS11Error as err:
            raise base.TokenUnavailableError(
                f"cannot list the tokens of {self._module.path}: {library.describe(err)}"
            ) from err

    def _connect(self) -> None:
        """Open and log in a fresh session. Caller holds the module lock."""
        self._keys.clear()
        self._session = None
        p11_token = self._find_token()
        try:
            session = p11_token.open(rw=True, user_pin=self.__pin)
        except p11err.UserAlreadyLoggedIn:
            # Login is per application and token (PKCS#11 v3.0 base §5.6). Only this object
            # logs in to this token, so the login is ours, left over from a session we lost;
            # anyone else's would mean the PIN was never checked, so refuse that.
            if self._module.open_tokens.get(self.label) is not self:
                raise base.KeyBackendError(
                    f"token {self.label!r} is already logged in by other code in this process"
                ) from None
            session = p11_token.open(rw=True)
        except (p11err.PinIncorrect, p11err.PinInvalid, p11err.PinLenRange):
            raise base.WrongPassphraseError(
                f"token {self.label!r} in {self._module.path} refused the user PIN"
            ) from None
        except p11err.PinLocked:
            raise base.KeyBackendError(
                f"token {self.label!r}: the user PIN is locked; the security officer must reset it"
            ) from None
        except p11err.PKCS11Error as err:
            raise base.TokenUnavailableError(
                f"cannot open a session on token {self.label!r}: {library.describe(err)}"
            ) from err
        self._session = session
        self._generation = self._module.generation
        self._lost = None

    def _live_session(self) -> pkcs11.Session:
        """The session to use now. Caller holds the module lock."""
        if self._lost is not None:
            raise base.TokenUnavailableError(
                f"token {self.label!r} in {self._module.path} is unavailable ({self._lost}); "
                "call reconnect()"
            )
        if self._generation != self._module.generation:
            # We re-initialised the library ourselves (rescan): a planned reopen, not a failure.
            self._connect()
        assert self._session is not None
        return self._session

    def _failure(self, err: p11err.PKCS11Error, doing: str) -> base.KeyBackendError:
        """Sort a PKCS#11 error: a lost session marks the token unavailable."""
        if isinstance(err, library.SESSION_LOST) or type(err) is p11err.PKCS11Error:
            self._lost = f"{library.describe(err)} while {doing}"
            self._keys.clear()
            return base.TokenUnavailableError(
                f"token {self.label!r} in {self._module.path} failed: {self._lost}; "
                "call reconnect()"
            )
        if isinstance(err, p11err.MechanismInvalid | p11err.MechanismParamInvalid):
            return base.UnsupportedSigningError(
                f"token {self.label!r} does not support this while {doing}: {library.describe(err)}"
            )
        return base.KeyBackendError(f"token {self.label!r}: {library.describe(err)} while {doing}")

    def reconnect(self) -> None:
        """Drop the old session and log in again, re-initialising the library if needed."""
        with self._module.lock:
            self._close_quietly()
            try:
                self._connect()
                return
            except (base.KeyBackendError, p11err.PKCS11Error) as err:
                first = err
            try:
                self._module.rescan()
                self._connect()
            except (base.KeyBackendError, p11err.PKCS11Error) as err:
                self._lost = f"reconnect failed: {err}"
                raise base.TokenUnavailableError(
                    f"token {self.label!r} in {self._module.path} is still unavailable: "
                    f"{first}; after re-initialising the library: {err}"
                ) from err

    def _close_quietly(self) -> None:
        session, self._session = self._session, None
        self._keys.clear()
        if session is not None and self._generation == self._module.generation:
            # An error here means the session is already gone; that is why we are here.
            with contextlib.suppress(p11err.PKCS11Error):
                session.close()

    def close(self) -> None:
        """Log out and close the session. Signers of this token stop working."""
        with self._module.lock:
            self._close_quietly()
            self._lost = "closed"
            if self._module.open_tokens.get(self.label) is self:
                del self._module.open_tokens[self.label]

    # -- keys -----------------------------------------------------------------------------

    def missing_mechanisms(self, algorithm: KeyAlgorithm) -> list[str]:
        """Mechanisms padlock needs for `algorithm` missing from the C_GetMechanismList answer."""
        with self._module.lock:
            session = self._live_session()
            try:
                offered = session.token.slot.get_mechanisms()
            except p11err.PKCS11Error as err:
                raise self._failure(err, "listing mechanisms") from err
        return [f"CKM_{m.name}" for m in objects.required_mechanisms(algorithm) if m not in offered]

    def check(self) -> None:
        """One cheap call (C_GenerateRandom) for health probes; raises if the session is gone."""
        with self._module.lock:
            session = self._live_session()
            try:
                session.generate_random(64)
            except p11err.PKCS11Error as err:
                raise self._failure(err, "checking the session") from err

    def generate(self, label: str, algorithm: KeyAlgorithm) -> Pkcs11Signer:
        """Generate a non-extractable key pair in the token; `KeyExistsError` if label is taken.

        `UnsupportedSigningError` names the mechanisms the token lacks (e.g. CKM_EDDSA).
        """
        missing = self.missing_mechanisms(algorithm)
        if missing:
            raise base.UnsupportedSigningError(
                f"token {self.label!r} cannot hold {algorithm.value} keys: it does not offer "
                + ", ".join(missing)
            )
        with self._module.lock:
            session = self._live_session()
            try:
                if objects.find_private(session, label) or objects.find_public(session, label):
                    raise base.KeyExistsError(
                        f"token {self.label!r} already holds a key labelled {label!r}"
                    )
                public, _private = objects.generate_keypair(session, label, algorithm)
                verifying = objects.read_public_key(public, algorithm)
            except p11err.PKCS11Error as err:
                raise self._failure(err, f"generating {algorithm.value} key {label!r}") from err
        return Pkcs11Signer(self, label, algorithm, verifying)

    def load(self, label: str) -> Pkcs11Signer:
        """The signer for an existing key pair; `KeyNotFoundError` names what is missing."""
        with self._module.lock:
            session = self._live_session()
            try:
                private = objects.find_private(session, label)
                public = objects.find_public(session, label)
                if private is None:
                    raise base.KeyNotFoundError(
                        f"token {self.label!r} holds no private key labelled {label!r}"
                    )
                if public is None:
                    raise base.KeyNotFoundError(
                        f"token {self.label!r} holds private key {label!r} but no public key "
                        "object with that label (padlock reads the public key from it)"
                    )
                algorithm = objects.algorithm_of(public)
                verifying = objects.read_public_key(public, algorithm)
            except p11err.PKCS11Error as err:
                raise self._failure(err, f"loading key {label!r}") from err
            self._keys[label] = private
        return Pkcs11Signer(self, label, algorithm, verifying)

    def sign_raw(self, label: str, mechanism: pkcs11.Mechanism, param: Any, data: bytes) -> bytes:
        """One C_SignInit + C_Sign with the private key `label` (used by `hsm_key`)."""
        with self._module.lock:
            session = self._live_session()
            try:
                key = self._keys.get(label)
                if key is None:
                    key = objects.find_private(session, label)
                    if key is None:
                        raise base.KeyNotFoundError(
                            f"token {self.label!r} no longer holds private key {label!r}"
                        )
                    self._keys[label] = key
                signing_key = cast(pkcs11.types.SignMixin, key)
                return signing_key.sign(data, mechanism=mechanism, mechanism_param=param)
            except p11err.PKCS11Error as err:
                raise self._failure(err, f"signing with key {label!r}") from err
