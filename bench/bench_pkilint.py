"""Benchmark: pkilint's CPU cost per certificate, the bound on the CA's lint-on throughput.

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_pkilint.py`); prints a
Markdown section. Lints one realistic padlock leaf (tls-server profile, P-256, one DNS SAN,
AIA + CDP, built by `padlock.pki.profiles`) with `padlock.pki.lint.lint_certificate` in this
process, as a lint-gate worker does, after a warm-up: with pkilint's own validator walk
(`stock=True`) and with padlock's (`padlock.pki.lint_walk`, what the gate runs), RFC 5280
alone and RFC 5280 + CABF TLS BR. The machine is shared, so the figure is CPU (process) time,
measured in several rounds that alternate stock and padlock's walk; the table gives the median
and the best round. Validation alone is the lint minus the DER decode (pkilint's loader), which
the lint pays once per linter.
"""

from __future__ import annotations

import datetime
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from padlock.pki import lint, profiles

BLOCK = int(os.environ.get("BENCH_PKILINT_BLOCK", "10"))
BLOCKS = int(os.environ.get("BENCH_PKILINT_BLOCKS", "40"))


def leaf_der() -> bytes:
    now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "padlock bench intermediate")])
    ca = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    cert = profiles.build_certificate(
        profiles.TLS_SERVER,
        subject=x509.Name([]),
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        sans=[x509.DNSName("svc-1.bench.test")],
        issuer=ca,
        issuer_key=ca_key,
        serial=x509.random_serial_number(),
        not_before=now,
        not_after=now + datetime.timedelta(days=1),
        endpoints=profiles.Endpoints(
            ocsp_urls=("http://ocsp.padlock.svc/",),
            ca_issuers_urls=("http://ca.padlock.svc/ca.crt",),
            crl_urls=("http://crl.padlock.svc/0.crl",),
        ),
    )
    return cert.public_bytes(serialization.Encoding.DER)


def cpu_ms(func: Callable[[], object]) -> float:
    """CPU ms per call over BLOCK calls."""
    started = time.process_time()
    for _ in range(BLOCK):
        func()
    return (time.process_time() - started) * 1000 / BLOCK


def blocks(cases: dict[str, Callable[[], object]]) -> dict[str, list[float]]:
    """BLOCKS rounds; in each, every case runs BLOCK times in turn, so that the other
    engineers' load falls on all cases alike. One warm-up call each first."""
    for func in cases.values():
        func()
    found: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(BLOCKS):
        for name, func in cases.items():
            found[name].append(cpu_ms(func))
    return found


def main() -> int:
    der = leaf_der()
    lint.warm_up()
    for cabf in (False, True):
        fast = lint.lint_certificate(der, cabf_serverauth=cabf)
        if fast != lint.lint_certificate(der, cabf_serverauth=cabf, stock=True):
            print("padlock's walk and pkilint's disagree on the bench certificate", file=sys.stderr)
            return 1
    blocking = lint.blocking(lint.lint_certificate(der))
    load_before = os.getloadavg()[0]
    wall = time.perf_counter()
    ms = blocks(
        {
            "decode": lambda: lint._load(der),
            "pkix stock": lambda: lint.lint_certificate(der, stock=True),
            "pkix fast": lambda: lint.lint_certificate(der),
            "cabf stock": lambda: lint.lint_certificate(der, cabf_serverauth=True, stock=True),
            "cabf fast": lambda: lint.lint_certificate(der, cabf_serverauth=True),
        }
    )
    wall = time.perf_counter() - wall
    med = {name: statistics.median(values) for name, values in ms.items()}
    best = {name: min(values) for name, values in ms.items()}
    cores = os.cpu_count() or 1
    print("### pkilint per certificate (the lint gate's cost)\n")
    print("`.venv/bin/python bench/bench_pkilint.py`  ")
    print(
        f"One padlock tls-server leaf ({len(der)} bytes DER, P-256, AIA + CDP; blocking "
        f"findings: {len(blocking)}), {BLOCKS} rounds; in each, every case lints {BLOCK} "
        f"certificates in turn, in one process after a warm-up; {wall:.0f} s; load average "
        f"{load_before:.2f} at start on {cores} cores. CPU ms per certificate: median round "
        "(best round). *stock* is "
        "pkilint's own validator walk, *padlock* is `padlock.pki.lint_walk` (what the gate runs); "
        "both give identical findings (checked here, and on a corpus by "
        "tests/unit/pki/test_lint_walk.py).\n"
    )
    print("| step | stock CPU ms | padlock CPU ms | stock / padlock |")
    print("|---|---:|---:|---:|")
    print(f"| DER decode (pkilint loader) | {med['decode']:.2f} ({best['decode']:.2f}) | same | |")
    for label, key, decodes in (
        ("RFC 5280", "pkix", 1),
        ("RFC 5280 + CABF TLS BR", "cabf", 2),
    ):
        stock, fast = med[f"{key} stock"], med[f"{key} fast"]
        print(
            f"| {label}, decode included | {stock:.2f} ({best[f'{key} stock']:.2f}) | "
            f"{fast:.2f} ({best[f'{key} fast']:.2f}) | {stock / fast:.2f} |"
        )
        decode = decodes * med["decode"]
        print(
            f"| {label}, validation alone (minus {decodes} decode) | {stock - decode:.2f} | "
            f"{fast - decode:.2f} | {(stock - decode) / (fast - decode):.2f} |"
        )
    fast = med["pkix fast"]
    print(
        f"\nWith padlock's walk, RFC 5280 lint alone caps lint-on issuance at about {cores} x "
        f"1000 / {fast:.1f} = {cores * 1000 / fast:,.0f} certificates/s on this machine "
        f"(stock pkilint: {cores * 1000 / med['pkix stock']:,.0f}/s), before the CA's own work "
        "per certificate.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
