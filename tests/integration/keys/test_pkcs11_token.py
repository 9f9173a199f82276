"""What only the PKCS#11 backend promises: keys stay in the token, sessions fail loudly.

Runs against real SoftHSM2 tokens made for this test session.
"""

from __future__ import annotations

import concurrent.futures
import copy
import datetime
import pickle
import subprocess
import sys
import textwrap
from collections.abc import Callable

import pkcs11
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.x509.oid import NameOID
from pkcs11 import Attribute, ObjectClass
from pkcs11 import exceptions as p11err

from padlock.keys import base
from padlock.keys.pkcs11 import Pkcs11Signer, Token
from padlock.pki.algorithms import KeyAlgorithm
from tests.fixtures.softhsm import SoftHSMToken

pytestmark = pytest.mark.softhsm

NOW = datetime.datetime(2026, 11, 27, 12, 0, tzinfo=datetime.UTC)


@pytest.fixture(scope="module")
def ec_signer(token: Token) -> Pkcs11Signer:
    return token.generate("token-tests-p256", KeyAlgorithm.EC_P256)


@pytest.fixture(scope="module")
def rsa_signer(token: Token) -> Pkcs11Signer:
    return token.generate("token-tests-rsa2048", KeyAlgorithm.RSA_2048)


@pytest.fixture(scope="module")
def ed_signer(token: Token) -> Pkcs11Signer:
    return token.generate("token-tests-ed25519", KeyAlgorithm.ED25519)


def _leaf(signer: base.Signer, serial: int) -> x509.Certificate:
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"leaf {serial}")])
    return (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(signer.public_key())
        .serial_number(serial)
        .not_valid_before(NOW)
        .not_valid_after(NOW + datetime.timedelta(hours=1))
        .sign(signer.private_key(), hashes.SHA256())
    )


def _raw_object(info: SoftHSMToken, label: str, cls: ObjectClass) -> dict[str, object]:
    """Read a key's attributes through python-pkcs11 directly, as any other program could."""
    lib = pkcs11.lib(info.module)
    # The process is logged in already (the `token` fixture), so a PIN-less session sees
    # private objects; it must not log in again.
    session = lib.get_token(token_label=info.label).open()
    try:
        key = session.get_key(object_class=cls, label=label)
        result: dict[str, object] = {}
        for attribute in (
            Attribute.TOKEN,
            Attribute.PRIVATE,
            Attribute.SENSITIVE,
            Attribute.EXTRACTABLE,
            Attribute.ALWAYS_SENSITIVE,
            Attribute.NEVER_EXTRACTABLE,
        ):
            result[attribute.name] = key[attribute]
        for secret in (Attribute.VALUE, Attribute.PRIVATE_EXPONENT, Attribute.PRIME_1):
            try:
                result[secret.name] = key[secret]
            except (p11err.AttributeSensitive, p11err.AttributeTypeInvalid) as err:
                result[secret.name] = type(err)
        return result
    finally:
        session.close()


def test_generated_private_keys_are_sensitive_and_their_values_cannot_be_read(
    keys_softhsm_token: SoftHSMToken, ec_signer: Pkcs11Signer, rsa_signer: Pkcs11Signer
) -> None:
    ec_attrs = _raw_object(keys_softhsm_token, ec_signer.label, ObjectClass.PRIVATE_KEY)
    rsa_attrs = _raw_object(keys_softhsm_token, rsa_signer.label, ObjectClass.PRIVATE_KEY)
    for attrs in (ec_attrs, rsa_attrs):
        assert attrs["TOKEN"] is True
        assert attrs["PRIVATE"] is True
        assert attrs["SENSITIVE"] is True
        assert attrs["EXTRACTABLE"] is False
        assert attrs["ALWAYS_SENSITIVE"] is True
        assert attrs["NEVER_EXTRACTABLE"] is True
    # PKCS#11 v3.0 base §5.7.5 C_GetAttributeValue: CKR_ATTRIBUTE_SENSITIVE for secret parts.
    assert ec_attrs["VALUE"] is p11err.AttributeSensitive
    assert rsa_attrs["PRIVATE_EXPONENT"] is p11err.AttributeSensitive
    assert rsa_attrs["PRIME_1"] is p11err.AttributeSensitive


