"""Benchmark: how fast `padlock operator` makes 1,000 Certificates Ready, and its memory.

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_operator.py`); prints a
Markdown section. Uses the local control plane (`make up`'s, or starts its own under a temp
dir), a real CA (`padlock ca serve`, private SoftHSM token, SQLite ledger, lint on, rate limit
lifted) and `padlock operator -n <bench namespace>` as a subprocess, all on this machine.

1. 1,000 P-256 Certificates are created at once (async POSTs, 32 in flight); the clock runs
   from the first POST until a LIST shows all 1,000 Ready.
2. 10,000 unrelated Secrets are created in the same namespace, then 1,000 more Certificates
   (2,000 in all); the operator's RSS (VmRSS of its process) is read once all are Ready, and
   again after a restart has resumed all 2,000.

Targets from the issue: all Ready in < 60 s; RSS < 150 MB.
"""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "operator"))
sys.path.insert(0, str(ROOT))

from tests.integration.ca import procs  # noqa: E402
from tools.controlplane import local  # noqa: E402

from padlock.kube import paths  # noqa: E402
from padlock.kube.client import KubeClient, load_kubeconfig  # noqa: E402

PADLOCK = str(Path(sys.executable).with_name("padlock"))
FIRST_BATCH = int(os.environ.get("BENCH_CERTIFICATES", "1000"))
UNRELATED_SECRETS = int(os.environ.get("BENCH_UNRELATED_SECRETS", "10000"))
IN_FLIGHT = 32


def rss_mib(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metrics_text(port: int) -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as resp:
        return str(resp.read().decode())


def certificate(name: str) -> dict[str, Any]:
    return {
        "apiVersion": "padlock.dev/v1alpha1",
        "kind": "Certificate",
        "metadata": {"name": name},
        "spec": {
            "secretName": f"{name}-tls",
            "issuerRef": {"name": "ca"},
            "dnsNames": [f"{name}.bench.test"],
            "duration": "720h",
            "privateKey": {"algorithm": "ECDSA", "size": 256},
        },
    }


async def create_all(kube: KubeClient, path: str, bodies: list[dict[str, Any]]) -> None:
    slots = asyncio.Semaphore(IN_FLIGHT)

    async def one(body: dict[str, Any]) -> None:
        async with slots:
            await kube.create(path, body)

    await asyncio.gather(*(one(b) for b in bodies))


async def count_ready(kube: KubeClient, namespace: str) -> int:
    items = (await kube.get(paths.CERTIFICATES.path(namespace))).get("items") or []
    return sum(
        1
        for item in items
        if any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (item.get("status") or {}).get("conditions") or []
        )
    )


async def wait_ready(kube: KubeClient, namespace: str, want: int, limit: float) -> float:
    started = time.monotonic()
    while True:
        if await count_ready(kube, namespace) >= want:
            return time.monotonic() - started
        if time.monotonic() - started > limit:
            raise TimeoutError(f"fewer than {want} Ready after {limit:g}s")
        await asyncio.sleep(0.5)


