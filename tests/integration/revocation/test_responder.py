"""The responder's refusals and protocol details, in-process (SQLite ledger beside the CA):
malformed input of every kind gets a proper malformedRequest (never a 500 or a crash), other
issuers get unauthorized, HTTP caching per RFC 5019 §6, and what a keyless responder does with
nonces and SHA-256 CertIDs. The signing responder (`--sign`) runs in its own process, since
a process holds one session per token."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import random
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509 import ocsp as c_ocsp

from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from padlock.pki import der
from padlock.services.ocsp import http as ocsp_http
from padlock.services.ocsp import server
from tests.fixtures.ca import MakeCA, start_ca
from tests.integration.ca.helpers import make_csr
from tests.integration.revocation import helpers

pytestmark = pytest.mark.softhsm

Status = c_ocsp.OCSPResponseStatus


@contextlib.asynccontextmanager
async def in_process_responder(ca: helpers.RevocationCA) -> AsyncIterator[ocsp_http.Site]:
    options = server.ServeOptions(port=ca.port, poll_interval=0.1)
    async with server.open_site(ca.setup.config, options) as site:
        loop = asyncio.get_running_loop()
        listener = await loop.create_server(
            lambda: ocsp_http.HttpProtocol(site), "127.0.0.1", ca.port
        )
        async with listener:
            yield site


@pytest.fixture
async def issued(
    make_ca: MakeCA,
) -> AsyncIterator[tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site]]:
    ca = helpers.make_revocation_ca(make_ca)
    async with start_ca(ca.setup) as (client, _app):
        result = await client.sign(
            make_csr(("svc.example.test",)), "tls-server", 86400, "ns/svc/1", "ns/svc"
        )
        leaf = x509.load_pem_x509_certificate(result.certificate.encode())
        async with in_process_responder(ca) as site:
            yield ca, leaf, site


def status_of(body: bytes) -> Status:
    return c_ocsp.load_der_ocsp_response(body).response_status


async def raw_exchange(port: int, data: bytes) -> bytes:
    """Send raw bytes, read until the server closes (or 5 s)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(data)
    await writer.drain()
    try:
        return await asyncio.wait_for(reader.read(), 5)
    finally:
        writer.close()


async def test_malformed_input_gets_malformed_request_never_an_http_error(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, leaf, _site = issued
    good = helpers.ocsp_request(leaf, ca.setup.intermediate)
    md5_like = good.replace(bytes.fromhex("06052b0e03021a"), bytes.fromhex("06052b0e03021b"))
    cases = {
        "truncated DER": good[:-5],
        "trailing garbage": good + b"\x00\x01",
        "unsupported CertID hash": md5_like,
        "empty body": b"",
        "not DER at all": b"hello, OCSP",
        "over-long nonce": helpers.ocsp_request(leaf, ca.setup.intermediate, nonce=b"n" * 64),
    }
    for name, body in cases.items():
        status, headers, answer = await helpers.http_post(ca, body)
        assert status == 200, name
        assert headers["Content-Type"] == "application/ocsp-response", name
        assert headers["Cache-Control"] == "no-store", name
        assert status_of(answer) is Status.MALFORMED_REQUEST, name
    # GET: bad base64 and bad DER inside good base64.
    for path in ("/%%%not-base64", "/" + base64.b64encode(b"\x30\x03\x02\x01").decode()):
        status, _headers, answer = await helpers.http_get(ca, path)
        assert status == 200 and status_of(answer) is Status.MALFORMED_REQUEST, path


async def test_huge_body_is_refused_before_it_is_read(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, _leaf, _site = issued
    head = (
        b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
        b"Content-Length: 50000000\r\n\r\n"
    )
    reply = await raw_exchange(ca.port, head + b"\x30" * 1000)
    header, _, body = reply.partition(b"\r\n\r\n")
    assert header.startswith(b"HTTP/1.1 200 OK")
    assert b"Connection: close" in header
    assert status_of(body) is Status.MALFORMED_REQUEST


async def test_fuzzed_requests_always_get_an_ocsp_response_and_the_server_survives(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, leaf, _site = issued
    good = helpers.ocsp_request(leaf, ca.setup.intermediate)
    rng = random.Random(5019)
    seen: set[Status] = set()
    for i in range(150):
        if i % 2:
            body = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 200)))
        else:  # a valid request with a few bytes flipped: reaches deeper into the parser
            mutated = bytearray(good)
            for _ in range(rng.randrange(1, 4)):
                mutated[rng.randrange(len(mutated))] = rng.randrange(256)
            body = bytes(mutated)
        status, _headers, answer = await helpers.http_post(ca, body)
        assert status == 200
        seen.add(status_of(answer))
    assert Status.MALFORMED_REQUEST in seen
    assert seen <= {Status.MALFORMED_REQUEST, Status.UNAUTHORIZED, Status.SUCCESSFUL}
    # Still answering properly afterwards.
    _status, _headers, answer = await helpers.http_post(ca, good)
    assert c_ocsp.load_der_ocsp_response(answer).certificate_status is c_ocsp.OCSPCertStatus.GOOD


