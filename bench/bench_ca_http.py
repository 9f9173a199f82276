"""Benchmark: certificates per second and latency through the CA's HTTP API (unix socket).

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_ca_http.py`); prints a
Markdown section. It builds a throw-away CA (private SoftHSM token, `padlock.ca.ceremony`
root + HSM intermediate, SQLite ledger in WAL with synchronous=FULL), starts `padlock ca
serve` as its own process group, and drives `POST /v1/sign` with bench/loadgen (a small Go
program: one keep-alive connection per client, a fresh idempotency key per request; see its
main.go) at 1, 16 and 64 concurrent clients:

- lint on: own structural checks + pkilint (RFC 5280 validators) on every certificate, in
  `BENCH_LINT_PROCESSES` worker processes in total;
- lint off: structural checks only.

Every issuance also pre-signs the certificate's "good" OCSP response in the HSM, as
`padlock ca serve` does, and stores it in the ledger in the certificate's own transaction
(concurrent issuances share transactions: `padlock.ca.group_commit`).

Settings (environment): BENCH_SECONDS (5) measured seconds per cell after BENCH_WARMUP (1)
seconds of warm-up; BENCH_CELLS (e.g. "off:16,on:16"; default all six cells);
BENCH_CA_WORKERS (2) CA worker processes, written as top-level `workers:` in the CA config,
or 1 when this padlock's CAConfig has no `workers` field yet; BENCH_LINT_PROCESSES (cores);
BENCH_CSRS (4000) pre-generated P-256 CSRs, cycled. The raw SoftHSM signing rate (ECDSA
P-256 over a TBS-sized message, one thread) is measured in the same run, before the CA starts.
CPU per certificate is read over each cell's measured window: the CA's whole process tree
from /proc (server, its worker processes, pkilint workers) and the load generator's own
getrusage. Client, server and lint workers share the machine's cores.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from loadgen import driver
from padlock.ca import ceremony, client
from padlock.ca import config as ca_config

SECONDS = float(os.environ.get("BENCH_SECONDS", "5"))
WARMUP = float(os.environ.get("BENCH_WARMUP", "1"))
LINT_PROCESSES = int(os.environ.get("BENCH_LINT_PROCESSES", str(os.cpu_count() or 2)))
WORKERS = int(os.environ.get("BENCH_CA_WORKERS", "2"))
CELLS = os.environ.get("BENCH_CELLS", "on:1,on:16,on:64,off:1,off:16,off:64")
MODULE = os.environ.get("PADLOCK_TEST_PKCS11_MODULE", ca_config.DEFAULT_SOFTHSM_MODULE)
PASSPHRASE = secrets.token_hex(16).encode()
CORES = os.cpu_count() or 1
PYTHON_CLIENT_CPU = "0.6-1.5"  # ms/cert of padlock.ca.client.CAClient (RESULTS.md, 15:04 UTC)


def parse_cells(spec: str) -> dict[bool, list[int]]:
    """ "on:16,off:1" -> {True: [16], False: [1]}: clients per lint mode, in the given order."""
    cells: dict[bool, list[int]] = {}
    for item in spec.replace(" ", "").split(","):
        mode, _, clients = item.partition(":")
        if mode not in ("on", "off") or not clients.isdigit() or int(clients) < 1:
            raise SystemExit(f"BENCH_CELLS: {item!r} is not on:N or off:N (N >= 1)")
        cells.setdefault(mode == "on", []).append(int(clients))
    return cells


def workers_supported() -> bool:
    return "workers" in {f.name for f in dataclasses.fields(ca_config.CAConfig)}


def make_csrs(count: int, path: Path) -> None:
    with path.open("w") as out:
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
            out.write(csr.public_bytes(serialization.Encoding.PEM).decode())


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


def write_config(path: Path, lint: bool, workers: int, work: Path, tag: str) -> Path:
    config = dataclasses.replace(
        ca_config.load(path),
        ledger=ca_config.LedgerSettings(url=f"sqlite:///{work / f'ledger-{tag}.db'}"),
        listen=ca_config.ListenConfig(socket=work / f"ca-{tag}.sock"),
        lint=ca_config.LintConfig(enabled=lint, processes=LINT_PROCESSES if lint else 0),
        rate_limit=ca_config.RateLimitConfig(requests_per_second=1e9, burst=1_000_000_000),
        signing_threads=4,
    )
    raw = config.to_dict()
    if workers_supported():
        raw["workers"] = workers
    out = path.with_name(f"ca-{tag}.yaml")
    out.write_text(yaml.safe_dump(raw, sort_keys=False))
    return out


_TICK = os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(root_pid: int) -> float:
    """user+system CPU seconds of `root_pid` and all its live descendants (the CA, its worker
    processes, forkserver and pkilint workers), from /proc; each live process's reaped
    children (cutime, cstime) count too, so a recycled pkilint worker is not lost."""
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
        cpu[pid] = sum(int(f) for f in fields[11:15]) / _TICK  # utime stime cutime cstime
    total, todo = 0.0, [root_pid]
    while todo:
        pid = todo.pop()
        total += cpu.get(pid, 0.0)
        todo += [child for child, parent in parents.items() if parent == pid]
    return total


@dataclasses.dataclass(frozen=True)
class Cell:
    lint: bool
    load: driver.LoadResult
    server_cpu: float

    def row(self) -> str:
        r = self.load
        per_cert = 1000 / max(r.successes, 1)
        ca_ms, client_ms = self.server_cpu * per_cert, r.cpu_seconds * per_cert
        ceiling = CORES * 1000 / (ca_ms + client_ms) if r.successes else 0.0
        nan = float("nan")
        return (
            f"| {'on' if self.lint else 'off'} | {r.clients} | {r.successes} | {r.failures} | "
            f"{r.certs_per_s:,.0f} | {r.latency_ms.get('p50', nan):.1f} | "
            f"{r.latency_ms.get('p99', nan):.1f} | {ca_ms:.2f} | {client_ms:.3f} | "
            f"{ceiling:,.0f} |"
        )


async def wait_healthy(socket: Path, proc: subprocess.Popen[bytes]) -> None:
    async with client.CAClient(socket_path=socket, timeout=2) as ca:
        for _ in range(600):
            if proc.poll() is not None:
                raise RuntimeError("padlock ca serve exited during start-up")
            if await ca.healthy():
                return
            await asyncio.sleep(0.1)
    raise RuntimeError("padlock ca serve did not become healthy")


@contextlib.contextmanager
def serving(config: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """`padlock ca serve` in its own process group; SIGTERM on exit, then SIGKILL to whatever
    of that group (workers, pkilint) is still alive."""
    padlock = str(Path(sys.executable).with_name("padlock"))
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [padlock, "ca", "serve", "--config", str(config)],
            env=env, stdout=out, stderr=out, start_new_session=True,
        )  # fmt: skip
    try:
        yield proc
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)


def run_mode(
    config_path: Path, env: dict[str, str], lint: bool, workers: int, clients: list[int],
    csr_file: Path, loadgen: Path, work: Path,
) -> list[Cell]:  # fmt: skip
    """Start `padlock ca serve` for one lint mode and drive it at each client count."""
    tag = "lint-on" if lint else "lint-off"
    path = write_config(config_path, lint, workers, work, tag)
    socket = ca_config.load(path).listen.socket
    assert socket is not None
    cells = []
    log = work / f"{tag}.log"
    try:
        with serving(path, env, log) as proc:
            asyncio.run(wait_healthy(socket, proc))
            for n in clients:
                window: list[float] = []

                def snapshot(pid: int = proc.pid, marks: list[float] = window) -> None:
                    marks.append(tree_cpu_seconds(pid))

                load = driver.run(
                    loadgen, socket=socket, csr_file=csr_file, clients=n, seconds=SECONDS,
                    warmup=WARMUP, on_measuring=snapshot, on_measured=snapshot,
                )  # fmt: skip
                cells.append(Cell(lint, load, window[1] - window[0]))
                if proc.poll() is not None:
                    raise RuntimeError(f"padlock ca serve exited ({proc.returncode}) under load")
    except Exception:
        # The work directory is removed on the way out: show the CA's own account first.
        tail = log.read_text(errors="replace").splitlines()[-30:] if log.exists() else []
        print(f"--- last lines of the CA log ({tag}) ---", *tail, sep="\n", file=sys.stderr)
        raise
    return cells


def main() -> int:
    plan = parse_cells(CELLS)
    loadgen = driver.build()
    workers = WORKERS if workers_supported() else 1
    load_at_start = os.getloadavg()
    work = Path(tempfile.mkdtemp(prefix="padlock-bench-ca-"))
    try:
        config_path, env = make_ca(work)
        raw = raw_signing_rate(ca_config.load(config_path))
        csr_file = work / "csrs.pem"
        make_csrs(int(os.environ.get("BENCH_CSRS", "4000")), csr_file)
        cells: list[Cell] = []
        for lint, clients in plan.items():
            cells += run_mode(config_path, env, lint, workers, clients, csr_file, loadgen, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print_section(cells, raw, workers, load_at_start)
    return 0


def print_section(
    cells: list[Cell], raw: float, workers: int, load: tuple[float, float, float]
) -> None:
    print("### CA HTTP API: POST /v1/sign over the unix socket\n")
    settings = [
        f"{name}={os.environ[name]} "
        for name in (
            "BENCH_CELLS",
            "BENCH_CA_WORKERS",
            "BENCH_SECONDS",
            "BENCH_WARMUP",
            "BENCH_LINT_PROCESSES",
        )
        if name in os.environ
    ]
    print(f"`{''.join(settings)}.venv/bin/python bench/bench_ca_http.py`  ")
    if workers_supported():
        workers_note = f"{workers} CA worker process(es) (`workers: {workers}`)"
    else:
        workers_note = (
            f"1 CA process (BENCH_CA_WORKERS={WORKERS} asked for, but this padlock's CAConfig "
            "has no `workers` field yet)"
        )
    print(
        f"`padlock ca serve`: {workers_note}, SQLite ledger (WAL, synchronous=FULL), SoftHSM "
        f"P-256 intermediate, P-256 CSRs, every issuance also pre-signs its OCSP response "
        f"(HSM), committed with it (group commit); pkilint in {LINT_PROCESSES} processes in "
        f"total when lint is on. Load from bench/loadgen (Go, one keep-alive connection per "
        f"client, fresh idempotency key per request), {WARMUP:g} s warm-up then {SECONDS:g} s "
        f"measured per cell. {CORES} cores shared by client, CA and linters; load average at "
        f"start {load[0]:.2f} / {load[1]:.2f} / {load[2]:.2f} (1 / 5 / 15 min).\n"
    )
    print(
        "| lint | clients | certificates | errors | certs/s | p50 ms | p99 ms "
        "| CA CPU ms/cert | client CPU ms/cert | CPU ceiling certs/s |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for cell in cells:
        print(cell.row())
    print(f"\nRaw SoftHSM ECDSA P-256 signing, one thread, same run: {raw:,.0f} signatures/s.")
    print(
        "CA CPU ms/cert: CPU of `padlock ca serve`'s whole process tree (workers, pkilint) per "
        "certificate, from /proc; client CPU ms/cert: the load generator's own (getrusage), "
        f"against {PYTHON_CLIENT_CPU} ms for the aiohttp `padlock.ca.client` it replaced. "
        f"CPU ceiling = {CORES} cores x 1000 / (CA + client CPU ms per certificate): the rate "
        "an otherwise idle machine could reach if CPU were the only limit."
    )
    failed = {
        f"{'on' if c.lint else 'off'}:{c.load.clients} {key}": e
        for c in cells
        for key, e in c.load.errors.items()
    }
    for where, e in failed.items():
        print(f"- errors, {where}: {e.count} (e.g. {e.sample!r})")
    print()


if __name__ == "__main__":
    sys.exit(main())
