"""Benchmark: the lint gate's pool cost, ProcessPoolExecutor (before) vs padlock.ca.lintpool.

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_lintpool.py`); prints a
Markdown section. Issue #4 wants 400 certificates/s with pkilint on every one, on 2 cores, so
every CPU millisecond the CA process spends *around* pkilint counts. This bench drives both
pools from one asyncio event loop (as a CA process does), with 2 worker processes each:

- *before*: the gate as it was, `loop.run_in_executor(ProcessPoolExecutor(forkserver), ...)`,
  one job per certificate (copied below as `OldGate`, watchdog initializer included);
- *after*: `padlock.ca.lintgate.LintGate`, i.e. `padlock.ca.lintpool.LintPool`: one socket per
  worker, certificates queued together sent as one batch.

Jobs: the real pkilint (`lintgate.pkilint_findings` on a padlock tls-server leaf, RFC 5280
validators) and a job that does nothing (the pool's own cost alone). Each cell lints N
certificates with `concurrency` requests in flight (1: no batching possible; 32: a loaded CA).
The machine is shared, so the figures are CPU time, not wall time: *CA CPU* is this process
(event loop, plus the executor's management thread for *before*), *worker CPU* the sum over the
worker processes (/proc/<pid>/stat, 10 ms ticks). Several rounds alternate before and after;
the table gives the median round (best round in brackets).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import multiprocessing
import os
import statistics
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from cryptography import x509
from cryptography.hazmat.primitives import serialization

import bench_pkilint
from padlock.ca import lintgate, lintpool
from padlock.pki import lint as pki_lint
from padlock.pki import profiles

N = int(os.environ.get("BENCH_LINTPOOL_N", "200"))
ROUNDS = int(os.environ.get("BENCH_LINTPOOL_ROUNDS", "5"))
PROCESSES = 2
CONCURRENCY = (1, 32)
TICK = os.sysconf("SC_CLK_TCK")


def noop(der: bytes, cabf_serverauth: bool) -> list[lintgate.Finding]:
    """The no-op job: what the pool costs with nothing to lint."""
    return []


# --- the gate's pool before padlock.ca.lintpool (copied from lintgate.py at 995fbe8) --------


def _old_warm_up() -> None:
    pki_lint.warm_up()


def _old_worker_init(ca_pid: int) -> None:
    _old_warm_up()

    def watch() -> None:
        while True:
            time.sleep(1.0)
            try:
                os.kill(ca_pid, 0)
            except ProcessLookupError:
                os._exit(0)

    threading.Thread(target=watch, name="padlock-lint-watchdog", daemon=True).start()


class OldGate:
    def __init__(self, job: Callable[[bytes, bool], list[lintgate.Finding]]) -> None:
        self.job = job
        self.pool = concurrent.futures.ProcessPoolExecutor(
            max_workers=PROCESSES,
            mp_context=multiprocessing.get_context("forkserver"),
            initializer=_old_worker_init,
            initargs=(os.getpid(),),
        )
        for future in [self.pool.submit(_old_warm_up) for _ in range(PROCESSES)]:
            future.result()

    def pids(self) -> list[int]:
        return list(self.pool._processes)

    async def pkilint(self, cert: x509.Certificate, profile: profiles.Profile) -> object:
        der = cert.public_bytes(serialization.Encoding.DER)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.pool, self.job, der, False)

    def close(self) -> None:
        self.pool.shutdown(wait=True, cancel_futures=True)


class NewGate:
    """LintGate's pool path with a chosen job (LintGate itself always runs pkilint)."""

    def __init__(self, job: Callable[[bytes, bool], list[lintgate.Finding]]) -> None:
        self.pool = lintpool.LintPool(job, PROCESSES, warm_up=pki_lint.warm_up)

    def pids(self) -> list[int]:
        return self.pool.pids()

    async def pkilint(self, cert: x509.Certificate, profile: profiles.Profile) -> object:
        return await self.pool.lint(cert.public_bytes(serialization.Encoding.DER), False)

    def close(self) -> None:
        self.pool.close()


# --- measurement ---------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


async def _cell(
    lint: Callable[[x509.Certificate, profiles.Profile], Awaitable[object]],
    pids: list[int],
    cert: x509.Certificate,
    concurrency: int,
) -> tuple[float, float]:
    """(CA CPU ms, worker CPU ms) per certificate over N lints, `concurrency` in flight."""
    sem = asyncio.Semaphore(concurrency)

    async def one() -> None:
        async with sem:
            await lint(cert, profiles.TLS_SERVER)

    await asyncio.gather(*(one() for _ in range(concurrency * 2)))  # settle
    ca, workers = time.process_time(), sum(map(_cpu_seconds, pids))
    await asyncio.gather(*(one() for _ in range(N)))
    ca, workers = time.process_time() - ca, sum(map(_cpu_seconds, pids)) - workers
    return ca * 1000 / N, workers * 1000 / N