def test_key_material_methods_raise(
    ec_signer: Pkcs11Signer, rsa_signer: Pkcs11Signer, ed_signer: Pkcs11Signer
) -> None:
    for signer in (ec_signer, rsa_signer, ed_signer):
        key = signer.private_key()
        with pytest.raises(base.KeyMaterialUnavailableError, match="cannot be exported"):
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        with pytest.raises(base.KeyMaterialUnavailableError, match="pickled"):
            pickle.dumps(key)
        assert copy.deepcopy(key) is key
        assert signer.label in repr(key)
    ec_key = ec_signer.private_key()
    rsa_key = rsa_signer.private_key()
    ed_key = ed_signer.private_key()
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    assert isinstance(ed_key, ed25519.Ed25519PrivateKey)
    with pytest.raises(base.KeyMaterialUnavailableError):
        ec_key.private_numbers()
    with pytest.raises(base.KeyMaterialUnavailableError):
        rsa_key.private_numbers()
    with pytest.raises(base.KeyMaterialUnavailableError):
        ed_key.private_bytes_raw()
    with pytest.raises(base.UnsupportedSigningError, match="signing key"):
        rsa_key.decrypt(b"x" * 256, padding.PKCS1v15())
    with pytest.raises(base.UnsupportedSigningError, match="signing key"):
        ec_key.exchange(ec.ECDH(), ec.generate_private_key(ec.SECP256R1()).public_key())


def test_weak_or_unknown_signing_requests_are_refused(
    ec_signer: Pkcs11Signer, rsa_signer: Pkcs11Signer
) -> None:
    ec_key = ec_signer.private_key()
    rsa_key = rsa_signer.private_key()
    assert isinstance(ec_key, ec.EllipticCurvePrivateKey)
    assert isinstance(rsa_key, rsa.RSAPrivateKey)
    with pytest.raises(base.UnsupportedSigningError, match="not sha1"):
        ec_key.sign(b"data", ec.ECDSA(hashes.SHA1()))  # noqa: S303
    with pytest.raises(base.UnsupportedSigningError, match="not sha1"):
        rsa_key.sign(b"data", padding.PKCS1v15(), hashes.SHA1())  # noqa: S303
    with pytest.raises(base.UnsupportedSigningError, match="AUTO is only for verifying"):
        rsa_key.sign(
            b"data",
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=padding.PSS.AUTO),
            hashes.SHA256(),
        )
    with pytest.raises(base.UnsupportedSigningError, match="PKCS1v15 or PSS"):
        rsa_key.sign(
            b"data",
            padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None),
            hashes.SHA256(),
        )


def test_rsa_pss_with_maximum_salt_verifies(rsa_signer: Pkcs11Signer) -> None:
    key = rsa_signer.private_key()
    assert isinstance(key, rsa.RSAPrivateKey)
    pss = padding.PSS(mgf=padding.MGF1(hashes.SHA384()), salt_length=padding.PSS.MAX_LENGTH)
    signature = key.sign(b"data", pss, hashes.SHA384())
    public = rsa_signer.public_key()
    assert isinstance(public, rsa.RSAPublicKey)
    public.verify(signature, b"data", pss, hashes.SHA384())


def test_softhsm_offers_every_mechanism_padlock_needs(token: Token) -> None:
    # SoftHSM 2.6 built with OpenSSL has CKM_EC_EDWARDS_KEY_PAIR_GEN and CKM_EDDSA.
    for algorithm in KeyAlgorithm:
        assert token.missing_mechanisms(algorithm) == []


def test_generate_refuses_a_label_that_is_taken(token: Token, ec_signer: Pkcs11Signer) -> None:
    with pytest.raises(base.KeyExistsError, match="already holds a key labelled"):
        token.generate(ec_signer.label, KeyAlgorithm.EC_P384)


def test_load_of_an_unknown_label_names_the_label(token: Token) -> None:
    with pytest.raises(base.KeyNotFoundError, match="no private key labelled 'no-such-key'"):
        token.load("no-such-key")


def test_keys_persist_in_a_token_made_after_the_library_was_loaded(
    token: Token,
    ec_signer: Pkcs11Signer,
    softhsm_token_factory: Callable[..., SoftHSMToken],
) -> None:
    fresh = softhsm_token_factory()
    # The library was loaded before this token existed: open() must re-scan for it.
    first = Token.open(fresh.module, fresh.label, pin=fresh.pin)
    generated = first.generate("persisted", KeyAlgorithm.EC_P384)
    first.close()
    closed_key = generated.private_key()
    assert isinstance(closed_key, ec.EllipticCurvePrivateKey)
    with pytest.raises(base.TokenUnavailableError, match="closed"):
        closed_key.sign(b"x", ec.ECDSA(hashes.SHA384()))

    second = Token.open(fresh.module, fresh.label, pin_file=fresh.pin_file)
    try:
        loaded = second.load("persisted")
        assert loaded.algorithm is KeyAlgorithm.EC_P384
        der, spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        assert loaded.public_key().public_bytes(der, spki) == generated.public_key().public_bytes(
            der, spki
        )
        _leaf(loaded, 1).verify_directly_issued_by(_leaf(loaded, 1))
    finally:
        second.close()
    # The re-scan re-initialised the library under the session token: it reopened by itself.
    assert token.connected
    _leaf(ec_signer, 2).verify_directly_issued_by(_leaf(ec_signer, 2))


