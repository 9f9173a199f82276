"""padlock.pki.ocsp: request parsing (against cryptography's), responses read back by
cryptography and pkilint, error responses, and the refusals that become malformedRequest."""

from __future__ import annotations

import contextlib
import datetime
import random
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as c_ocsp

from padlock.pki import der, ocsp
from tests.unit.pki.conftest import NOW, Issued

HOUR = datetime.timedelta(hours=1)


def request_der(
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    algorithm: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    builder = c_ocsp.OCSPRequestBuilder().add_certificate(leaf, issuer, algorithm or hashes.SHA1())  # noqa: S303
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def multi_request(cert_ids: list[ocsp.CertId], nonce: bytes | None = None) -> bytes:
    """An OCSPRequest with several Requests (cryptography cannot build one)."""
    requests = der.sequence(*(der.sequence(c.encode()) for c in cert_ids))
    tbs = [requests]
    if nonce is not None:
        ext = der.sequence(der.encode_oid(ocsp.OID_NONCE), der.octet_string(nonce))
        tbs.append(der.explicit(2, der.sequence(ext)))
    return der.sequence(der.sequence(*tbs))


@pytest.fixture(scope="module")
def signer(leaves: dict[str, Issued]) -> ocsp.Signer:
    responder = leaves["ocsp-responder"]
    return ocsp.Signer(responder.cert, responder.key)


@pytest.mark.parametrize(
    "algorithm",
    [hashes.SHA1(), hashes.SHA256(), hashes.SHA512()],  # noqa: S303 - RFC 5019 CertIDs
)
def test_parsed_request_matches_cryptography(
    leaves: dict[str, Issued], intermediate: Issued, algorithm: hashes.HashAlgorithm
) -> None:
    leaf = leaves["tls-server"].cert
    raw = request_der(leaf, intermediate.cert, algorithm, nonce=b"n" * 16)
    expected = c_ocsp.load_der_ocsp_request(raw)
    parsed = ocsp.parse_request(raw)
    (cert_id,) = parsed.cert_ids
    assert cert_id.hash_algorithm == algorithm.name
    assert cert_id.serial == expected.serial_number == leaf.serial_number
    assert cert_id.issuer_name_hash == expected.issuer_name_hash
    assert cert_id.issuer_key_hash == expected.issuer_key_hash
    assert ocsp.IssuerHashes.of(intermediate.cert).matches(cert_id)
    # RFC 8954 nonce: extnValue is the DER OCTET STRING, echoed verbatim.
    assert parsed.nonce == der.octet_string(b"n" * 16)


def test_request_about_another_issuer_does_not_match(
    leaves: dict[str, Issued], root: Issued, intermediate: Issued
) -> None:
    raw = request_der(leaves["tls-server"].cert, root.cert)
    (cert_id,) = ocsp.parse_request(raw).cert_ids
    assert not ocsp.IssuerHashes.of(intermediate.cert).matches(cert_id)


def test_multi_request_is_parsed_in_order(intermediate: Issued) -> None:
    hashes_ = ocsp.IssuerHashes.of(intermediate.cert)
    ids = [hashes_.cert_id(7), hashes_.cert_id(8, "sha256"), hashes_.cert_id(9)]
    assert ocsp.parse_request(multi_request(ids)).cert_ids == tuple(ids)


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda raw: raw[:-3], "truncated"),
        (lambda raw: raw + b"\x00", "trailing"),
        (lambda raw: b"\x30\x80" + raw[2:], "indefinite"),
        (lambda raw: b"", "truncated"),
        (
            lambda raw: raw.replace(
                bytes.fromhex("06052b0e03021a"), bytes.fromhex("06052b0e03021b")
            ),
            "hash algorithm",
        ),
        (lambda raw: raw.replace(bytes.fromhex("0414"), bytes.fromhex("0413"), 1)[:-1], "bad"),
    ],
)
def test_malformed_requests_are_refused_with_a_reason(
    leaves: dict[str, Issued], intermediate: Issued, mutate: object, reason: str
) -> None:
    raw = request_der(leaves["tls-server"].cert, intermediate.cert)
    with pytest.raises(ocsp.MalformedRequest) as info:
        ocsp.parse_request(mutate(raw))  # type: ignore[operator]
    assert info.value.message


def test_md5_cert_id_is_refused_as_unsupported_hash(intermediate: Issued) -> None:
    cert_id = der.sequence(
        der.sequence(der.encode_oid("1.2.840.113549.2.5"), der.tlv(der.NULL, b"")),
        der.octet_string(b"\x00" * 16),
        der.octet_string(b"\x00" * 16),
        der.integer(5),
    )
    raw = der.sequence(der.sequence(der.sequence(der.sequence(cert_id))))
    with pytest.raises(ocsp.MalformedRequest, match=r"hash algorithm 1\.2\.840\.113549\.2\.5"):
        ocsp.parse_request(raw)


@pytest.mark.parametrize("size", [0, 33])
def test_nonce_outside_rfc8954_limits_is_refused(intermediate: Issued, size: int) -> None:
    raw = multi_request(
        [ocsp.IssuerHashes.of(intermediate.cert).cert_id(5)], der.octet_string(b"x" * size)
    )
    with pytest.raises(ocsp.MalformedRequest, match="nonce"):
        ocsp.parse_request(raw)


