"""Benchmark: certificates and raw signatures per second through SoftHSM (padlock.keys.pkcs11).

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_signing.py`); prints a
Markdown section. It makes its own SoftHSM token in a temp dir, generates a P-256 and an
RSA-2048 issuer key in it, and times:

- leaf certificates built and signed with `CertificateBuilder.sign()` through the HSM key,
  single-threaded, next to the same with a software key (the cost of the HSM round trip);
- raw signatures through padlock's `Token.sign_raw` and through python-pkcs11 directly;
- two threads: one `Token` (one session, the module lock) against a session per thread with
  no lock (measured in a child process because SoftHSM, initialised by python-pkcs11 with
  `C_Initialize(NULL)`, runs without mutexes and is not promised to survive that);
- `openssl speed -seconds 2 ecdsap256 rsa2048` on the same machine, as the ceiling.

Each figure runs for BENCH_SECONDS (default 2) seconds. The machine is shared: the load
average at the start is printed, and each figure also as calls per CPU-second of this process,
which depends far less on what else runs.
"""

from __future__ import annotations

import concurrent.futures
import datetime
import hashlib
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple, cast

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "operator"))

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from padlock.keys import base, software
from padlock.pki.algorithms import KeyAlgorithm

SECONDS = float(os.environ.get("BENCH_SECONDS", "2"))
MODULE = os.environ.get("PADLOCK_TEST_PKCS11_MODULE", "/usr/lib/softhsm/libsofthsm2.so")
PIN = "bench-pin-1234"
NOW = datetime.datetime.now(datetime.UTC)


class Rate(NamedTuple):
    """Calls per wall-clock second, and per second of this process's CPU time.

    The machine is shared, so wall-clock rates fall with the load average; the CPU-time rate
    (calls / process CPU seconds) is what the code would do on an idle core.
    """

    wall: float
    cpu: float | None = None


def rate(work: Callable[[], object], seconds: float = SECONDS) -> Rate:
    """Calls per second of `work` over about `seconds` seconds (after one warm-up call)."""
    work()
    count = 0
    cpu_started = time.process_time()
    started = time.perf_counter()
    deadline = started + seconds
    while True:
        for _ in range(20):
            work()
        count += 20
        now = time.perf_counter()
        if now >= deadline:
            return Rate(count / (now - started), count / (time.process_time() - cpu_started))


def threaded_rate(work: Callable[[], object], threads: int, seconds: float = SECONDS) -> Rate:
    """Total calls per second of `work` run by `threads` threads at once."""
    counts = [0] * threads
    start = threading.Barrier(threads + 1)

    def loop(index: int) -> None:
        work()
        start.wait()
        deadline = time.perf_counter() + seconds
        while time.perf_counter() < deadline:
            for _ in range(10):
                work()
            counts[index] += 10

    with concurrent.futures.ThreadPoolExecutor(threads) as pool:
        futures = [pool.submit(loop, i) for i in range(threads)]
        start.wait()
        cpu_started = time.process_time()
        started = time.perf_counter()
        for future in futures:
            future.result()
        took = time.perf_counter() - started
        cpu = time.process_time() - cpu_started
    return Rate(sum(counts) / took, sum(counts) / cpu)


class LeafFactory:
    """A realistic TLS leaf, as the CA builds one: SANs, KU/EKU, SKI/AKI, CDP, AIA."""

    def __init__(self, issuer: base.Signer) -> None:
        self.issuer = issuer
        self.subject_key = ec.generate_private_key(ec.SECP256R1()).public_key()
        self.issuer_name = x509.Name(
            [
                x509.NameAttribute(NameOID.ORGANIZATION_NAME, "padlock bench"),
                x509.NameAttribute(NameOID.COMMON_NAME, f"bench issuer {issuer.label}"),
            ]
        )
        self.aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.public_key())
        self.ski = x509.SubjectKeyIdentifier.from_public_key(self.subject_key)
        self.hash = None if issuer.algorithm is KeyAlgorithm.ED25519 else hashes.SHA256()

    def __call__(self) -> x509.Certificate:
        name = "web.bench.svc.cluster.local"
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
            .issuer_name(self.issuer_name)
            .public_key(self.subject_key)
            .serial_number(int.from_bytes(os.urandom(20), "big") >> 1)
            .not_valid_before(NOW)
            .not_valid_after(NOW + datetime.timedelta(days=90))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, False, False, False, False),
                critical=True,
            )
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False)
            .add_extension(
                x509.SubjectAlternativeName([x509.DNSName(name), x509.DNSName("web.bench")]),
                critical=False,
            )
            .add_extension(self.ski, critical=False)
            .add_extension(self.aki, critical=False)
            .add_extension(
                x509.CRLDistributionPoints(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier("http://padlock.example/crl/3.crl")],
                            None,
                            None,
                            None,
                        )
                    ]
                ),
                critical=False,
            )
            .add_extension(
                x509.AuthorityInformationAccess(
                    [
                        x509.AccessDescription(
                            x509.oid.AuthorityInformationAccessOID.OCSP,
                            x509.UniformResourceIdentifier("http://padlock.example/ocsp"),
                        )
                    ]
                ),
                critical=False,
            )
            .sign(self.issuer.private_key(), self.hash)
        )


