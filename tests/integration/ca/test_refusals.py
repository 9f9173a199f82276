"""Bad input is refused with 400 and a message; the only trace it leaves is an audit event."""

from __future__ import annotations

import json

import pytest
from cryptography.hazmat.primitives import serialization

from tests.fixtures.ca import CASetup, MakeCA, start_ca
from tests.integration.ca import helpers

pytestmark = pytest.mark.softhsm


def _root_pem(setup: CASetup) -> str:
    return setup.root.public_bytes(serialization.Encoding.PEM).decode()


BAD_REQUESTS = {
    # name: (body builder, expected error code, words the message must contain)
    "malformed-json": (lambda s: b'{"csr": "-----BEGIN', "malformed-json", "not JSON"),
    "not-a-csr": (
        lambda s: json.dumps(helpers.sign_body(_root_pem(s), "k1")).encode(),
        "csr-malformed",
        "PKCS#10",
    ),
    "too-large": (
        lambda s: json.dumps(helpers.sign_body("A" * 70_000, "k1")).encode(),
        "body-too-large",
        "65536 bytes",
    ),
    "unknown-profile": (
        lambda s: json.dumps(
            helpers.sign_body(helpers.make_csr(), "k1", profile="tls-banana")
        ).encode(),
        "unknown-profile",
        "tls-banana",
    ),
    "weak-key": (
        lambda s: json.dumps(helpers.sign_body(helpers.weak_rsa_csr(), "k1")).encode(),
        "weak-key",
        "1024",
    ),
    "missing-san": (
        lambda s: json.dumps(helpers.sign_body(helpers.make_csr(()), "k1")).encode(),
        "no-san",
        "subjectAltName",
    ),
    "missing-field": (
        lambda s: json.dumps(
            {k: v for k, v in helpers.sign_body(helpers.make_csr(), "k1").items() if k != "csr"}
        ).encode(),
        "missing-field",
        "'csr'",
    ),
    "lifetime-too-long": (
        lambda s: json.dumps(
            helpers.sign_body(helpers.make_csr(), "k1", lifetime_seconds=400 * 86400)
        ).encode(),
        "lifetime-too-long",
        "maximum",
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
async def test_bad_sign_request_is_400_with_message_and_only_an_audit_event(
    make_ca: MakeCA, case: str
) -> None:
    setup = make_ca()
    build, code, words = BAD_REQUESTS[case]
    async with start_ca(setup) as (_ca, _app):
        assert setup.config.listen.socket is not None
        audit_before = helpers.count(setup, "audit_event")
        status, _headers, body = await helpers.post_raw(
            setup.config.listen.socket, "/v1/sign", build(setup)
        )
    assert status == 400
    assert body["error"] == code
    assert words in body["message"]
    assert helpers.count(setup, "certificate") == 0
    assert helpers.count(setup, "audit_event") == audit_before + 1
    kind, _actor, details = helpers.last_audit_event(setup)
    assert (kind, details["code"]) == ("sign.refused", code)
