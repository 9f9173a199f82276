"""Benchmark: ledger commits per second (record_issuance) and audit-chain verification speed.

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_ledger.py`); prints a
Markdown section. Backends: SQLite (WAL) with synchronous=FULL (padlock's setting) and
NORMAL (for comparison), and a throw-away PostgreSQL server started from Debian's binaries with
fsync ON (tests/fixtures/postgres.running_server(durable=True)). Certificates (P-256) are
signed before the clock starts; each record_issuance is one transaction with its audit row.
"""

from __future__ import annotations

import os
import pathlib
import statistics
import sys
import tempfile
import threading
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
sys.path[:0] = [str(REPO / "operator"), str(REPO)]

from cryptography import x509  # noqa: E402
from tests.fixtures import postgres  # noqa: E402
from tests.integration.ledger import certs  # noqa: E402

from padlock.ledger import Ledger, records, verify_chain  # noqa: E402
from padlock.ledger import engine as engines  # noqa: E402

COUNT = int(os.environ.get("BENCH_LEDGER_COUNT", "300"))
THREADS = 4


def run(url: str, ca: certs.SoftwareCA, leaves: list[x509.Certificate]) -> dict[str, float]:
    with Ledger(url) as ledger:
        ca_id = ledger.register_ca(ca.certificate, ca_type=records.CAType.INTERMEDIATE)
        half = len(leaves) // 2
        latencies = []
        started = time.perf_counter()
        for leaf in leaves[:half]:
            t0 = time.perf_counter()
            ledger.record_issuance(
                ca_id, leaf, cert_type=records.CertType.TLS_SERVER, requester="bench"
            )
            latencies.append(time.perf_counter() - t0)
        single = half / (time.perf_counter() - started)
        chunks = [leaves[half + n :: THREADS] for n in range(THREADS)]

        def writer(chunk: list[x509.Certificate]) -> None:
            for leaf in chunk:
                ledger.record_issuance(
                    ca_id, leaf, cert_type=records.CertType.TLS_SERVER, requester="bench"
                )

        threads = [threading.Thread(target=writer, args=(chunk,)) for chunk in chunks]
        started = time.perf_counter()
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        concurrent = (len(leaves) - half) / (time.perf_counter() - started)
    started = time.perf_counter()
    result = verify_chain(url)
    verify_rate = result.rows_checked / (time.perf_counter() - started)
    assert result.ok, result
    latencies.sort()
    return {
        "single": single,
        "p50": statistics.median(latencies) * 1000,
        "p99": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "concurrent": concurrent,
        "verify": verify_rate,
    }


def main() -> None:
    ca = certs.SoftwareCA("bench CA")
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="padlock-bench-ledger-") as tmp:
        for mode in ("FULL", "NORMAL"):
            engines.SQLITE_SYNCHRONOUS = mode
            leaves = [ca.issue() for _ in range(COUNT)]
            results[f"SQLite WAL, synchronous={mode}"] = run(
                f"sqlite:///{tmp}/ledger-{mode}.db", ca, leaves
            )
        engines.SQLITE_SYNCHRONOUS = "FULL"
    with postgres.running_server(durable=True) as url:
        leaves = [ca.issue() for _ in range(COUNT)]
        results["PostgreSQL 15 (fsync on, loopback TCP)"] = run(url, ca, leaves)

    print("### Ledger: commits per second and audit-chain verification\n")
    print("`.venv/bin/python bench/bench_ledger.py`", end=" ")
    print(f"({COUNT} issuances per backend: half from 1 thread, half from {THREADS} threads)\n")
    print(
        "| backend | 1 writer (commits/s) | p50 ms | p99 ms "
        f"| {THREADS} writers (commits/s) | verify (rows/s) |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for name, r in results.items():
        print(
            f"| {name} | {r['single']:.0f} | {r['p50']:.2f} | {r['p99']:.2f} "
            f"| {r['concurrent']:.0f} | {r['verify']:.0f} |"
        )
    print(
        "\nEach commit is one transaction: certificate row + audit row (SHA-256 chained), "
        "serialized by BEGIN IMMEDIATE (SQLite) or a row lock on audit_head (PostgreSQL). "
        f"Machine: {os.cpu_count()} cores shared with other jobs."
    )


if __name__ == "__main__":
    main()
