"""Benchmark: pkilint's CPU cost per certificate, the bound on the CA's lint-on throughput.

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_pkilint.py`); prints a
Markdown section. Lints a stream of distinct realistic padlock leaves of one profile and
issuer (tls-server, P-256, one DNS SAN each, AIA + CDP with 16 shards, built by
`padlock.pki.profiles`) with `padlock.pki.lint.lint_certificate` in this process, as a
lint-gate worker does, after a warm-up: with pkilint's own validator walk (`stock=True`),
with padlock's (`padlock.pki.lint_walk`, `decode_cache=False`) and with padlock's walk plus the
decode memo (`padlock.pki.lint_decode`, what the gate runs), RFC 5280 alone and RFC 5280 +
CABF TLS BR. Each certificate is linted once per case, so the memo only helps where real
issuance lets it: values shared by the profile and issuer. The machine is shared, so the
figure is CPU (process) time, measured in several rounds that alternate the cases (stock,
walk, walk + memo); the table gives the median and the best round. Validation alone is the
lint minus the DER decode (pkilint's loader), which the lint pays once per linter.
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


def leaf_ders(count: int) -> list[bytes]:
    """`count` distinct leaves of one profile from one issuer, as the CA issues them: each
    with its own key, SAN, serial and so SKI; the CRL distribution point one of 16 shards."""
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
    return [
        profiles.build_certificate(
            profiles.TLS_SERVER,
            subject=x509.Name([]),
            public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
            sans=[x509.DNSName(f"svc-{i}.bench.test")],
            issuer=ca,
            issuer_key=ca_key,
            serial=x509.random_serial_number(),
            not_before=now,
            not_after=now + datetime.timedelta(days=1),
            endpoints=profiles.Endpoints(
                ocsp_urls=("http://ocsp.padlock.svc/",),
                ca_issuers_urls=("http://ca.padlock.svc/ca.crt",),
                crl_urls=(f"http://crl.padlock.svc/{i % 16}.crl",),
            ),
        ).public_bytes(serialization.Encoding.DER)
        for i in range(count)
    ]


def stream(ders: list[bytes], lint_one: Callable[[bytes], object]) -> Callable[[], object]:
    """Each call lints the next certificate of the stream (each certificate once per case)."""
    certificates = iter(ders)
    return lambda: lint_one(next(certificates))


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
    ders = leaf_ders(BLOCK * BLOCKS + 1)  # + 1: the warm-up call
    der = ders[0]
    lint.warm_up(cabf_serverauth=True)
    for cabf in (False, True):
        expected = lint.lint_certificate(der, cabf_serverauth=cabf, stock=True)
        for memo_on in (False, True):
            if expected != lint.lint_certificate(der, cabf_serverauth=cabf, decode_cache=memo_on):
                print(
                    "padlock's walk and pkilint's disagree on the bench certificate",
                    file=sys.stderr,
                )
                return 1
    blocking = lint.blocking(lint.lint_certificate(der))
    lint.DECODE_CACHE.clear()
    load_before = os.getloadavg()[0]
    wall = time.perf_counter()
    ms = blocks(
        {
            "decode": stream(ders, lint._load),
            "pkix stock": stream(ders, lambda d: lint.lint_certificate(d, stock=True)),
            "pkix fast": stream(ders, lambda d: lint.lint_certificate(d, decode_cache=False)),
            "pkix memo": stream(ders, lint.lint_certificate),
            "cabf stock": stream(
                ders, lambda d: lint.lint_certificate(d, cabf_serverauth=True, stock=True)
            ),
            "cabf fast": stream(
                ders,
                lambda d: lint.lint_certificate(d, cabf_serverauth=True, decode_cache=False),
            ),
            "cabf memo": stream(ders, lambda d: lint.lint_certificate(d, cabf_serverauth=True)),
        }
    )
    wall = time.perf_counter() - wall
    memo = lint.DECODE_CACHE
    med = {name: statistics.median(values) for name, values in ms.items()}
    best = {name: min(values) for name, values in ms.items()}
    cores = os.cpu_count() or 1
    print("### pkilint per certificate (the lint gate's cost)\n")
    print("`.venv/bin/python bench/bench_pkilint.py`  ")
    print(
        f"A stream of {len(ders)} distinct padlock tls-server leaves from one issuer, as the CA "
        f"issues them (~{len(der)} bytes DER, P-256, own key, SAN, serial and SKI each; AIA; "
        f"CDP one of 16 shards; blocking findings: {len(blocking)}), {BLOCKS} rounds; in each, "
        f"every case lints the next {BLOCK} certificates of its stream in turn, in one process "
        f"after a warm-up; {wall:.0f} s; load average {load_before:.2f} at start on {cores} "
        "cores. CPU ms per certificate: median round (best round). *stock* is pkilint's own "
        "validator walk, *walk* is `padlock.pki.lint_walk`, *walk + memo* adds "
        "`padlock.pki.lint_decode` (decoded embedded values reused across certificates; what "
        "the gate runs); all give identical findings (checked here, and on a corpus by "
        "tests/unit/pki/test_lint_walk.py and test_lint_decode.py). "
        f"Memo after the run: {len(memo)} entries, {memo.hits} hits, {memo.misses} misses.\n"
    )
    print("| step | stock CPU ms | walk CPU ms | walk + memo CPU ms | stock / (walk + memo) |")
    print("|---|---:|---:|---:|---:|")
    decode_ms = f"{med['decode']:.2f} ({best['decode']:.2f})"
    print(f"| DER decode (pkilint loader) | {decode_ms} | same | same | |")
    for label, key, decodes in (
        ("RFC 5280", "pkix", 1),
        ("RFC 5280 + CABF TLS BR", "cabf", 2),
    ):
        stock, fast, memo_ms = med[f"{key} stock"], med[f"{key} fast"], med[f"{key} memo"]
        print(
            f"| {label}, decode included | {stock:.2f} ({best[f'{key} stock']:.2f}) | "
            f"{fast:.2f} ({best[f'{key} fast']:.2f}) | {memo_ms:.2f} ({best[f'{key} memo']:.2f}) "
            f"| {stock / memo_ms:.2f} |"
        )
        decode = decodes * med["decode"]
        print(
            f"| {label}, validation alone (minus {decodes} decode) | {stock - decode:.2f} | "
            f"{fast - decode:.2f} | {memo_ms - decode:.2f} | "
            f"{(stock - decode) / (memo_ms - decode):.2f} |"
        )
    fast = med["pkix memo"]
    print(
        f"\nWith padlock's walk and memo, RFC 5280 lint alone caps lint-on issuance at about "
        f"{cores} x 1000 / {fast:.2f} = {cores * 1000 / fast:,.0f} certificates/s on this "
        f"machine (walk without memo: {cores * 1000 / med['pkix fast']:,.0f}/s; stock pkilint: "
        f"{cores * 1000 / med['pkix stock']:,.0f}/s), before the CA's own work per "
        "certificate.\n"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
