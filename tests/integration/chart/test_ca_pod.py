"""The CA pod runs from what the chart renders, in the pod's own file layout.

The pod is emulated (tests/integration/chart/pod.py: a mount namespace, UID 10001, pod start
order) with a real ceremony and SoftHSM token: the rendered init container seeds the token
PVC, the CA sidecar signs a certificate over the unix socket the operator is given, and the
keyless responder in the same pod answers `openssl ocsp` with "good" from the SQLite ledger.
"""

from __future__ import annotations

import http.client
import json
import pathlib
import socket
import subprocess
import time
import urllib.request
from typing import Any

import pytest

from tests.integration.chart import pod as pod_mod
from tests.unit.chart import render

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]


class _UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: pathlib.Path) -> None:
        super().__init__("ca", timeout=30)
        self._path = str(path)

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect(self._path)


def _call(sock: pathlib.Path, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = _UnixHTTP(sock)
    data = None if body is None else json.dumps(body).encode()
    conn.request(method, path, body=data, headers={"Content-Type": "application/json"})
    resp = conn.getresponse()
    return resp.status, json.loads(resp.read())


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def ocsp_status(work: pathlib.Path, leaf: str, issuer: str, root: pathlib.Path, port: int) -> str:
    """`openssl ocsp` against the responder: its output, once it names a status (or after 10s)."""
    (work / "leaf.pem").write_text(leaf)
    (work / "issuer.pem").write_text(issuer)
    answer = ""
    for _ in range(50):
        proc = subprocess.run(
            [
                "openssl",
                "ocsp",
                "-issuer",
                str(work / "issuer.pem"),
                "-cert",
                str(work / "leaf.pem"),
                "-url",
                f"http://127.0.0.1:{port}",
                "-CAfile",
                str(root),
                "-verify_other",
                str(work / "issuer.pem"),
                "-no_nonce",
            ],
            capture_output=True,
            text=True,
        )
        answer = proc.stdout + proc.stderr
        if ": good" in answer or ": revoked" in answer:
            break
        time.sleep(0.2)
    return answer


def test_ca_pod_issues_and_its_responder_answers_good(
    tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    pod_mod.need_root()
    ceremony = pod_mod.ceremony(tmp_path / "ceremony")
    port = free_port()
    # Ports are on the host here (no pod network): never the chart's fixed defaults.
    objects = render.template(sets=[f"ocsp.port={port}", f"ca.metricsPort={free_port()}"])
    spec = render.one(objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    config = render.one(objects, "ConfigMap", "padlock-config")["data"]
    sources = pod_mod.volumes(config, ceremony, tmp_path / "volumes")
    out = pod_mod.shared_dir(request)
    running = pod_mod.start(
        spec, sources, out, tmp_path / "layers", run=["seed-softhsm-token", "ca", "ocsp"]
    )
    try:
        sock = sources["ca-socket"] / "ca.sock"
        status, info = _call(sock, "GET", "/v1/ca")
        assert status == 200, running.logs()
        # The chain comes from the chain ConfigMap mount, the URLs from the chart.
        intermediate = (ceremony / "intermediate/intermediate.pem").read_text().strip()
        assert intermediate in info["chain"]
        assert info["ocsp_url"] == "http://padlock-ocsp.pki.svc"
        csr = tmp_path / "req.csr"
        subprocess.run(
            [
                "openssl",
                "req",
                "-new",
                "-newkey",
                "ec",
                "-pkeyopt",
                "ec_paramgen_curve:P-256",
                "-nodes",
                "-keyout",
                str(tmp_path / "req.key"),
                "-out",
                str(csr),
                "-subj",
                "/CN=web.pki.svc",
                "-addext",
                "subjectAltName=DNS:web.pki.svc",
            ],
            check=True,
            capture_output=True,
        )
        status, issued = _call(
            sock,
            "POST",
            "/v1/sign",
            {
                "csr": csr.read_text(),
                "profile": "tls-server",
                "lifetime_seconds": 86400,
                "idempotency_key": "pki/web/1",
                "requester": "system:serviceaccount:pki:padlock",
            },
        )
        assert status == 200, f"{issued}{running.logs()}"
        answer = ocsp_status(
            tmp_path,
            issued["certificate"],
            issued["chain"],
            ceremony / "intermediate/root.pem",
            port,
        )
        assert "leaf.pem: good" in answer, f"{answer}{running.logs()}"
        assert "Response verify OK" in answer, answer
        # What the ServiceMonitor scrapes on the responder's http port.
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
            assert 'padlock_ocsp_requests_total{status="good"}' in resp.read().decode()
    finally:
        running.stop()
    # The token PVC was seeded by the init container; the ledger is owned by the image's user.
    assert list(sources["softhsm-tokens"].glob("*/token.object"))
    assert (sources["ledger"] / "ledger.db").stat().st_uid == pod_mod.UID
    assert "/run/padlock/ca.sock" in render.container(spec, "operator")["args"]
