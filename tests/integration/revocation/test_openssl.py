"""Revocation seen by real clients: `openssl ocsp` (POST and GET), `openssl verify -crl_check`
and pkilint, against `padlock ocsp serve` in its own process reading the ledger (SQLite beside
the CA, and real PostgreSQL), for certificates issued through the CA's `/v1/sign`."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509 import ocsp as c_ocsp

from padlock.ca import authority
from tests.fixtures.ca import MakeCA, start_ca
from tests.integration.ca.helpers import make_csr
from tests.integration.revocation import helpers

pytestmark = pytest.mark.softhsm

REVOCATION_VISIBLE_WITHIN = 5.0


async def test_openssl_sees_good_then_revoked_with_reason_over_post_get_and_crl(
    make_ca: MakeCA, ca_ledger_url: str, tmp_path: Path
) -> None:
    ca = helpers.make_revocation_ca(make_ca, ca_ledger_url)
    async with start_ca(ca.setup) as (client, _app):
        issued = await client.sign(
            make_csr(("app.example.test",)), "tls-server", 7 * 86400, "ns/app/1", "ns/app"
        )
        leaf = x509.load_pem_x509_certificate(issued.certificate.encode())
        leaf_file = helpers.pem_file(tmp_path / "leaf.pem", issued.certificate)
        shard = authority.crl_shard(leaf.serial_number)
        crl_path = f"/crl/{shard}.crl"

        async with helpers.responder_process(ca):
            # POST (openssl's way), no nonce: the responder holds no key by default.
            good = await helpers.openssl_ocsp(ca, leaf_file, "-url", ca.url, "-no_nonce")
            assert good.returncode == 0, good.stderr
            assert f"{leaf_file}: good" in good.stdout
            assert "Response verify OK" in good.stderr
            # openssl's default nonce: answered without the echo (RFC 6960 §4.4.1), accepted.
            with_nonce = await helpers.openssl_ocsp(ca, leaf_file, "-url", ca.url)
            assert with_nonce.returncode == 0, with_nonce.stderr
            assert f"{leaf_file}: good" in with_nonce.stdout
            assert "WARNING: no nonce in response" in with_nonce.stderr

            # A certificate issued while the responder runs is answered at once (first
            # request reads its pre-signed response from the ledger).
            later = await client.sign(
                make_csr(("later.example.test",)), "tls-server", 86400, "ns/app/2", "ns/app"
            )
            later_file = helpers.pem_file(tmp_path / "later.pem", later.certificate)
            answer = await helpers.openssl_ocsp(ca, later_file, "-url", ca.url, "-no_nonce")
            assert f"{later_file}: good" in answer.stdout, answer.stderr

            # The CRL of the certificate's shard lists nothing yet and verifies.
            status, headers, crl_der = await helpers.http_get(ca, crl_path)
            assert status == 200 and headers["Content-Type"] == "application/pkix-crl"
            crl_file = tmp_path / "shard.crl"
            crl_file.write_bytes(x509.load_der_x509_crl(crl_der).public_bytes(Encoding.PEM))
            verify_args = [
                "openssl", "verify", "-crl_check", "-CAfile", str(ca.setup.root_file),
                "-untrusted", str(ca.intermediate_file), "-CRLfile", str(crl_file), str(leaf_file),
            ]  # fmt: skip
            assert (await helpers.run(*verify_args)).returncode == 0

            await client.revoke(issued.serial, "keyCompromise", "ns/revoker")
            revoked_at = time.monotonic()

            # POST again until the responder has polled the ledger (bounded: 5 s).
            while True:
                answer = await helpers.openssl_ocsp(ca, leaf_file, "-url", ca.url, "-no_nonce")
                if "revoked" in answer.stdout or time.monotonic() - revoked_at > 5:
                    break
                await asyncio.sleep(0.1)
            assert time.monotonic() - revoked_at <= REVOCATION_VISIBLE_WITHIN
            assert answer.returncode == 0, answer.stderr
            assert f"{leaf_file}: revoked" in answer.stdout
            assert "Reason: keyCompromise" in answer.stdout
            assert "Response verify OK" in answer.stderr

            # GET (RFC 5019 §5): the base64 path, then `openssl ocsp -respin` reads the answer.
            request = helpers.ocsp_request(leaf, ca.setup.intermediate)
            status, headers, body = await helpers.http_get(ca, helpers.get_path(request))
            assert status == 200 and headers["Content-Type"] == "application/ocsp-response"
            assert "max-age=" in headers["Cache-Control"]
            assert {"ETag", "Last-Modified", "Expires"} <= set(headers)
            response_file = tmp_path / "get.der"
            response_file.write_bytes(body)
            from_get = await helpers.openssl_ocsp(ca, leaf_file, "-respin", str(response_file))
            assert from_get.returncode == 0, from_get.stderr
            assert f"{leaf_file}: revoked" in from_get.stdout
            assert "Reason: keyCompromise" in from_get.stdout
            parsed = c_ocsp.load_der_ocsp_response(body)
            assert parsed.certificate_status is c_ocsp.OCSPCertStatus.REVOKED

            # The regenerated shard CRL (published by the CA before /v1/revoke answered) is
            # served within the same bound, and revokes the certificate for openssl verify.
            while True:
                status, _headers, crl_der = await helpers.http_get(ca, crl_path)
                crl = x509.load_der_x509_crl(crl_der)
                entry = crl.get_revoked_certificate_by_serial_number(leaf.serial_number)
                if entry is not None or time.monotonic() - revoked_at > 5:
                    break
                await asyncio.sleep(0.1)
            assert entry is not None
            assert time.monotonic() - revoked_at <= REVOCATION_VISIBLE_WITHIN
            crl_file.write_bytes(crl.public_bytes(Encoding.PEM))
            refused = await helpers.run(*verify_args)
            assert refused.returncode != 0
            assert "certificate revoked" in refused.stdout + refused.stderr

            # The issuing CA certificate is served for AIA caIssuers.
            status, headers, ca_der = await helpers.http_get(ca, "/ca.crt")
            assert status == 200 and headers["Content-Type"] == "application/pkix-cert"
            assert x509.load_der_x509_certificate(ca_der) == ca.setup.intermediate

    # pkilint: the served OCSP response and the shard CRL carry no warning or error.
    assert await helpers.pkilint("lint_ocsp_response", response_file) == ""
    crl_der_file = tmp_path / "shard.der"
    crl_der_file.write_bytes(crl_der)
    assert await helpers.pkilint("lint_crl", crl_der_file, "-t", "CRL", "-p", "PKIX") == ""
