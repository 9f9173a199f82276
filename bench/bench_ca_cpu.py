"""Benchmark: CPU per certificate inside ONE CA process, without HTTP (issue #4).

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_ca_cpu.py`; add
`--profile out.prof` for a cProfile of the concurrent run); prints a Markdown section. It
builds a throw-away CA (private SoftHSM token, `padlock.ca.ceremony` root + HSM
intermediate with its delegated OCSP responder key, SQLite ledger), opens the real
`padlock.services.ca_http` application's resources (thread pool, ledger, HSM key, pipeline,
OCSP pre-signing) without serving HTTP, and calls `Pipeline.issue()` directly from 1 and 32
concurrent tasks, lint off (structural checks only). The figure that matters is CPU ms per
certificate of this process (`time.process_time`, all threads), split by thread (the event
loop, the `padlock-ca` pool, system time of all) from /proc/self/task: the machine's 2 cores
are shared, so certificates per second depend on what else runs. (`--profile` sees the event
loop thread only, as cProfile does.)

A second table times the pipeline's steps one at a time on one certificate (median of many
rounds, CPU ms), to show where the per-certificate cost goes, including the floor no Python
change removes: one SoftHSM signature and one ECDSA verification.

Settings (environment): BENCH_CERTS (1500) certificates per row, BENCH_CLIENTS ("1,32"),
BENCH_STEPS (1; 0 skips the step table).
"""

from __future__ import annotations

import asyncio
import cProfile
import dataclasses
import os
import shutil
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from aiohttp import web
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

import bench_ca_http
from padlock.ca import config as ca_config
from padlock.ca import pipeline
from padlock.services import ca_http
from padlock.services.ca_http import state

COUNT = int(os.environ.get("BENCH_CERTS", "1500"))
CONCURRENCY = tuple(int(n) for n in os.environ.get("BENCH_CLIENTS", "1,32").split(","))


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


def make_config(work: Path) -> ca_config.CAConfig:
    config_path, _ = bench_ca_http.make_ca(work)  # same throw-away SoftHSM CA
    config = ca_config.load(config_path)
    return dataclasses.replace(
        config,
        ledger=ca_config.LedgerSettings(url=f"sqlite:///{work / 'ledger.db'}"),
        lint=ca_config.LintConfig(enabled=False, processes=0),
        rate_limit=ca_config.RateLimitConfig(requests_per_second=1e9, burst=1_000_000_000),
        signing_threads=4,
    )


_TICK = os.sysconf("SC_CLK_TCK")


def thread_cpu() -> dict[str, float]:
    """CPU seconds (user+system) of this process's threads, summed by thread name."""
    names = {t.native_id: t.name for t in threading.enumerate()}
    main = threading.main_thread().native_id
    out: dict[str, float] = {}
    for task in Path("/proc/self/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        tid = int(task.name)
        name = names.get(tid, "other")
        group = "event loop" if tid == main else name.rstrip("_0123456789")
        out[group] = out.get(group, 0.0) + (int(fields[11]) + int(fields[12])) / _TICK
    return out


@dataclasses.dataclass
class Cell:
    clients: int
    done: int
    seconds: float
    cpu: float
    by_thread: dict[str, float]

    def row(self) -> str:
        per = {k: v * 1000 / self.done for k, v in sorted(self.by_thread.items()) if v > 0}
        split = ", ".join(f"{k} {v:.2f}" for k, v in per.items())
        return (
            f"| {self.clients} | {self.done} | {self.done / self.seconds:,.0f} | "
            f"{self.cpu * 1000 / self.done:.2f} | {split} |"
        )


async def drive(pipe: pipeline.Pipeline, csrs: list[str], clients: int, tag: str) -> Cell:
    index = 0

    async def worker() -> None:
        nonlocal index
        while index < len(csrs):
            i = index
            index += 1
            await pipe.issue(
                pipeline.SignRequest(csrs[i], "tls-server", 86400, f"{tag}/{i}", "bench")
            )

    threads = thread_cpu()
    times = os.times()
    cpu, started = time.process_time(), time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(clients)))
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    after = thread_cpu()
    after_times = os.times()
    threads["system (all threads)"] = times.system - after_times.system
    after["system (all threads)"] = 0.0
    by_thread = {k: v - threads.get(k, 0.0) for k, v in after.items()}
    return Cell(clients, len(csrs), elapsed, cpu, by_thread)


