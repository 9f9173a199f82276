"""Benchmark: OCSP requests/s and latency of `padlock ocsp serve` next to nginx serving the same
pre-signed DER as a static file, and CRL generation time for 100,000 and 1,000,000 entries.

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_ocsp.py`); prints a
Markdown section. Needs `wrk` and `nginx` (Debian packages). Software keys and a SQLite
ledger in a temp dir (the HSM only matters when signing, which the responder does not do on
this path; bench_signing.py measures it). Each wrk run: `BENCH_OCSP_SECONDS` (default 8) s,
one wrk thread, 64 connections, on loopback; responder and nginx each get 2 worker processes.
The machine is shared: wrk itself takes one of the 2 cores, so figures are relative.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import datetime
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509 import ocsp as c_ocsp
from cryptography.x509.oid import NameOID

from padlock.ca import ocsp_signing
from padlock.keys import software
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from padlock.pki import crl, profiles, serials
from padlock.pki.algorithms import KeyAlgorithm

SECONDS = int(os.environ.get("BENCH_OCSP_SECONDS", "8"))
CONNECTIONS = 64
NOW = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
PADLOCK = str(Path(sys.executable).with_name("padlock"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def _cert(
    profile: profiles.Profile,
    cn: str,
    key: object,
    issuer: x509.Certificate | None,
    issuer_key: object,
    sans: tuple[x509.GeneralName, ...] = (),
) -> x509.Certificate:
    return profiles.build_certificate(
        profile,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)]) if cn else x509.Name([]),
        public_key=key.public_key(),  # type: ignore[attr-defined]
        sans=sans,
        issuer=issuer,
        issuer_key=issuer_key,  # type: ignore[arg-type]
        serial=serials.new_serial(),
        not_before=NOW - datetime.timedelta(minutes=5),
        not_after=NOW + datetime.timedelta(days=30),
    )


def make_ca(directory: Path) -> tuple[Path, bytes, bytes]:
    """A CA with one issued leaf and its pre-signed response in a SQLite ledger; returns
    (ca.yaml, the DER OCSP request, the DER pre-signed response)."""
    root_key = ec.generate_private_key(ec.SECP256R1())
    root = _cert(profiles.ROOT_CA, "bench root", root_key, None, root_key)
    inter_key = ec.generate_private_key(ec.SECP256R1())
    inter = _cert(profiles.INTERMEDIATE_CA, "bench intermediate", inter_key, root, root_key)
    responder = software.generate("bench-ocsp", KeyAlgorithm.EC_P256)
    ocsp_cert = _cert(profiles.OCSP_RESPONDER, "bench OCSP", responder.private_key(), inter,
                      inter_key)  # fmt: skip
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    leaf = _cert(profiles.TLS_SERVER, "", leaf_key, inter, inter_key,
                 (x509.DNSName("bench.example.test"),))  # fmt: skip
    pem = serialization.Encoding.PEM
    (directory / "chain.pem").write_bytes(inter.public_bytes(pem) + root.public_bytes(pem))
    (directory / "ocsp.pem").write_bytes(ocsp_cert.public_bytes(pem))
    url = f"sqlite:///{directory / 'ledger.db'}"
    with ledger_mod.Ledger(url) as ledger:
        root_id = ledger.register_ca(root, ca_type=records.CAType.ROOT)
        ca_id = ledger.register_ca(inter, ca_type=records.CAType.INTERMEDIATE, parent_ca_id=root_id)
        ledger.record_issuance(ca_id, leaf, cert_type=records.CertType.TLS_SERVER, requester="b")
        signer = ocsp_signing.ResponseSigner(
            issuer=inter,
            responder_certificate=ocsp_cert,
            key=ocsp_signing.ResponderKey(lambda: responder),
        )
        pre = ocsp_signing.PreSigner(ledger=ledger, ca_id=ca_id, signer=signer)
        entry = pre.update(leaf.serial_number, "issued")
    config = directory / "ca.yaml"
    config.write_text(
        yaml.safe_dump({"chain_file": "chain.pem", "ledger": {"url": url}, "urls": {}})
    )
    request = (
        c_ocsp.OCSPRequestBuilder()
        .add_certificate(leaf, inter, hashes.SHA1())  # noqa: S303 - RFC 5019 CertID
        .build()
        .public_bytes(serialization.Encoding.DER)
    )
    return config, request, entry.response_der


def wait_http(url: str, proc: subprocess.Popen[bytes] | None = None) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"server exited with {proc.returncode}")
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - loopback
                return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in 30 s")


@contextlib.contextmanager
def process(args: list[str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT)
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def nginx_config(directory: Path, port: int) -> Path:
    (directory / "nginx").mkdir()
    conf = directory / "nginx" / "nginx.conf"
    conf.write_text(
        f"""
