"""Benchmark: certificates per second and latency through the CA's HTTP API (unix socket).

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_ca_http.py`); prints a
Markdown section. It builds a throw-away CA (private SoftHSM token, `padlock.ca.ceremony`
root + HSM intermediate, SQLite ledger), starts `padlock ca serve` as its own process, and
drives `POST /v1/sign` with `padlock.ca.client.CAClient` from this process at 1, 16 and 64
concurrent clients:

- lint on: own structural checks + pkilint (RFC 5280 validators) on every certificate, in
  `LINT_PROCESSES` worker processes;
- lint off: structural checks only.

Every issuance also pre-signs the certificate's "good" OCSP response in the HSM, as
`padlock ca serve` does, and stores it in the ledger in the certificate's own transaction
(concurrent issuances share transactions: `padlock.ca.group_commit`).

CSRs (P-256) are generated before the clock starts. Every request has its own idempotency
key, and the rate limit is lifted. Each cell runs for BENCH_SECONDS (default 5) seconds. The
raw SoftHSM signing rate (ECDSA P-256 over a TBS-sized message, one thread) is measured in the
same run, before the CA starts. Client, server and lint workers share the machine's cores.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from padlock.ca import ceremony, client
from padlock.ca import config as ca_config

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
CONCURRENCY = (1, 16, 64)
LINT_PROCESSES = int(os.environ.get("BENCH_LINT_PROCESSES", str(os.cpu_count() or 2)))
MODULE = os.environ.get("PADLOCK_TEST_PKCS11_MODULE", ca_config.DEFAULT_SOFTHSM_MODULE)
PASSPHRASE = secrets.token_hex(16).encode()


def make_csrs(count: int) -> list[str]:
    out = []
    for i in range(count):
        key = ec.generate_private_key(ec.SECP256R1())
        csr = (
            x509.CertificateSigningRequestBuilder()
            .subject_name(x509.Name([]))
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(f"svc-{i}.bench.test")]),
                critical=False,
            )
            .sign(key, hashes.SHA256())
        )
        out.append(csr.public_bytes(serialization.Encoding.PEM).decode())
    return out


def make_ca(work: Path) -> tuple[Path, dict[str, str]]:
    """Private SoftHSM + ceremony; returns (ca.yaml, environment for the server)."""
    tokendir = work / "tokens"
    tokendir.mkdir()
    conf = work / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {tokendir}\nobjectstore.backend = file\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    pin = secrets.token_hex(8)
    (work / "pin.txt").write_text(pin)
    subprocess.run(
        ["softhsm2-util", "--init-token", "--free", "--label", "bench",
         "--so-pin", secrets.token_hex(8), "--pin", pin],
        check=True, capture_output=True,
    )  # fmt: skip
    ceremony.init_root(work / "root", PASSPHRASE)
    result = ceremony.init_intermediate(
        work / "root",
        PASSPHRASE,
        work / "ca",
        pkcs11=ca_config.Pkcs11Config(
            module=MODULE, token_label="bench", pin_file=work / "pin.txt"
        ),
    )
    return result.config_path, dict(os.environ)


def raw_signing_rate(config: ca_config.CAConfig) -> float:
    """ECDSA P-256 signatures per second through padlock's PKCS#11 key, one thread."""
    from padlock.keys.pkcs11 import Token

    with Token.open(
        config.pkcs11.module, config.pkcs11.token_label, pin_file=config.pkcs11.pin_file
    ) as token:
        key = token.load(config.pkcs11.key_label).private_key()
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        message = secrets.token_bytes(400)  # about a leaf TBSCertificate
        key.sign(message, ec.ECDSA(hashes.SHA256()))
        count, started = 0, time.perf_counter()
        while time.perf_counter() - started < min(SECONDS, 3):
            for _ in range(50):
                key.sign(message, ec.ECDSA(hashes.SHA256()))
            count += 50
        return count / (time.perf_counter() - started)


def write_config(path: Path, lint: bool, work: Path, tag: str) -> Path:
    config = ca_config.load(path)
    config = dataclasses.replace(
        config,
        ledger=ca_config.LedgerSettings(url=f"sqlite:///{work / f'ledger-{tag}.db'}"),
        listen=ca_config.ListenConfig(socket=work / f"ca-{tag}.sock"),
        lint=ca_config.LintConfig(enabled=lint, processes=LINT_PROCESSES if lint else 0),
        rate_limit=ca_config.RateLimitConfig(requests_per_second=1e9, burst=1_000_000_000),
        signing_threads=4,
    )
    out = path.with_name(f"ca-{tag}.yaml")
    ca_config.dump(config, out)
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root_pid: int) -> float:
    """user+system CPU seconds of `root_pid` and all its live descendants (the CA, its
    forkserver and pkilint workers), from /proc."""
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        pid = int(entry.name)
        parents[pid] = int(fields[1])
        cpu[pid] = (int(fields[11]) + int(fields[12])) / _TICK
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