def openssl_speed() -> dict[str, float]:
    """sign/s for P-256 and RSA-2048 from `openssl speed -seconds 2 ecdsap256 rsa2048`."""
    if shutil.which("openssl") is None:
        return {}
    out = subprocess.run(
        ["openssl", "speed", "-seconds", "2", "ecdsap256", "rsa2048"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    figures: dict[str, float] = {}
    rsa = re.search(r"^rsa 2048 bits\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out, re.M)
    p256 = re.search(r"256 bits ecdsa \(nistp256\)\s+\S+s\s+\S+s\s+([\d.]+)\s+([\d.]+)", out)
    if rsa:
        figures["rsa2048"] = float(rsa.group(1))
    if p256:
        figures["p256"] = float(p256.group(1))
    return figures


def per_thread_sessions_child(label: str, threads: int) -> None:
    """Child process: raw P-256 signatures/s with one python-pkcs11 session per thread."""
    import pkcs11

    lib = pkcs11.lib(MODULE)
    token = lib.get_token(token_label=label)
    login = token.open(user_pin=PIN)  # login is per process: later sessions inherit it
    local = threading.local()
    digest = hashlib.sha256(b"bench").digest()
    errors: list[str] = []

    def sign() -> None:
        try:
            if not hasattr(local, "key"):
                local.session = token.open()
                local.key = local.session.get_key(
                    object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="bench-p256"
                )
            local.key.sign(digest, mechanism=pkcs11.Mechanism.ECDSA)
        except pkcs11.PKCS11Error as err:
            errors.append(type(err).__name__)

    total = threaded_rate(sign, threads)
    print(f"{total.wall:.1f} {total.cpu:.1f} {len(errors)} {','.join(sorted(set(errors)))}")
    login.close()


def make_token(root: Path) -> str:
    conf = root / "softhsm2.conf"
    (root / "tokens").mkdir()
    conf.write_text(f"directories.tokendir = {root / 'tokens'}\nlog.level = ERROR\n")
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label = "padlock-bench"
    subprocess.run(
        [
            *("softhsm2-util", "--init-token", "--free", "--label", label),
            *("--so-pin", "bench-so-1234", "--pin", PIN),
        ],
        check=True,
        capture_output=True,
    )
    return label


def main() -> int:
    print("### Signing through SoftHSM (padlock.keys.pkcs11)\n")
    print("`.venv/bin/python bench/bench_signing.py`\n")
    if not Path(MODULE).is_file() or shutil.which("softhsm2-util") is None:
        print(f"not measured: SoftHSM2 ({MODULE}, softhsm2-util) is not installed\n")
        return 0
    import pkcs11

    from padlock.keys.pkcs11 import Token

    load = os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="padlock-bench-") as tmp:
        label = make_token(Path(tmp))
        token = Token.open(MODULE, label, pin=PIN)
        p256 = token.generate("bench-p256", KeyAlgorithm.EC_P256)
        rsa2048 = token.generate("bench-rsa2048", KeyAlgorithm.RSA_2048)
        soft_p256 = software.generate("soft-p256", KeyAlgorithm.EC_P256)
        soft_rsa = software.generate("soft-rsa2048", KeyAlgorithm.RSA_2048)
        digest = hashlib.sha256(b"bench").digest()

        rows: list[tuple[str, Rate, str]] = []
        rows.append(("P-256 leaf certificates, HSM key", rate(LeafFactory(p256)), "1 thread"))
        rows.append(("P-256 leaf certificates, software key", rate(LeafFactory(soft_p256)), ""))
        rows.append(("RSA-2048 leaf certificates, HSM key", rate(LeafFactory(rsa2048)), ""))
        rows.append(("RSA-2048 leaf certificates, software key", rate(LeafFactory(soft_rsa)), ""))
        rows.append(
            (
                "P-256 raw signatures, padlock Token.sign_raw",
                rate(lambda: p256.sign_raw(pkcs11.Mechanism.ECDSA, None, digest)),
                "CKM_ECDSA over a SHA-256 digest",
            )
        )
        # A second, PIN-less session: the process is logged in already (login is per process).
        raw_session = pkcs11.lib(MODULE).get_token(token_label=label).open()
        raw_key = cast(
            pkcs11.types.SignMixin,
            raw_session.get_key(object_class=pkcs11.ObjectClass.PRIVATE_KEY, label="bench-p256"),
        )
        rows.append(
            (
                "P-256 raw signatures, python-pkcs11 directly",
                rate(lambda: raw_key.sign(digest, mechanism=pkcs11.Mechanism.ECDSA)),
                "no padlock layer",
            )
        )
        rows.append(
            (
                "RSA-2048 raw signatures, padlock Token.sign_raw",
                rate(lambda: rsa2048.sign_raw(pkcs11.Mechanism.SHA256_RSA_PKCS, None, digest)),
                "CKM_SHA256_RSA_PKCS",
            )
        )
        rows.append(
            (
                "P-256 leaf certificates, HSM key, 2 threads, one Token",
                threaded_rate(LeafFactory(p256), 2),
                "one session + module lock (what padlock does)",
            )
        )
        rows.append(
            (
                "P-256 leaf certificates, software key, 2 threads",
                threaded_rate(LeafFactory(soft_p256), 2),
                "for comparison: building holds the GIL",
            )
        )
        rows.append(
            (
                "P-256 raw signatures, 2 threads, one Token",
                threaded_rate(lambda: p256.sign_raw(pkcs11.Mechanism.ECDSA, None, digest), 2),
                "one session + module lock",
            )
        )
        raw_session.close()
        child = subprocess.run(
            [sys.executable, __file__, "--per-thread-sessions", label, "2"],
            capture_output=True,
            text=True,
            check=False,
        )
        if child.returncode == 0:
            calls, cpu, failed, kinds = [*child.stdout.split(), "", ""][:4]
            note = "python-pkcs11 directly, no lock (SoftHSM mutexes are off)"
            if int(failed):
                note += f"; {failed} calls FAILED ({kinds}): unsafe"
            rows.append(
                (
                    "P-256 raw calls, 2 threads, a session per thread",
                    Rate(float(calls), float(cpu)),
                    note,
                )
            )
        else:
            how = (
                f"killed by signal {-child.returncode}"
                if child.returncode < 0
                else f"exit {child.returncode}: {child.stderr.strip().splitlines()[-1:]}"
            )
            rows.append(
                (
                    "P-256 raw calls, 2 threads, a session per thread",
                    Rate(0.0),
                    f"python-pkcs11 directly, no lock: the process CRASHED ({how})",
                )
            )
        token.close()

    speed = openssl_speed()
    for name, key in (("P-256", "p256"), ("RSA-2048", "rsa2048")):
        if key in speed:
            rows.append(
                (f"{name} signatures, `openssl speed`", Rate(speed[key]), "1 thread, no HSM")
            )

    print(f"{os.cpu_count()} cores, load average {load:.1f} at start; {SECONDS:g} s per figure.\n")
    print("| measurement | per second | per CPU-second | notes |")
    print("|---|---:|---:|---|")
    for what, figure, note in rows:
        cpu = "" if figure.cpu is None else f"{figure.cpu:,.0f}"
        print(f"| {what} | {figure.wall:,.0f} | {cpu} | {note} |")
    print()
    return 0


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--per-thread-sessions":
        per_thread_sessions_child(sys.argv[2], int(sys.argv[3]))
        sys.exit(0)
    sys.exit(main())
