"""An open, logged-in PKCS#11 token, and the signers for the keys inside it.

Called by the CA at start-up (`Token.open(module, token_label, pin_file=...)`, then
`token.load("intermediate")`) and by `padlock ca init-intermediate` (`token.generate(...)`).
Signing itself arrives through `hsm_key` objects handed to `cryptography`'s builders.

Threads: python-pkcs11 initialises the module with `C_Initialize(NULL)`, which per PKCS#11
v3.0 base §5.4 promises the module that no two threads call it at once; SoftHSM then turns its
own mutexes off. So every call into one module goes through that module's lock, and a token keeps
a single logged-in session. A session per thread without that lock is not merely slower: in
bench/bench_signing.py two threads signing on their own sessions crash SoftHSM (SIGSEGV or
CKR_GENERAL_ERROR) within a second. python-pkcs11 releases the GIL inside C_Sign, so while one
thread signs another can build its certificate; on the saturated 2-core test machine two threads
and one were equally fast. CA worker threads may share one `Token` freely.

Failure: when the session or library is lost (token removed, library error) the call raises
`TokenUnavailableError`, the token stays unusable and the CA reports unhealthy until it calls
`reconnect()`. Neither the PIN nor key material is ever logged or put into an error message.
"""

from __future__ import annotations

import contextlib
import threading
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import pkcs11
from pkcs11 import exceptions as p11err

from padlock.keys import base
from padlock.keys.pkcs11 import hsm_key, objects
from padlock.pki.algorithms import KeyAlgorithm

if TYPE_CHECKING:
    from pkcs11._pkcs11 import lib as P11Lib

# Errors after which the session cannot be trusted: the handle is gone, the device or library
# failed, or the login was lost (PKCS#11 v3.0 base §5.1.5 return values).
_SESSION_LOST: tuple[type[Exception], ...] = (
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


class _Module:
    """One loaded PKCS#11 library, shared by every `Token` of this process that uses it."""

    def __init__(self, path: str, lib: P11Lib) -> None:
        self.path = path
        self.lib = lib
        self.lock = threading.RLock()
        # Bumped on every C_Finalize/C_Initialize we do, so tokens know their session died.
        self.generation = 0
        # Login state is per application and token (PKCS#11 v3.0 base §5.6), so one `Token`
        # object per token label per process; a second open would share (and log out) the first.
        self.open_tokens: dict[str, Token] = {}

    def rescan(self) -> None:
        """Re-initialise the library so it sees tokens created since it was loaded."""
        with self.lock:
            # Every session of the process ends here, whether or not C_Finalize succeeds
            # (it fails when the library was already finalised under us).
            self.generation += 1
            with contextlib.suppress(p11err.PKCS11Error):
                self.lib.finalize()
            self.lib.initialize()


_MODULES: dict[str, _Module] = {}
_MODULES_LOCK = threading.Lock()


def _load_module(path: str) -> _Module:
    with _MODULES_LOCK:
        if path not in _MODULES:
            if not Path(path).is_file():
                raise base.KeyBackendError(f"PKCS#11 module {path} does not exist")
            try:
                _MODULES[path] = _Module(path, pkcs11.lib(path))
            except p11err.PKCS11Error as err:
                raise base.KeyBackendError(
                    f"cannot load PKCS#11 module {path}: {_describe(err)}"
                ) from err
        return _MODULES[path]


def _describe(err: Exception) -> str:
    text = str(err)
    return f"{type(err).__name__} ({text})" if text else type(err).__name__


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


class Token:
    """A logged-in session on one token of a PKCS#11 module. Make it with `Token.open()`."""

    def __init__(self, module: _Module, token_label: str, pin: str) -> None:
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
        token = cls(_load_module(str(module_path)), token_label, read_pin(pin, pin_file))
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
                f"cannot list the tokens of PKCS#11 module {self._module.path}: {_describe(err)}"
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
                f"cannot open a session on token {self.label!r}: {_describe(err)}"
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
        if isinstance(err, _SESSION_LOST) or type(err) is p11err.PKCS11Error:
            self._lost = f"{_describe(err)} while {doing}"
            self._keys.clear()
            return base.TokenUnavailableError(
                f"token {self.label!r} in {self._module.path} failed: {self._lost}; "
                "call reconnect()"
            )
        if isinstance(err, p11err.MechanismInvalid | p11err.MechanismParamInvalid):
            return base.UnsupportedSigningError(
                f"token {self.label!r} does not support this while {doing}: {_describe(err)}"
            )
        return base.KeyBackendError(f"token {self.label!r}: {_describe(err)} while {doing}")

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


class Pkcs11Signer:
    """A `base.Signer` for one key pair in a token. The public key is read once, at load."""

    def __init__(
        self, token: Token, label: str, algorithm: KeyAlgorithm, public: base.VerifyingKey
    ) -> None:
        self._token = token
        self._label = label
        self._algorithm = algorithm
        self._public = public
        self._private = hsm_key.for_signer(self)

    def __repr__(self) -> str:
        return (
            f"<Pkcs11Signer {self._label!r} ({self._algorithm.value}) "
            f"in token {self._token.label!r}>"
        )

    @property
    def label(self) -> str:
        return self._label

    @property
    def algorithm(self) -> KeyAlgorithm:
        return self._algorithm

    @property
    def token(self) -> Token:
        return self._token

    def private_key(self) -> base.SigningKey:
        return self._private

    def public_key(self) -> base.VerifyingKey:
        return self._public

    def sign_raw(self, mechanism: pkcs11.Mechanism, param: Any, data: bytes) -> bytes:
        return self._token.sign_raw(self._label, mechanism, param, data)