async def test_other_issuers_are_unauthorized(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, leaf, _site = issued
    # The same serial, but named under the root as issuer.
    request = helpers.ocsp_request(leaf, ca.setup.root)
    _status, _headers, answer = await helpers.http_post(ca, request)
    assert status_of(answer) is Status.UNAUTHORIZED


async def test_get_answer_carries_rfc5019_caching_headers_and_honours_etag(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, leaf, _site = issued
    path = helpers.get_path(helpers.ocsp_request(leaf, ca.setup.intermediate))
    status, headers, body = await helpers.http_get(ca, path)
    parsed = c_ocsp.load_der_ocsp_response(body)
    assert status == 200 and parsed.certificate_status is c_ocsp.OCSPCertStatus.GOOD
    assert parsed.next_update_utc is not None
    max_age = int(headers["Cache-Control"].split("max-age=")[1].split(",")[0])
    lifetime = (parsed.next_update_utc - parsed.this_update_utc).total_seconds()
    assert 0 < max_age <= lifetime  # RFC 5019 §6.2: never cached past nextUpdate
    assert "public" in headers["Cache-Control"] and "no-transform" in headers["Cache-Control"]
    assert headers["Expires"] and headers["Last-Modified"] and headers["Date"]
    status, _headers, body = await helpers.http_get(ca, path, {"If-None-Match": headers["ETag"]})
    assert status == 304 and body == b""


async def test_keyless_responder_answers_nonce_without_echo_and_sha256_unauthorized(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, leaf, _site = issued
    nonce_request = helpers.ocsp_request(leaf, ca.setup.intermediate, nonce=b"k" * 16)
    _status, _headers, answer = await helpers.http_post(ca, nonce_request)
    parsed = c_ocsp.load_der_ocsp_response(answer)
    assert parsed.certificate_status is c_ocsp.OCSPCertStatus.GOOD
    with pytest.raises(x509.ExtensionNotFound):
        parsed.extensions.get_extension_for_class(x509.OCSPNonce)
    sha256 = helpers.ocsp_request(leaf, ca.setup.intermediate, hashes.SHA256())
    _status, _headers, answer = await helpers.http_post(ca, sha256)
    assert status_of(answer) is Status.UNAUTHORIZED


async def test_signing_responder_echoes_nonce_and_answers_multi_sha256_and_unknown(
    make_ca: MakeCA, tmp_path: Path
) -> None:
    ca = helpers.make_revocation_ca(make_ca)
    async with start_ca(ca.setup) as (client, _app):
        result = await client.sign(
            make_csr(("svc.example.test",)), "tls-server", 86400, "ns/svc/1", "ns/svc"
        )
        leaf = x509.load_pem_x509_certificate(result.certificate.encode())
        leaf_file = helpers.pem_file(tmp_path / "leaf.pem", result.certificate)
        async with helpers.responder_process(ca, "--sign"):
            # openssl sends a nonce by default and checks the echo.
            answer = await helpers.openssl_ocsp(ca, leaf_file, "-url", ca.url)
            assert answer.returncode == 0, answer.stderr
            assert f"{leaf_file}: good" in answer.stdout
            assert "WARNING" not in answer.stderr and "Response verify OK" in answer.stderr

            sha256 = helpers.ocsp_request(leaf, ca.setup.intermediate, hashes.SHA256())
            _status, _headers, body = await helpers.http_post(ca, sha256)
            parsed = c_ocsp.load_der_ocsp_response(body)
            assert parsed.certificate_status is c_ocsp.OCSPCertStatus.GOOD
            assert parsed.hash_algorithm.name == "sha256"

            cert_id = c_ocsp.load_der_ocsp_request(
                helpers.ocsp_request(leaf, ca.setup.intermediate)
            )
            ids = [
                der.sequence(
                    der.sequence(der.encode_oid("1.3.14.3.2.26"), der.tlv(der.NULL, b"")),
                    der.octet_string(cert_id.issuer_name_hash),
                    der.octet_string(cert_id.issuer_key_hash),
                    der.integer(serial),
                )
                for serial in (leaf.serial_number, 12345)
            ]
            multi = der.sequence(der.sequence(der.sequence(*(der.sequence(i) for i in ids))))
            _status, _headers, body = await helpers.http_post(ca, multi)
            responses = list(c_ocsp.load_der_ocsp_response(body).responses)
            assert [(r.serial_number, r.certificate_status) for r in responses] == [
                (leaf.serial_number, c_ocsp.OCSPCertStatus.GOOD),
                (12345, c_ocsp.OCSPCertStatus.UNKNOWN),
            ]


async def test_pipelined_requests_are_answered_in_order_when_the_first_needs_the_ledger(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, leaf, _site = issued
    known = helpers.get_path(helpers.ocsp_request(leaf, ca.setup.intermediate))
    # A serial of this issuer that is not in memory: looked up in the ledger (slow path).
    cert_id = c_ocsp.load_der_ocsp_request(helpers.ocsp_request(leaf, ca.setup.intermediate))
    unknown = der.sequence(der.sequence(der.sequence(der.sequence(der.sequence(
        der.sequence(der.encode_oid("1.3.14.3.2.26"), der.tlv(der.NULL, b"")),
        der.octet_string(cert_id.issuer_name_hash),
        der.octet_string(cert_id.issuer_key_hash),
        der.integer(777),
    )))))  # fmt: skip
    requests = b"".join(
        f"GET {path} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode()
        for path, extra in (
            (helpers.get_path(unknown), ""),
            (known, ""),
            (known, "Connection: close\r\n"),
        )
    )
    reply = await raw_exchange(ca.port, requests)
    bodies = []
    rest = reply
    while rest:
        head, _, rest = rest.partition(b"\r\n\r\n")
        length = int(head.split(b"Content-Length: ")[1].split(b"\r\n")[0])
        bodies.append(rest[:length])
        rest = rest[length:]
    assert [status_of(b) for b in bodies] == [
        Status.UNAUTHORIZED,  # RFC 5019 §2.2.3: no pre-produced response for serial 777
        Status.SUCCESSFUL,
        Status.SUCCESSFUL,
    ]


async def test_good_response_left_stale_by_a_revocation_is_not_served(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, leaf, site = issued
    request = helpers.ocsp_request(leaf, ca.setup.intermediate)
    # Revoke behind the CA's back (as if it stopped before re-signing): the cached response
    # still says good, and the keyless responder must not serve it once it knows.
    with ledger_mod.Ledger(ca.setup.config.ledger.url, migrate=False) as ledger:
        ca_id = site.store.ca_id
        ledger.revoke(ca_id, leaf.serial_number, 1, "test")
        cached = ledger.get_ocsp_response(ca_id, leaf.serial_number)
        assert cached is not None and cached.status is records.Status.GOOD
    for _ in range(50):
        _status, _headers, answer = await helpers.http_post(ca, request)
        if status_of(answer) is not Status.SUCCESSFUL:
            break
        await asyncio.sleep(0.1)
    assert status_of(answer) is Status.TRY_LATER
    _status, _headers, text = await helpers.http_get(ca, "/metrics")
    assert b'padlock_ocsp_requests_total{status="tryLater"}' in text


async def test_responder_waits_for_the_ca_then_refuses_to_start_without_it(
    make_ca: MakeCA,
) -> None:
    ca = helpers.make_revocation_ca(make_ca)
    config = str(ca.setup.config_path)
    port = str(helpers.free_port())
    result = await helpers.run(
        helpers.PADLOCK, "ocsp", "serve", "--config", config, "--port", port, "--wait-for-ca", "1"
    )
    assert result.returncode == 2
    assert "waiting for the CA to prepare the ledger" in result.stderr
    assert "padlock ocsp serve cannot start" in result.stderr


async def test_silent_connections_are_closed_after_the_idle_timeout(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, _leaf, site = issued
    site.idle_timeout = 0.3
    reader, writer = await asyncio.open_connection("127.0.0.1", ca.port)
    writer.write(b"GET / HTTP/1.1\r\nHost: x\r\n")  # a request that never ends
    await writer.drain()
    assert await asyncio.wait_for(reader.read(), 5) == b""  # closed by the server
    writer.close()
    assert not site.connections


async def test_responder_started_before_the_ca_serves_once_the_ca_is_up(
    make_ca: MakeCA, tmp_path: Path
) -> None:
    # The CA pod: both containers start at once, the responder usually first.
    ca = helpers.make_revocation_ca(make_ca)
    async with helpers.responder_process(ca, "--wait-for-ca", "30", wait=False) as proc:
        log = ca.setup.directory / "ocsp.log"
        for _ in range(300):  # until it has found the ledger not ready (bounded: 30 s)
            if "waiting for the CA to prepare the ledger" in log.read_text():
                break
            await asyncio.sleep(0.1)
        assert proc.poll() is None
        async with start_ca(ca.setup) as (client, _app):
            result = await client.sign(
                make_csr(("early.example.test",)), "tls-server", 86400, "ns/e/1", "ns/e"
            )
            await helpers.wait_healthy(ca, proc)
            leaf_file = helpers.pem_file(tmp_path / "leaf.pem", result.certificate)
            answer = await helpers.openssl_ocsp(ca, leaf_file, "-url", ca.url, "-no_nonce")
            assert f"{leaf_file}: good" in answer.stdout, answer.stderr
    assert (
        "waiting for the CA to prepare the ledger" in (ca.setup.directory / "ocsp.log").read_text()
    )


async def test_two_workers_share_the_port_and_stop_cleanly_on_sigterm(
    make_ca: MakeCA, tmp_path: Path
) -> None:
    ca = helpers.make_revocation_ca(make_ca)
    async with start_ca(ca.setup) as (client, _app):
        result = await client.sign(
            make_csr(("w.example.test",)), "tls-server", 86400, "ns/w/1", "ns/w"
        )
        leaf = x509.load_pem_x509_certificate(result.certificate.encode())
        request = helpers.ocsp_request(leaf, ca.setup.intermediate)
        async with helpers.responder_process(ca, "--workers", "2") as proc:
            answers = [await helpers.http_post(ca, request) for _ in range(20)]
        assert proc.returncode == 0
    for status, _headers, body in answers:
        assert status == 200
        assert c_ocsp.load_der_ocsp_response(body).certificate_status is (
            c_ocsp.OCSPCertStatus.GOOD
        )
    log = (ca.setup.directory / "ocsp.log").read_text()
    assert log.count("OCSP responder listening") == 2


async def test_get_accepts_base64_with_or_without_url_encoding(
    issued: tuple[helpers.RevocationCA, x509.Certificate, ocsp_http.Site],
) -> None:
    ca, leaf, _site = issued
    # Vary the nonce until the base64 form holds '+' and '/' (which URL-encoding changes).
    for n in range(200):
        request = helpers.ocsp_request(leaf, ca.setup.intermediate, nonce=n.to_bytes(2, "big"))
        encoded = base64.b64encode(request).decode()
        if "+" in encoded and "/" in encoded:
            break
    for path in ("/" + encoded, helpers.get_path(request)):
        status, _headers, body = await helpers.http_get(ca, path)
        assert status == 200, path
        parsed = c_ocsp.load_der_ocsp_response(body)
        assert parsed.certificate_status is c_ocsp.OCSPCertStatus.GOOD, path
