"""Signers for the key-backend conformance suite: every backend and every algorithm it offers.

Keys are made once per test module (RSA-3072 generation is slow: one per backend).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from padlock.keys import base, software
from padlock.keys.pkcs11 import Token
from padlock.pki.algorithms import KeyAlgorithm
from tests.fixtures.softhsm import SoftHSM, SoftHSMToken

ALGORITHMS = [
    KeyAlgorithm.RSA_2048,
    KeyAlgorithm.RSA_3072,
    KeyAlgorithm.EC_P256,
    KeyAlgorithm.EC_P384,
    KeyAlgorithm.ED25519,
]
BACKENDS = ["software", "pkcs11"]


@pytest.fixture(scope="session")
def keys_softhsm_token(softhsm: SoftHSM) -> SoftHSMToken:
    """A token of its own: the `token` fixture keeps it open all session, and a token may be
    open only once per process (other suites open the shared `softhsm_token` themselves)."""
    return softhsm.new_token("padlock-keys-tests")


@pytest.fixture(scope="session")
def token(keys_softhsm_token: SoftHSMToken) -> Iterator[Token]:
    """That token opened with its PIN file, as the CA does."""
    info = keys_softhsm_token
    opened = Token.open(info.module, info.label, pin_file=info.pin_file)
    yield opened
    opened.close()


@pytest.fixture(
    scope="module",
    params=[
        pytest.param(
            (backend, algorithm),
            id=f"{backend}-{algorithm.value}",
            marks=[pytest.mark.softhsm] if backend == "pkcs11" else [],
        )
        for backend in BACKENDS
        for algorithm in ALGORITHMS
    ],
)
def signer(request: pytest.FixtureRequest) -> base.Signer:
    """A freshly generated key; the PKCS#11 one lives in the session's SoftHSM token."""
    backend, algorithm = request.param
    label = f"{request.module.__name__.rsplit('.', 1)[-1]}-{algorithm.value}"
    if backend == "software":
        return software.generate(label, algorithm)
    token: Token = request.getfixturevalue("token")
    missing = token.missing_mechanisms(algorithm)
    if missing:
        pytest.skip(f"token {token.label!r} does not offer {', '.join(missing)}")
    return token.generate(label, algorithm)
