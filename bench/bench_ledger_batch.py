"""Benchmark: CPU per certificate of `Ledger.record_issuances` (the CA's group commit).

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_ledger_batch.py`); prints a
Markdown section. Measures the CA process's CPU (`time.process_time`: the calling thread,
SQLAlchemy and the database driver; not the PostgreSQL server) per certificate committed, at
batches of 1, 16 and 64, on SQLite (WAL, synchronous=FULL) and a throw-away PostgreSQL server
(fsync on). Each item is what the CA pipeline passes: a signed P-256 leaf, its requester,
an idempotency key, a pre-signed OCSP response, `signature_verified=True`. Certificates are
signed before the clock starts. Rounds interleave the batch sizes (the machine's cores are
shared); the table shows the median and the minimum over rounds.

BENCH_ROUNDS (default 7), BENCH_CERTS (certificates per cell and round, default 192),
BENCH_BACKENDS (default "sqlite,postgresql"). BENCH_TREE: another `operator/` source tree to
import padlock from (an A/B against a baseline checkout).
"""

from __future__ import annotations

import datetime
import os
import pathlib
import statistics
import sys
import tempfile
import time

REPO = pathlib.Path(__file__).resolve().parents[1]
TREE = pathlib.Path(os.environ.get("BENCH_TREE", str(REPO / "operator")))
sys.path[:0] = [str(TREE), str(REPO)]

from tests.fixtures import postgres  # noqa: E402
from tests.integration.ledger import certs  # noqa: E402

from padlock.ledger import Ledger, records  # noqa: E402
from padlock.ledger import ledger as ledger_mod  # noqa: E402

ROUNDS = int(os.environ.get("BENCH_ROUNDS", "7"))
CERTS = int(os.environ.get("BENCH_CERTS", "192"))
BACKENDS = os.environ.get("BENCH_BACKENDS", "sqlite,postgresql").split(",")
BATCHES = (1, 16, 64)


def _items(ca: certs.SoftwareCA, ca_id: int, count: int, tag: str) -> list[ledger_mod.Issuance]:
    now = datetime.datetime.now(datetime.UTC)
    out = []
    for n in range(count):
        leaf = ca.issue(dns=f"app-{tag}-{n}.default.svc")
        out.append(
            ledger_mod.Issuance(
                ca_id,
                leaf,
                cert_type=records.CertType.TLS_SERVER,
                requester="system:serviceaccount:padlock:operator",
                idempotency_key=f"default/app-{tag}-{n}/1",
                ocsp=records.OcspCacheEntry(
                    ca_id=ca_id,
                    serial=leaf.serial_number,
                    status=records.Status.GOOD,
                    this_update=now,
                    next_update=now + datetime.timedelta(hours=24),
                    response_der=bytes(300) + leaf.serial_number.to_bytes(20, "big"),
                ),
                signature_verified=True,
            )
        )
    return out


def run(url: str, ca: certs.SoftwareCA) -> dict[int, list[float]]:
    """CPU ms per certificate for each batch size, one figure per round."""
    figures: dict[int, list[float]] = {size: [] for size in BATCHES}
    with Ledger(url) as ledger:
        ca_id = ledger.register_ca(ca.certificate, ca_type=records.CAType.INTERMEDIATE)
        warm = _items(ca, ca_id, 64, "warm")
        for size in BATCHES:  # compiled caches, connection pool
            ledger.record_issuances(warm[:size])
            warm = warm[size:]
        for round_ in range(ROUNDS):
            for size in BATCHES:
                items = _items(ca, ca_id, CERTS, f"{round_}-{size}")
                started = time.process_time()
                for start in range(0, len(items), size):
                    outcomes = ledger.record_issuances(items[start : start + size])
                spent = time.process_time() - started
                assert all(isinstance(o, records.CertificateRecord) for o in outcomes), outcomes
                figures[size].append(spent * 1000 / len(items))
        assert ledger.verify_audit_chain().ok
    return figures


def main() -> None:
    ca = certs.SoftwareCA("bench CA")
    results: dict[str, dict[int, list[float]]] = {}
    if "sqlite" in BACKENDS:
        with tempfile.TemporaryDirectory(prefix="padlock-bench-ledger-batch-") as tmp:
            results["SQLite WAL, synchronous=FULL"] = run(f"sqlite:///{tmp}/ledger.db", ca)
    if "postgresql" in BACKENDS:
        with postgres.running_server(durable=True) as url:
            results["PostgreSQL 15 (fsync on, loopback TCP)"] = run(url, ca)

    print("### Ledger: record_issuances CPU ms per certificate\n")
    print("`.venv/bin/python bench/bench_ledger_batch.py`", end=" ")
    print(
        f"({ROUNDS} interleaved rounds of {CERTS} certificates per batch size; "
        "median (min) over rounds; CPU of the CA process, not of the PostgreSQL server)\n"
    )
    print("| backend | " + " | ".join(f"batch {size}" for size in BATCHES) + " |")
    print("|---|" + "---:|" * len(BATCHES))
    for name, figures in results.items():
        cells = [
            f"{statistics.median(figures[size]):.3f} ({min(figures[size]):.3f})" for size in BATCHES
        ]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print(
        "\nEach item: certificate row, pre-signed OCSP response row, hash-chained audit row; "
        f"one write transaction per batch. Machine: {os.cpu_count()} cores shared with other "
        f"jobs (load average {os.getloadavg()[0]:.1f} at the end). Tree: {TREE}."
    )


if __name__ == "__main__":
    main()