def test_too_many_cert_ids_are_refused(intermediate: Issued) -> None:
    ids = [
        ocsp.IssuerHashes.of(intermediate.cert).cert_id(n) for n in range(1, ocsp.MAX_REQUESTS + 2)
    ]
    with pytest.raises(ocsp.MalformedRequest, match="at most"):
        ocsp.parse_request(multi_request(ids))


def test_random_bytes_never_escape_as_other_errors() -> None:
    rng = random.Random(6960)
    for _ in range(2000):
        blob = bytes(rng.randrange(256) for _ in range(rng.randrange(0, 120)))
        if rng.random() < 0.5:
            blob = b"\x30" + bytes([len(blob)]) + blob if len(blob) < 128 else blob
        # Anything but a parsed request or MalformedRequest fails the test.
        with contextlib.suppress(ocsp.MalformedRequest):
            ocsp.parse_request(blob)


def test_revoked_response_reads_back_with_time_reason_nonce_and_signature(
    leaves: dict[str, Issued], intermediate: Issued, signer: ocsp.Signer
) -> None:
    leaf = leaves["tls-server"].cert
    cert_id = ocsp.IssuerHashes.of(intermediate.cert).cert_id(leaf.serial_number)
    revoked_at = NOW - HOUR
    single = ocsp.SingleResponse(
        cert_id, ocsp.CertStatus.REVOKED, NOW, NOW + HOUR, revoked_at=revoked_at, reason=1
    )
    raw = ocsp.build_response([single], signer, produced_at=NOW, nonce=der.octet_string(b"abc"))
    parsed = c_ocsp.load_der_ocsp_response(raw)
    assert parsed.response_status is c_ocsp.OCSPResponseStatus.SUCCESSFUL
    assert parsed.certificate_status is c_ocsp.OCSPCertStatus.REVOKED
    assert parsed.revocation_time_utc == revoked_at
    assert parsed.revocation_reason is x509.ReasonFlags.key_compromise
    assert parsed.this_update_utc == NOW and parsed.next_update_utc == NOW + HOUR
    assert parsed.serial_number == leaf.serial_number
    assert parsed.hash_algorithm.name == "sha1"
    assert parsed.responder_key_hash == signer.key_hash
    assert parsed.certificates == [signer.certificate]
    assert parsed.extensions.get_extension_for_class(x509.OCSPNonce).value.nonce == b"abc"
    public = signer.certificate.public_key()
    assert isinstance(public, ec.EllipticCurvePublicKey)
    public.verify(parsed.signature, parsed.tbs_response_bytes, ec.ECDSA(hashes.SHA256()))


def test_multi_response_holds_every_single_response(
    intermediate: Issued, signer: ocsp.Signer
) -> None:
    hashes_ = ocsp.IssuerHashes.of(intermediate.cert)
    singles = [
        ocsp.SingleResponse(hashes_.cert_id(11), ocsp.CertStatus.GOOD, NOW, NOW + HOUR),
        ocsp.SingleResponse(hashes_.cert_id(12, "sha256"), ocsp.CertStatus.UNKNOWN, NOW, None),
    ]
    parsed = c_ocsp.load_der_ocsp_response(ocsp.build_response(singles, signer, produced_at=NOW))
    got = [(r.serial_number, r.certificate_status, r.hash_algorithm.name) for r in parsed.responses]
    assert got == [
        (11, c_ocsp.OCSPCertStatus.GOOD, "sha1"),
        (12, c_ocsp.OCSPCertStatus.UNKNOWN, "sha256"),
    ]


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (ocsp.ResponseStatus.MALFORMED_REQUEST, c_ocsp.OCSPResponseStatus.MALFORMED_REQUEST),
        (ocsp.ResponseStatus.INTERNAL_ERROR, c_ocsp.OCSPResponseStatus.INTERNAL_ERROR),
        (ocsp.ResponseStatus.TRY_LATER, c_ocsp.OCSPResponseStatus.TRY_LATER),
        (ocsp.ResponseStatus.UNAUTHORIZED, c_ocsp.OCSPResponseStatus.UNAUTHORIZED),
    ],
)
def test_error_responses_carry_only_the_status(
    status: ocsp.ResponseStatus, expected: c_ocsp.OCSPResponseStatus
) -> None:
    raw = ocsp.error_response(status)
    assert c_ocsp.load_der_ocsp_response(raw).response_status is expected
    assert raw == bytes([0x30, 0x03, 0x0A, 0x01, status])


def test_revoked_status_needs_a_revocation_time(intermediate: Issued) -> None:
    cert_id = ocsp.IssuerHashes.of(intermediate.cert).cert_id(1)
    with pytest.raises(ValueError, match="revoked_at"):
        ocsp.SingleResponse(cert_id, ocsp.CertStatus.REVOKED, NOW, NOW + HOUR)


def test_response_lints_clean_with_pkilint(
    leaves: dict[str, Issued], intermediate: Issued, signer: ocsp.Signer, tmp_path: Path
) -> None:
    serial = leaves["tls-server"].cert.serial_number
    cert_id = ocsp.IssuerHashes.of(intermediate.cert).cert_id(serial)
    single = ocsp.SingleResponse(
        cert_id, ocsp.CertStatus.REVOKED, NOW, NOW + HOUR, revoked_at=NOW, reason=4
    )
    path = tmp_path / "response.der"
    path.write_bytes(
        ocsp.build_response([single], signer, produced_at=NOW, nonce=der.octet_string(b"q" * 16))
    )
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pkilint.bin.lint_ocsp_response",
            "lint",
            "-s",
            "WARNING",
            str(path),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.stdout + result.stderr).strip() == ""