worker_processes 2;
pid {directory}/nginx/nginx.pid;
error_log {directory}/nginx/error.log;
daemon off;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {directory}/nginx/body;
    proxy_temp_path {directory}/nginx/proxy;
    fastcgi_temp_path {directory}/nginx/fastcgi;
    uwsgi_temp_path {directory}/nginx/uwsgi;
    scgi_temp_path {directory}/nginx/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
            root {directory};
            default_type application/ocsp-response;
            # Static files refuse POST with 405; answer it with the same file.
            error_page 405 =200 /response.der;
            try_files /response.der =404;
        }}
    }}
}}
"""
    )
    return conf


def wrk(url: str, directory: Path, body: bytes | None = None) -> tuple[float, str, str]:
    """(requests/s, p50, p99) from one wrk run; POST `body` when given."""
    args = ["wrk", "-t1", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "--latency"]
    if body is not None:
        script = directory / "post.lua"
        escaped = "".join(f"\\{b:03d}" for b in body)
        script.write_text(
            f'wrk.method = "POST"\nwrk.body = "{escaped}"\n'
            'wrk.headers["Content-Type"] = "application/ocsp-request"\n'
        )
        args += ["-s", str(script)]
    out = subprocess.run([*args, url], capture_output=True, text=True, check=True).stdout
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    p50 = re.search(r"^\s+50%\s+(\S+)", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    p99 = re.search(r"^\s+99%\s+(\S+)", out, re.MULTILINE).group(1)  # type: ignore[union-attr]
    if re.search(r"Non-2xx", out):
        raise RuntimeError(f"wrk saw non-2xx answers from {url}:\n{out}")
    return rate, p50, p99


class _NullTransport:
    """Collects nothing: measures the responder's own per-request CPU, no sockets."""

    def write(self, data: bytes) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass


async def _in_process(config: Path, get_path: str, request: bytes) -> tuple[float, float]:
    """Microseconds of CPU per keep-alive GET and POST inside one worker (parse, route,
    cached-answer lookup, headers, write), without the network or wrk."""
    from padlock.ca import config as ca_config
    from padlock.services.ocsp import http, server

    count = 20_000
    async with server.open_site(ca_config.load(config), server.ServeOptions()) as site:
        results = []
        for raw in (
            f"GET {get_path} HTTP/1.1\r\nHost: x\r\n\r\n".encode(),
            b"POST / HTTP/1.1\r\nHost: x\r\nContent-Type: application/ocsp-request\r\n"
            + b"Content-Length: %d\r\n\r\n" % len(request)
            + request,
        ):
            protocol = http.HttpProtocol(site)
            protocol.connection_made(_NullTransport())  # type: ignore[arg-type]
            protocol.data_received(raw)  # warm the answer cache
            started = time.process_time()
            for _ in range(count):
                protocol.data_received(raw)
            results.append((time.process_time() - started) / count * 1e6)
    return results[0], results[1]


