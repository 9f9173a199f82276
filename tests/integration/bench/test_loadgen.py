"""bench/loadgen, the Go load generator of bench/bench_ca_http.py, against a fake CA.

The fake speaks the `POST /v1/sign` JSON contract (operator/padlock/ca/client.py) over a
unix socket with HTTP/1.1 keep-alive and answers by CSR: a full certificate, a 422 refusal,
or a 200 that lacks the serial. The test proves the load generator counts only the first as
successes, sorts the rest by status and code with the server's message, sends a fresh
idempotency key every time over one connection per client, and that what it counts is what
the server answered (less the answers still in flight when the window closed). Skipped
when `go` is missing and no built binary is cached.
"""

from __future__ import annotations

import base64
import json
import socketserver
import tempfile
import threading
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path

import pytest
from bench.loadgen import driver

GOOD, REFUSED, INCOMPLETE = b"good-csr", b"refused-csr", b"incomplete-csr"


def _pem(kind: str, payload: bytes) -> str:
    return f"-----BEGIN {kind}-----\n{base64.b64encode(payload).decode()}\n-----END {kind}-----\n"


class _Tally:
    """What a fake CA saw: answers by CSR, idempotency keys, connections, bad requests."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.answered: Counter[bytes] = Counter()
        self.keys: list[str] = []
        self.connections = 0
        self.bad_requests: list[str] = []


class FakeCA(_Tally, socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: Path) -> None:
        _Tally.__init__(self)
        socketserver.UnixStreamServer.__init__(self, str(path), _Handler)


class FakeTCPCA(_Tally, socketserver.ThreadingMixIn, socketserver.TCPServer):
    """The same fake on loopback TCP, behind a path prefix (`-url http://host:port/ca`)."""

    daemon_threads = True

    def __init__(self) -> None:
        _Tally.__init__(self)
        socketserver.TCPServer.__init__(self, ("127.0.0.1", 0), _TCPHandler)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive
    server: FakeCA | FakeTCPCA

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections += 1

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        csr = base64.b64decode("".join(body["csr"].splitlines()[1:-1]))
        with self.server.lock:
            self.server.answered[csr] += 1
            self.server.keys.append(body["idempotency_key"])
            if self.path not in ("/v1/sign", "/ca/v1/sign") or (
                body["profile"],
                body["lifetime_seconds"],
            ) != (
                "tls-server",
                86400,
            ):
                self.server.bad_requests.append(f"{self.path} {body}")
        status, answer = {
            GOOD: (200, {"certificate": "LEAF", "chain": "CHAIN", "serial": "01AB"}),
            REFUSED: (422, {"error": "weak-key", "message": "RSA-1024 is below RSA-2048"}),
            INCOMPLETE: (200, {"certificate": "LEAF", "chain": "CHAIN"}),
        }[csr]
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class _TCPHandler(_Handler):
    disable_nagle_algorithm = True  # headers and body go out in two writes


@pytest.fixture(scope="module")
def binary() -> Path:
    try:
        return driver.build()
    except driver.LoadgenUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def short_dir() -> Iterator[Path]:
    # A unix socket path must fit in 108 bytes; pytest's tmp_path may not.
    with tempfile.TemporaryDirectory(prefix="loadgen-") as d:
        yield Path(d)


@pytest.fixture
def fake_ca(short_dir: Path) -> Iterator[FakeCA]:
    server = FakeCA(short_dir / "ca.sock")
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join()


def test_loadgen_counts_only_complete_200_answers_and_matches_the_servers_tally(
    binary: Path, fake_ca: FakeCA, short_dir: Path
) -> None:
    csrs = short_dir / "csrs.pem"
    # A CERTIFICATE block in the file is not a CSR: it must never be sent.
    csrs.write_text(
        _pem("CERTIFICATE REQUEST", GOOD)
        + _pem("CERTIFICATE", b"not-a-csr")
        + _pem("CERTIFICATE REQUEST", REFUSED)
        + _pem("CERTIFICATE REQUEST", INCOMPLETE)
    )
    events: list[str] = []
    result = driver.run(
        binary,
        socket=short_dir / "ca.sock",
        csr_file=csrs,
        clients=4,
        seconds=0.5,
        warmup=0,  # so only the answers after the window (one per client at most) go uncounted
        on_measuring=lambda: events.append("measuring"),
        on_measured=lambda: events.append("measured"),
    )

    assert events == ["measuring", "measured"]
    assert fake_ca.bad_requests == []
    assert set(fake_ca.answered) == {GOOD, REFUSED, INCOMPLETE}
    assert fake_ca.answered.total() == len(fake_ca.keys)
    assert 0 <= fake_ca.answered.total() - result.requests <= 4
    counted = {k: e.count for k, e in result.errors.items()}
    assert set(counted) == {"422 weak-key", "200 incomplete"}
    for seen, answered in [
        (result.successes, fake_ca.answered[GOOD]),
        (counted["422 weak-key"], fake_ca.answered[REFUSED]),
        (counted["200 incomplete"], fake_ca.answered[INCOMPLETE]),
    ]:
        assert 0 < seen <= answered <= seen + 4
    assert result.errors["422 weak-key"].sample == "RSA-1024 is below RSA-2048"
    assert len(set(fake_ca.keys)) == len(fake_ca.keys), "an idempotency key was reused"
    assert fake_ca.connections == 4, "one keep-alive connection per client"
    assert set(result.latency_ms) == {"p50", "p90", "p99", "max"}
    assert 0 < result.latency_ms["p50"] <= result.latency_ms["p99"] <= result.latency_ms["max"]
    assert result.certs_per_s == pytest.approx(result.successes / result.seconds)
    assert result.cpu_seconds > 0


def test_loadgen_speaks_plain_http_to_a_base_url_and_leaves_out_the_warm_up(
    binary: Path, short_dir: Path
) -> None:
    server = FakeTCPCA()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        csrs = short_dir / "csrs.pem"
        csrs.write_text(_pem("CERTIFICATE REQUEST", GOOD))
        host, port = server.server_address[:2]
        result = driver.run(
            binary, url=f"http://{host!s}:{port}/ca/", csr_file=csrs, clients=2, seconds=0.3,
            warmup=0.2,
        )  # fmt: skip
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    assert server.bad_requests == []
    assert 0 < result.successes == result.requests
    # The warm-up's answers (0.2 s of them) are not counted.
    assert server.answered[GOOD] > result.requests + 2
    assert server.connections == 2


def test_loadgen_refuses_a_csr_file_without_csrs(binary: Path, short_dir: Path) -> None:
    empty = short_dir / "none.pem"
    empty.write_text(_pem("CERTIFICATE", b"x"))
    with pytest.raises(RuntimeError, match="no CERTIFICATE REQUEST PEM block in"):
        driver.run(
            binary, socket=short_dir / "absent.sock", csr_file=empty, clients=1, seconds=1,
            warmup=0,
        )  # fmt: skip