def cpu_ms(func: Callable[[], object], rounds: int = 200) -> float:
    """Median CPU ms of one call of `func` (blocks of 10 calls)."""
    samples = []
    for _ in range(rounds // 10):
        started = time.process_time()
        for _ in range(10):
            func()
        samples.append((time.process_time() - started) / 10)
    return statistics.median(samples) * 1000


def steps(pipe: pipeline.Pipeline, csr_pem: str) -> list[tuple[str, float]]:
    """CPU ms of the pipeline's blocking steps, each alone, for one certificate."""
    from padlock.ca import lintgate
    from padlock.pki import csr as pki_csr
    from padlock.pki import der

    request = pipeline.SignRequest(csr_pem, "tls-server", 86400, "steps", "bench")
    csr = pki_csr.load_csr(csr_pem.encode())
    approved = pipe._approve(csr, request)
    serial = 0x1234567890ABCDEF
    cert = pipe.key.sign_with(lambda k: pipe._sign(approved, serial, k))
    expected = lintgate.Expected(
        approved.profile, approved.public_key, approved.subject, approved.sans, serial,
        approved.not_before, approved.not_after,
    )  # fmt: skip
    out = [
        ("parse CSR (PEM)", cpu_ms(lambda: pki_csr.load_csr(csr_pem.encode()))),
        (
            "policy (CSR signature, names)",
            cpu_ms(lambda: pipe._approve(pki_csr.load_csr(csr_pem.encode()), request)),
        ),
        (
            "build + HSM sign",
            cpu_ms(lambda: pipe.key.sign_with(lambda k: pipe._sign(approved, serial, k))),
        ),
        (
            "structural lint (incl. signature check)",
            cpu_ms(
                lambda: lintgate.structural_findings(cert, pipe.authority.certificate, expected)
            ),
        ),
    ]
    if pipe.presign is not None:
        presign = pipe.presign
        out.append(("OCSP pre-sign (HSM)", cpu_ms(lambda: presign(serial))))
    tbs = cert.tbs_certificate_bytes
    out += [
        (
            "floor: one SoftHSM P-256 signature (PKCS#11)",
            cpu_ms(lambda: pipe.key.sign_with(lambda k: der.sign(k, tbs))),
        ),
        (
            "floor: one ECDSA P-256 verification",
            cpu_ms(lambda: cert.verify_directly_issued_by(pipe.authority.certificate)),
        ),
    ]
    return out


async def run(
    config: ca_config.CAConfig, profile: str | None
) -> tuple[list[Cell], list[tuple[str, float]]]:
    app = ca_http.init_app(config)
    runner = web.AppRunner(app)
    await runner.setup()  # opens every resource (cleanup contexts); serves nothing
    try:
        pipe = app[state.CA].pipeline
        csrs = make_csrs(COUNT)
        await drive(pipe, csrs[:50], 4, "warm")
        cells = []
        for clients in CONCURRENCY:
            profiler = cProfile.Profile() if profile and clients > 1 else None
            if profiler is not None:
                profiler.enable()
            cells.append(await drive(pipe, csrs, clients, f"c{clients}"))
            if profiler is not None:
                profiler.disable()
                profiler.dump_stats(str(profile))
        return cells, steps(pipe, csrs[0]) if os.environ.get("BENCH_STEPS", "1") == "1" else []
    finally:
        await runner.cleanup()


def main(argv: list[str]) -> int:
    profile = argv[argv.index("--profile") + 1] if "--profile" in argv else None
    work = Path(tempfile.mkdtemp(prefix="padlock-bench-cpu-"))
    try:
        config = make_config(work)
        load_before = os.getloadavg()[0]
        cells, timed = asyncio.run(run(config, profile))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("### CA pipeline: CPU per certificate in one process (no HTTP)\n")
    print("`.venv/bin/python bench/bench_ca_cpu.py`  ")
    print(
        f"`Pipeline.issue()` called directly on the real CA resources (SoftHSM P-256 "
        f"intermediate and OCSP responder key, SQLite WAL ledger, 4 threads), lint off "
        f"(structural checks only), P-256 CSRs, {COUNT} certificates per row; "
        f"load average at start {load_before:.2f}.\n"
    )
    print("| clients | certificates | certs/s | CPU ms/cert | by thread (ms/cert) |")
    print("|---:|---:|---:|---:|---|")
    for cell in cells:
        print(cell.row())
    print("\n| step (one certificate, alone) | CPU ms |")
    print("|---|---:|")
    for name, ms in timed:
        print(f"| {name} | {ms:.3f} |")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