def test_a_wrong_pin_is_refused_without_echoing_it(
    softhsm_token_factory: Callable[..., SoftHSMToken],
) -> None:
    fresh = softhsm_token_factory()
    with pytest.raises(base.WrongPassphraseError, match="refused the user PIN") as caught:
        Token.open(fresh.module, fresh.label, pin="wrong-pin-1234")
    assert "wrong-pin-1234" not in str(caught.value)


def test_a_second_open_of_the_same_token_is_refused(
    token: Token, keys_softhsm_token: SoftHSMToken
) -> None:
    with pytest.raises(base.KeyBackendError, match="already open in this process"):
        Token.open(keys_softhsm_token.module, keys_softhsm_token.label, pin="anything")
    assert keys_softhsm_token.pin not in repr(token)


def test_an_unknown_token_label_lists_the_tokens_present(keys_softhsm_token: SoftHSMToken) -> None:
    with pytest.raises(base.KeyNotFoundError, match=r"no token labelled 'absent'.*tokens present"):
        Token.open(keys_softhsm_token.module, "absent", pin="1234")


def test_many_threads_can_sign_with_one_token(
    ec_signer: Pkcs11Signer, rsa_signer: Pkcs11Signer
) -> None:
    def issue(serial: int) -> x509.Certificate:
        return _leaf(ec_signer if serial % 2 else rsa_signer, serial)

    with concurrent.futures.ThreadPoolExecutor(max_workers=8) as pool:
        certs = list(pool.map(issue, range(1, 201)))
    for cert in certs:
        signer = ec_signer if cert.serial_number % 2 else rsa_signer
        assert cert.public_key() == signer.public_key()
        cert.verify_directly_issued_by(cert)


_LOST_SESSION_SCRIPT = textwrap.dedent(
    """
    import sys
    import pkcs11
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from padlock.keys import base
    from padlock.keys.pkcs11 import Token
    from padlock.pki.algorithms import KeyAlgorithm

    module, label, pin = sys.argv[1:4]
    token = Token.open(module, label, pin=pin)
    signer = token.generate("lost-session", KeyAlgorithm.EC_P256)
    key = signer.private_key()
    key.sign(b"before", ec.ECDSA(hashes.SHA256()))

    token.check()
    # The library loses every session and login, as when the HSM restarts.
    pkcs11.lib(module).reinitialize()
    try:
        token.check()
    except base.TokenUnavailableError as err:
        print("check:", err)
    for attempt in range(2):
        try:
            key.sign(b"during", ec.ECDSA(hashes.SHA256()))
        except base.TokenUnavailableError as err:
            print("unavailable:", err)
        else:
            sys.exit("signing on a lost session succeeded")
    assert not token.connected

    token.reconnect()
    assert token.connected
    token.check()
    signature = key.sign(b"after", ec.ECDSA(hashes.SHA256()))
    signer.public_key().verify(signature, b"after", ec.ECDSA(hashes.SHA256()))

    # Worse: the library is finalised under us (C_Finalize), every call now fails.
    pkcs11.lib(module).finalize()
    try:
        key.sign(b"finalized", ec.ECDSA(hashes.SHA256()))
    except base.TokenUnavailableError as err:
        print("finalized:", err)
    else:
        sys.exit("signing with a finalised library succeeded")
    token.reconnect()
    signature = key.sign(b"again", ec.ECDSA(hashes.SHA256()))
    signer.public_key().verify(signature, b"again", ec.ECDSA(hashes.SHA256()))
    token.close()
    print("recovered")
    """
)


def test_a_lost_session_raises_token_unavailable_until_reconnect(
    softhsm_token_factory: Callable[..., SoftHSMToken],
) -> None:
    # A separate process: re-initialising the library would end every session of this one.
    fresh = softhsm_token_factory()
    run = subprocess.run(
        [sys.executable, "-c", _LOST_SESSION_SCRIPT, fresh.module, fresh.label, fresh.pin],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 0, run.stdout + run.stderr
    lines = run.stdout.splitlines()
    assert lines[-1] == "recovered"
    assert any(line.startswith("check: ") for line in lines)
    assert any(line.startswith("finalized: ") for line in lines)
    unavailable = [line for line in lines if line.startswith("unavailable:")]
    assert len(unavailable) == 2
    assert "SessionHandleInvalid" in unavailable[0] or "PKCS11Error" in unavailable[0]
    assert "call reconnect()" in unavailable[0]
    assert fresh.pin not in run.stdout + run.stderr
