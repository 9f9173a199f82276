"""Benchmark: pkilint's CPU cost per certificate, the bound on the CA's lint-on throughput.

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_pkilint.py`); prints a
Markdown section. Lints one realistic padlock leaf (tls-server profile, P-256, one DNS SAN,
AIA + CDP, built by `padlock.pki.profiles`) with `padlock.pki.lint.lint_certificate` in this
process, as a lint-gate worker does, after a warm-up. Reports CPU (process time) and wall time
per certificate for the DER decode alone and for the whole RFC 5280 lint, and the ceiling that
pkilint alone puts on a machine with this many cores.
"""

from __future__ import annotations

import datetime
import os
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

ITERATIONS = int(os.environ.get("BENCH_PKILINT_ITERATIONS", "300"))


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


def per_call(func: Callable[[], object]) -> tuple[float, float]:
    """(CPU ms, wall ms) per call over ITERATIONS calls, after one warm-up call."""
    func()
    cpu, wall = time.process_time(), time.perf_counter()
    for _ in range(ITERATIONS):
        func()
    return (
        (time.process_time() - cpu) * 1000 / ITERATIONS,
        (time.perf_counter() - wall) * 1000 / ITERATIONS,
    )


def main() -> int:
    der = leaf_der()
    lint.warm_up()
    blocking = lint.blocking(lint.lint_certificate(der))
    load_before = os.getloadavg()[0]
    decode = per_call(lambda: lint._load(der))
    pkix = per_call(lambda: lint.lint_certificate(der))
    cores = os.cpu_count() or 1
    print("### pkilint per certificate (the lint gate's cost)\n")
    print("`.venv/bin/python bench/bench_pkilint.py`  ")
    print(
        f"One padlock tls-server leaf ({len(der)} bytes DER, P-256, AIA + CDP), "
        f"{ITERATIONS} iterations in one process after a warm-up; blocking findings: "
        f"{len(blocking)}; load average at start {load_before:.2f} on {cores} cores.\n"
    )
    print("| step | CPU ms/cert | wall ms/cert |")
    print("|---|---:|---:|")
    print(f"| DER decode (pkilint loader) | {decode[0]:.2f} | {decode[1]:.2f} |")
    print(f"| RFC 5280 lint, decode included | {pkix[0]:.2f} | {pkix[1]:.2f} |")
    print(
        f"\npkilint alone caps lint-on issuance at about {cores} x 1000 / {pkix[0]:.1f} = "
        f"{cores * 1000 / pkix[0]:,.0f} certificates/s on this machine, before the CA's own "
        "work per certificate.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