class Operator:
    def __init__(self, kubeconfig: Path, namespace: str, ca_socket: Path, log: Path) -> None:
        self.port = free_port()
        self.args = [
            PADLOCK, "operator", "--kubeconfig", str(kubeconfig), "-n", namespace,
            "--ca-socket", str(ca_socket), "--metrics-host", "127.0.0.1",
            "--metrics-port", str(self.port),
        ]  # fmt: skip
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.proc = subprocess.Popen(self.args, stdout=log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=2):
                    return
            except OSError:
                time.sleep(0.2)
        raise RuntimeError(f"operator did not start; see {self.log}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


async def run(cp: local.ControlPlane, work: Path) -> list[tuple[str, str]]:
    ca_files = procs.make_isolated_ca(
        work / "ca", rate_limit={"requests_per_second": 1e9, "burst": 1_000_000_000}
    )
    ca = procs.CAProcess(ca_files)
    namespace = f"bench-operator-{secrets.token_hex(4)}"
    cp.kubectl("create", "namespace", namespace)
    kube = KubeClient(load_kubeconfig(cp.kubeconfig))
    operator = Operator(cp.kubeconfig, namespace, ca_files.socket, work / "operator.log")
    rows: list[tuple[str, str]] = []
    try:
        await ca.wait_healthy()
        await kube.create(
            paths.ISSUERS.path(namespace),
            {
                "apiVersion": "padlock.dev/v1alpha1",
                "kind": "Issuer",
                "metadata": {"name": "ca"},
                "spec": {"ca": {}},
            },
        )
        operator.start()
        assert operator.proc is not None
        rows.append(("operator RSS, idle (MiB)", f"{rss_mib(operator.proc.pid):.0f}"))
        path = paths.CERTIFICATES.path(namespace)
        started = time.monotonic()
        await create_all(kube, path, [certificate(f"c{i:05d}") for i in range(FIRST_BATCH)])
        created = time.monotonic() - started
        took = created + await wait_ready(kube, namespace, FIRST_BATCH, 600)
        rows.append((f"{FIRST_BATCH} Certificates created (s)", f"{created:.1f}"))
        rows.append((f"{FIRST_BATCH} Certificates all Ready (s, target < 60)", f"{took:.1f}"))
        rows.append(("issuance rate (certificates/s)", f"{FIRST_BATCH / took:.1f}"))
        rows.append(
            (f"operator RSS, {FIRST_BATCH} Certificates (MiB)", f"{rss_mib(operator.proc.pid):.0f}")
        )

        unrelated = [
            {
                "apiVersion": "v1",
                "kind": "Secret",
                "metadata": {"name": f"unrelated-{i:05d}"},
                "data": {"x": "eA=="},
            }
            for i in range(UNRELATED_SECRETS)
        ]
        await create_all(kube, paths.SECRETS.path(namespace), unrelated)
        await create_all(
            kube, path, [certificate(f"c{i:05d}") for i in range(FIRST_BATCH, 2 * FIRST_BATCH)]
        )
        await wait_ready(kube, namespace, 2 * FIRST_BATCH, 900)
        rows.append(
            (
                f"operator RSS, {2 * FIRST_BATCH} Certificates + {UNRELATED_SECRETS} unrelated "
                "Secrets (MiB, target < 150)",
                f"{rss_mib(operator.proc.pid):.0f}",
            )
        )
        operator.stop()
        started = time.monotonic()
        operator.start()
        # Resumed once every Certificate's gauge is exported again.
        while True:
            text = await asyncio.to_thread(metrics_text, operator.port)
            seen = text.count("padlock_certificate_expiration_timestamp_seconds{")
            if seen >= 2 * FIRST_BATCH or time.monotonic() - started > 300:
                break
            await asyncio.sleep(1)
        rows.append(
            (f"restart: {seen} Certificates resumed (s)", f"{time.monotonic() - started:.1f}")
        )
        rows.append(("operator RSS after the restart (MiB)", f"{rss_mib(operator.proc.pid):.0f}"))
    finally:
        operator.stop()
        ca.terminate()
        await kube.close()
        cp.kubectl("delete", "namespace", namespace, "--wait=false", check=False)
    return rows


def main() -> int:
    with tempfile.TemporaryDirectory(prefix="padlock-bench-operator-") as tmp:
        work = Path(tmp)
        cp = local.find_running()
        own = cp is None
        if cp is None:
            cp = local.start(work / "controlplane", die_with_parent=True)
        try:
            local.apply_crds(cp)
            rows = asyncio.run(run(cp, work))
        finally:
            if own:
                local.stop(work / "controlplane")
    print("### Operator: Certificates to Ready, memory\n")
    print("`.venv/bin/python bench/bench_operator.py` (real control plane, real CA with SoftHSM,")
    print("lint on, `padlock operator` subprocess; all on this machine)\n")
    print("| measure | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
