"""Helpers for the revocation tests: a CA whose URLs point at a local responder, the responder
as a real `padlock ocsp serve` subprocess, and the real clients (openssl, pkilint)."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncIterator
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509 import ocsp as c_ocsp

from padlock.ca import config as ca_config
from tests.fixtures.ca import CASetup, MakeCA

PADLOCK = str(Path(sys.executable).with_name("padlock"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


@dataclasses.dataclass(frozen=True)
class RevocationCA:
    """A CA whose certificates name a responder on `port` (OCSP, CRL shards, caIssuers)."""

    setup: CASetup
    port: int

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def intermediate_file(self) -> Path:
        return self.setup.config.chain_file.with_name("intermediate.pem")


def make_revocation_ca(make_ca: MakeCA, ledger_url: str | None = None) -> RevocationCA:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    setup = make_ca(
        ledger_url,
        urls=ca_config.UrlConfig(
            ocsp=f"{base}/", ca_issuers=f"{base}/ca.crt", crl_base=f"{base}/crl"
        ),
    )
    return RevocationCA(setup, port)


def _spawn(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=os.environ.copy())


@contextlib.asynccontextmanager
async def responder_process(
    ca: RevocationCA, *extra: str, wait: bool = True
) -> AsyncIterator[subprocess.Popen[bytes]]:
    """`padlock ocsp serve` in its own process; with `wait`, until it answers /healthz."""
    log = ca.setup.directory / "ocsp.log"
    config = str(ca.setup.config_path)
    args = [PADLOCK, "ocsp", "serve", "--config", config, "--port", str(ca.port)]
    proc = _spawn([*args, "--poll-interval", "0.2", *extra], log)
    try:
        if wait:
            await wait_healthy(ca, proc)
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


async def wait_healthy(ca: RevocationCA, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 30
    while True:
        assert proc.poll() is None, (ca.setup.directory / "ocsp.log").read_text()
        try:
            status, _h, _b = await http_get(ca, "/healthz")
            if status == 200:
                return
        except OSError:
            pass
        assert time.monotonic() < deadline, "the responder did not start in 30 s"
        await asyncio.sleep(0.1)


def _get(url: str, headers: dict[str, str]) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - loopback http
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


def _post(url: str, body: bytes) -> tuple[int, dict[str, str], bytes]:
    request = urllib.request.Request(  # noqa: S310 - loopback http
        url, data=body, headers={"Content-Type": "application/ocsp-request"}
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as resp:  # noqa: S310
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, dict(exc.headers), exc.read()


async def http_get(
    ca: RevocationCA, path: str, headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(_get, ca.url + path, headers or {})


async def http_post(ca: RevocationCA, body: bytes) -> tuple[int, dict[str, str], bytes]:
    return await asyncio.to_thread(_post, ca.url + "/", body)


def ocsp_request(
    leaf: x509.Certificate,
    issuer: x509.Certificate,
    algorithm: hashes.HashAlgorithm | None = None,
    nonce: bytes | None = None,
) -> bytes:
    builder = c_ocsp.OCSPRequestBuilder().add_certificate(
        leaf,
        issuer,
        algorithm or hashes.SHA1(),  # noqa: S303 - RFC 5019 §2.1.1 CertID
    )
    if nonce is not None:
        builder = builder.add_extension(x509.OCSPNonce(nonce), critical=False)
    return builder.build().public_bytes(serialization.Encoding.DER)


def get_path(request_der: bytes) -> str:
    """RFC 6960 §A.1 GET path: url-encoded base64 of the DER request."""
    return "/" + urllib.parse.quote(base64.b64encode(request_der).decode(), safe="")


async def run(*args: str) -> subprocess.CompletedProcess[str]:
    """A real client run off the event loop (the CA and responder may share the loop)."""
    return await asyncio.to_thread(
        subprocess.run, list(args), capture_output=True, text=True, check=False
    )


async def openssl_ocsp(
    ca: RevocationCA, leaf: Path, *extra: str
) -> subprocess.CompletedProcess[str]:
    """`openssl ocsp` against the responder, trusting only the root."""
    return await run(
        "openssl",
        "ocsp",
        "-issuer",
        str(ca.intermediate_file),
        "-cert",
        str(leaf),
        "-CAfile",
        str(ca.setup.root_file),
        "-resp_text",
        *extra,
    )


async def pkilint(linter: str, path: Path, *args: str) -> str:
    result = await run(
        sys.executable, "-m", f"pkilint.bin.{linter}", "lint", *args, "-s", "WARNING", str(path)
    )
    return (result.stdout + result.stderr).strip()


def pem_file(path: Path, cert_pem: str) -> Path:
    path.write_text(cert_pem)
    return path