@dataclasses.dataclass
class Cell:
    mode: str
    clients: int
    done: int
    errors: int
    seconds: float
    latencies: list[float]
    server_cpu: float = 0.0
    client_cpu: float = 0.0

    def row(self) -> str:
        lat = sorted(self.latencies) or [float("nan")]
        p50 = statistics.median(lat) * 1000
        p99 = lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000
        per_cert = 1000 / max(self.done, 1)
        return (
            f"| {self.mode} | {self.clients} | {self.done} | {self.errors} | "
            f"{self.done / self.seconds:,.0f} | {p50:.1f} | {p99:.1f} | "
            f"{self.server_cpu * per_cert:.1f} | {self.client_cpu * per_cert:.1f} |"
        )


async def drive(socket: Path, csrs: list[str], clients: int, mode: str, pid: int) -> Cell:
    latencies: list[float] = []
    errors = 0
    index = 0
    stop_at = time.perf_counter() + SECONDS

    async def worker(ca: client.CAClient, w: int) -> None:
        nonlocal errors, index
        while time.perf_counter() < stop_at:
            i = index
            index += 1
            started = time.perf_counter()
            try:
                await ca.sign(
                    csrs[i % len(csrs)], "tls-server", 86400, f"bench/{mode}/{clients}/{i}",
                    f"bench/{w}",
                )  # fmt: skip
            except client.CAError:
                errors += 1
                continue
            latencies.append(time.perf_counter() - started)

    async with client.CAClient(socket_path=socket, timeout=60) as ca:
        await ca.sign(csrs[0], "tls-server", 86400, f"warm/{mode}/{clients}", "bench/warm")
        server_before, client_before = tree_cpu_seconds(pid), time.process_time()
        started = time.perf_counter()
        await asyncio.gather(*(worker(ca, w) for w in range(clients)))
        elapsed = time.perf_counter() - started
        server_cpu = tree_cpu_seconds(pid) - server_before
        client_cpu = time.process_time() - client_before
    return Cell(mode, clients, len(latencies), errors, elapsed, latencies, server_cpu, client_cpu)


async def wait_healthy(socket: Path, proc: subprocess.Popen[bytes]) -> None:
    async with client.CAClient(socket_path=socket, timeout=2) as ca:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("padlock ca serve exited during start-up")
            if await ca.healthy():
                return
            await asyncio.sleep(0.1)
    raise RuntimeError("padlock ca serve did not become healthy")


async def drive_all(
    socket: Path, proc: subprocess.Popen[bytes], csrs: list[str], tag: str
) -> list[Cell]:
    await wait_healthy(socket, proc)
    return [await drive(socket, csrs, n, tag, proc.pid) for n in CONCURRENCY]


def run_mode(
    config_path: Path, env: dict[str, str], lint: bool, csrs: list[str], work: Path
) -> list[Cell]:
    """Start `padlock ca serve` for one lint mode, drive it, stop it with SIGTERM."""
    tag = "lint-on" if lint else "lint-off"
    path = write_config(config_path, lint, work, tag)
    socket = ca_config.load(path).listen.socket
    assert socket is not None
    padlock = str(Path(sys.executable).with_name("padlock"))
    with (work / f"{tag}.log").open("wb") as log:
        proc = subprocess.Popen(
            [padlock, "ca", "serve", "--config", str(path)], env=env, stdout=log, stderr=log
        )
    try:
        return asyncio.run(drive_all(socket, proc, csrs, tag))
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def main() -> int:
    work = Path(tempfile.mkdtemp(prefix="padlock-bench-ca-"))
    try:
        config_path, env = make_ca(work)
        load_before = os.getloadavg()[0]
        raw = raw_signing_rate(ca_config.load(config_path))
        csrs = make_csrs(int(os.environ.get("BENCH_CSRS", "4000")))
        cells: list[Cell] = []
        for lint in (True, False):
            cells += run_mode(config_path, env, lint, csrs, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("### CA HTTP API: POST /v1/sign over the unix socket\n")
    print("`.venv/bin/python bench/bench_ca_http.py`  ")
    print(
        f"`padlock ca serve` in its own process, SQLite ledger (WAL, synchronous=FULL), "
        f"SoftHSM P-256 intermediate, P-256 CSRs, {SECONDS:g} s per cell, "
        f"pkilint in {LINT_PROCESSES} processes when lint is on; every issuance also "
        f"pre-signs its OCSP response (HSM), committed with it (group commit); "
        f"{os.cpu_count()} cores shared by client, server and linters; "
        f"load average at start {load_before:.2f}.\n"
    )
    print(
        "| lint | clients | certificates | errors | certs/s | p50 ms | p99 ms "
        "| CA CPU ms/cert | client CPU ms/cert |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cell in cells:
        print(cell.row())
    print(f"\nRaw SoftHSM ECDSA P-256 signing, one thread, same run: {raw:,.0f} signatures/s.")
    print(
        "CA CPU ms/cert is the CPU time of `padlock ca serve` and its pkilint workers per "
        "certificate (from /proc); on an idle machine the throughput ceiling is about "
        "cores x 1000 / (CA + client CPU ms per certificate), whatever the load here.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