def crl_seconds(count: int) -> tuple[float, int]:
    """Seconds to encode and sign a CRL with `count` entries (software P-256 key)."""
    key = ec.generate_private_key(ec.SECP256R1())
    issuer = _cert(profiles.ROOT_CA, "bench CRL issuer", key, None, key)
    base = serials.new_serial() >> 8
    revoked_at = NOW - datetime.timedelta(hours=1)
    entries = [crl.Entry(base + i, revoked_at + datetime.timedelta(seconds=i % 3600), 1 + i % 5)
               for i in range(count)]  # fmt: skip
    started = time.perf_counter()
    der = crl.build_crl(
        issuer=issuer,
        key=key,
        entries=entries,
        crl_number=1,
        this_update=NOW,
        next_update=NOW + datetime.timedelta(days=1),
        distribution_point="http://ca.example.test/crl/0.crl",
    )
    return time.perf_counter() - started, len(der)


def main() -> None:
    for tool in ("wrk", "nginx"):
        if shutil.which(tool) is None:
            print(f"### OCSP responder\n\n`{tool}` is not installed; skipped.\n")
            return
    rows: list[tuple[str, float, str, str]] = []
    with tempfile.TemporaryDirectory(prefix="bench-ocsp-") as tmp:
        directory = Path(tmp)
        directory.chmod(0o755)  # nginx workers run as an unprivileged user
        config, request, response = make_ca(directory)
        (directory / "response.der").write_bytes(response)
        get_path = "/" + urllib.parse.quote(base64.b64encode(request).decode(), safe="")

        port = free_port()
        args = [PADLOCK, "ocsp", "serve", "--config", str(config), "--port", str(port)]
        with process([*args, "--workers", "2"], directory / "ocsp.log") as proc:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
            served = urllib.request.urlopen(f"http://127.0.0.1:{port}{get_path}").read()
            assert served == response, "the responder did not serve the pre-signed response"
            rows.append(("padlock GET", *wrk(f"http://127.0.0.1:{port}{get_path}", directory)))
            rows.append(("padlock POST", *wrk(f"http://127.0.0.1:{port}/", directory, request)))

        nginx_port = free_port()
        conf = nginx_config(directory, nginx_port)
        with process(["nginx", "-c", str(conf), "-p", str(directory / "nginx")],
                     directory / "nginx.log") as proc:  # fmt: skip
            wait_http(f"http://127.0.0.1:{nginx_port}/x", proc)
            rows.append(
                ("nginx GET (static)", *wrk(f"http://127.0.0.1:{nginx_port}{get_path}", directory))
            )
            rows.append(
                ("nginx POST (static)", *wrk(f"http://127.0.0.1:{nginx_port}/", directory, request))
            )

        get_us, post_us = asyncio.run(_in_process(config, get_path, request))

    crl_rows = [(n, *crl_seconds(n)) for n in (100_000, 1_000_000)]
    nginx_get = rows[2][1]
    print("### OCSP responder and CRL generation\n")
    print(f"`.venv/bin/python bench/bench_ocsp.py` — `wrk -t1 -c{CONNECTIONS} -d{SECONDS}s "
          "--latency` on loopback; `padlock ocsp serve --workers 2` (uvloop + httptools, "
          "answers from memory) vs nginx (2 workers) serving the same DER file.\n")  # fmt: skip
    print("| server | requests/s | p50 | p99 | vs nginx GET |")
    print("|---|---:|---:|---:|---:|")
    for name, rate, p50, p99 in rows:
        print(f"| {name} | {rate:,.0f} | {p50} | {p99} | {rate / nginx_get:.0%} |")
    print(
        f"\nIn one worker, without network: {get_us:.1f} µs of CPU per GET, {post_us:.1f} µs per "
        f"POST (≈ {1e6 / get_us:,.0f} / {1e6 / post_us:,.0f} requests per core-second); "
        "a figure the shared machine's load does not distort."
    )
    print("\n| CRL entries | encode + sign (s) | size (MB) |")
    print("|---:|---:|---:|")
    for count, seconds, size in crl_rows:
        print(f"| {count:,} | {seconds:.2f} | {size / 1e6:.1f} |")
    print()


if __name__ == "__main__":
    main()
