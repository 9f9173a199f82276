"""`Pkcs11Signer`: the `padlock.keys.base.Signer` for one key pair inside a token.

Made by `Token.generate()` and `Token.load()`; used by the CA like any other `Signer`. Its
private key is an `hsm_key` object whose `sign()` goes back to the token.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pkcs11

from padlock.keys import base
from padlock.keys.pkcs11 import hsm_key
from padlock.pki.algorithms import KeyAlgorithm

if TYPE_CHECKING:
    from padlock.keys.pkcs11.token import Token


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
