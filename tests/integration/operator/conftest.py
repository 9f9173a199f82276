"""The operator for real: `padlock operator` as a subprocess, against the local control plane
(etcd + kube-apiserver + kube-controller-manager) and a real CA (`padlock ca serve`, SoftHSM).

- `ca_service` (module scope): a CA in its own process tree (tests.integration.ca.procs), which
  a test may stop and start again ("CA down then back").
- `operator`: a factory that starts `padlock operator -n <namespace>` (one namespace, so the
  tests share the control plane with others safely) and stops it at the end; `restart()`.
- `Kube`: kubectl + JSON helpers and `eventually`, which polls the API (no fixed sleeps).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import dataclasses
import json
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest

from tests.integration.ca import procs

PADLOCK = str(Path(sys.executable).with_name("padlock"))
T = TypeVar("T")


def eventually(check: Callable[[], T | None], timeout: float = 60, what: str = "") -> T:
    """Poll `check` until it returns a truthy value; fail with `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"not reached in {timeout:g}s: {what}")
        time.sleep(0.25)


@dataclasses.dataclass
class Kube:
    """kubectl in one namespace."""

    controlplane: Any
    namespace: str

    def kubectl(self, *args: str, input: str | None = None, check: bool = True) -> str:
        return str(
            self.controlplane.kubectl("-n", self.namespace, *args, input=input, check=check).stdout
        )

    def apply(self, manifest: str) -> None:
        self.kubectl("apply", "-f", "-", input=manifest)

    def get(self, kind: str, name: str) -> dict[str, Any] | None:
        proc = self.controlplane.kubectl(
            "-n", self.namespace, "get", kind, name, "-o", "json", check=False
        )
        if proc.returncode != 0:
            if "NotFound" in proc.stderr or "not found" in proc.stderr:
                return None
            raise AssertionError(proc.stderr)
        result: dict[str, Any] = json.loads(proc.stdout)
        return result

    def items(self, kind: str, *selector: str) -> list[dict[str, Any]]:
        out = self.kubectl("get", kind, *selector, "-o", "json")
        return list(json.loads(out)["items"])

    def secret_data(self, name: str, key: str) -> bytes | None:
        secret = self.get("secret", name)
        if secret is None or key not in (secret.get("data") or {}):
            return None
        return base64.b64decode(secret["data"][key])

    def certificate_status(self, name: str) -> dict[str, Any]:
        return dict((self.get("certificates.padlock.dev", name) or {}).get("status") or {})

    def ready(self, name: str) -> dict[str, Any] | None:
        for condition in self.certificate_status(name).get("conditions") or []:
            if condition.get("type") == "Ready":
                return dict(condition)
        return None

    def wait_revision(self, name: str, revision: int, timeout: float = 60) -> dict[str, Any]:
        def reached() -> dict[str, Any] | None:
            status = self.certificate_status(name)
            ready = self.ready(name)
            if status.get("revision") == revision and ready and ready["status"] == "True":
                return status
            return None

        return eventually(reached, timeout, f"Certificate {name} Ready at revision {revision}")


@pytest.fixture
def kube(controlplane: Any, namespace: str) -> Kube:
    return Kube(controlplane, namespace)


@dataclasses.dataclass
class CAService:
    files: procs.IsolatedCA
    process: procs.CAProcess | None = None

    def start(self) -> None:
        self.process = procs.CAProcess(self.files)
        asyncio.run(self.process.wait_healthy())

    def stop(self) -> None:
        if self.process is not None:
            self.process.terminate()
            self.process = None

    @property
    def root_pem(self) -> bytes:
        return self.files.root_file.read_bytes()


@pytest.fixture(scope="module")
def ca_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CAService]:
    service = CAService(procs.make_isolated_ca(tmp_path_factory.mktemp("operator-ca")))
    service.start()
    yield service
    service.stop()


def _free_port() -> int:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclasses.dataclass
class OperatorProcess:
    """`padlock operator` for one namespace; its log is in `log`."""

    args: list[str]
    log: Path
    metrics_port: int
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        eventually(self.healthy, 60, f"operator /healthz; log: {self.log}")

    def healthy(self) -> bool:
        if self.proc is not None and self.proc.poll() is not None:
            raise AssertionError(f"operator exited: {self.log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.metrics_port}/healthz", timeout=2
            ) as resp:
                return bool(resp.status == 200)
        except OSError:
            return False

    def metrics(self) -> str:
        with urllib.request.urlopen(
            f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5
        ) as resp:
            return str(resp.read().decode())

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def operator(
    controlplane: Any, namespace: str, ca_service: CAService, tmp_path: Path
) -> Iterator[OperatorProcess]:
    port = _free_port()
    op = OperatorProcess(
        args=[
            PADLOCK,
            "operator",
            "--kubeconfig",
            str(controlplane.kubeconfig),
            "--namespace",
            namespace,
            "--ca-socket",
            str(ca_service.files.socket),
            "--metrics-host",
            "127.0.0.1",
            "--metrics-port",
            str(port),
        ],
        log=tmp_path / "operator.log",
        metrics_port=port,
    )
    op.start()
    yield op
    op.stop()


def issuer_yaml(name: str = "ca", body: str = "ca: {}") -> str:
    return f"""
apiVersion: padlock.dev/v1alpha1
kind: Issuer
metadata: {{name: {name}}}
spec:
  {body}
"""


def certificate_yaml(
    name: str = "web",
    dns: tuple[str, ...] = ("web.example.test",),
    extra: str = "",
    issuer: str = "ca",
    duration: str = "720h",
) -> str:
    names = ", ".join(dns)
    return f"""
apiVersion: padlock.dev/v1alpha1
kind: Certificate
metadata: {{name: {name}}}
spec:
  secretName: {name}-tls
  issuerRef: {{name: {issuer}}}
  dnsNames: [{names}]
  duration: {duration}
{extra}
"""