def _fmt(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} ({min(values):.2f})"


Cells = dict[tuple[str, str, int], list[tuple[float, float]]]
"""(pool, job, in flight) -> [(CA CPU ms, worker CPU ms) per certificate, one per round]."""


async def _run(cert: x509.Certificate) -> tuple[Cells, dict[str, dict[int, float]], list[float]]:
    """Every cell, ROUNDS times; also the mean batch (after) and pkilint in this process."""
    found: Cells = {}
    mean_batch: dict[str, dict[int, float]] = {}
    direct: list[float] = []
    jobs = {"pkilint": lintgate.pkilint_findings, "no-op": noop}
    gates: dict[tuple[str, str], OldGate | NewGate] = {}
    loop = asyncio.get_running_loop()
    try:
        for job_name, job in jobs.items():
            gates[("before", job_name)] = await loop.run_in_executor(None, OldGate, job)
            gates[("after", job_name)] = await loop.run_in_executor(None, NewGate, job)
        der = cert.public_bytes(serialization.Encoding.DER)
        for _ in range(ROUNDS):
            started = time.process_time()
            for _ in range(N // 4):
                lintgate.pkilint_findings(der, False)
            direct.append((time.process_time() - started) * 1000 / (N // 4))
            for job_name in jobs:
                for concurrency in CONCURRENCY:
                    for pool_name in ("before", "after"):
                        gate = gates[(pool_name, job_name)]
                        if isinstance(gate, NewGate):
                            gate.pool.batch_sizes.clear()
                        result = await _cell(gate.pkilint, gate.pids(), cert, concurrency)
                        found.setdefault((pool_name, job_name, concurrency), []).append(result)
                        if isinstance(gate, NewGate):
                            sizes = gate.pool.batch_sizes
                            mean = sum(k * v for k, v in sizes.items()) / sum(sizes.values())
                            mean_batch.setdefault(job_name, {})[concurrency] = mean
    finally:
        for gate in gates.values():
            await loop.run_in_executor(None, gate.close)
    return found, mean_batch, direct


def main() -> int:
    der = bench_pkilint.leaf_ders(1)[0]
    cert = x509.load_der_x509_certificate(der)
    load_before = os.getloadavg()[0]
    wall = time.perf_counter()
    found, mean_batch, direct = asyncio.run(_run(cert))
    wall = time.perf_counter() - wall
    print("### Lint gate pool: ProcessPoolExecutor (before) vs padlock.ca.lintpool (after)\n")
    print("`.venv/bin/python bench/bench_lintpool.py`  ")
    print(
        f"{PROCESSES} worker processes per pool, driven by one asyncio loop as in a CA "
        f"process; {N} certificates per cell ({len(der)}-byte padlock tls-server leaf, RFC 5280 "
        f"pkilint), {ROUNDS} rounds alternating before/after; {wall:.0f} s; load average "
        f"{load_before:.2f} at start on {os.cpu_count()} cores (shared machine). CPU ms per "
        "certificate, median round (best round). *CA CPU*: the process that owns the pool "
        "(event loop + the executor's threads); *worker CPU*: all its workers together "
        "(10 ms ticks). *mean batch*: certificates per worker job, after (before: always 1).\n"
    )
    print(
        "| job | in flight | CA CPU before | CA CPU after | worker CPU before "
        "| worker CPU after | mean batch |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for job_name in ("pkilint", "no-op"):
        for concurrency in CONCURRENCY:
            before = found[("before", job_name, concurrency)]
            after = found[("after", job_name, concurrency)]
            print(
                f"| {job_name} | {concurrency} | {_fmt([c for c, _ in before])} | "
                f"{_fmt([c for c, _ in after])} | {_fmt([w for _, w in before])} | "
                f"{_fmt([w for _, w in after])} | "
                f"{mean_batch[job_name][concurrency]:.1f} |"
            )
    print(
        f"| pkilint called in this process (reference, {N // 4} per round) | | | | "
        f"{_fmt(direct)} | {_fmt(direct)} | |"
    )
    ca = statistics.median(c for c, _ in found[("after", "pkilint", 32)])
    work = statistics.median(w for _, w in found[("after", "pkilint", 32)])
    print(
        f"\nUnder load (32 in flight), the pool and pkilint together cost about {ca + work:.1f} "
        f"CPU ms per certificate, i.e. at most {2000 / (ca + work):,.0f} certificates/s on 2 "
        "cores before the CA's other work (sign, structural lint, ledger, HTTP).\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
