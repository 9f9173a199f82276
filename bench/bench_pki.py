"""Benchmark: the pure-PKI costs of one issuance, with software keys (padlock.pki).

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_pki.py`); prints a
Markdown section. Times, single-threaded, each for BENCH_SECONDS (default 1) seconds:

- `policy.check_request` on a P-256 CSR with two DNS names (parse-free: CSR object given),
  and `csr.load_csr` + `check_request` from PEM;
- `profiles.build_certificate` for a tls-server leaf, per issuer key type (software keys, so
  this is the CPU floor under the HSM figures of bench_signing.py);
- `lint.lint_certificate` (pkilint RFC 5280; and + CABF TLS BR) on that leaf, which is what
  the CA's lint gate pays per certificate.
"""

from __future__ import annotations

import datetime
import os
import statistics
import time
from collections.abc import Callable

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import (
    CertificateIssuerPrivateKeyTypes,
)
from cryptography.x509.oid import NameOID

from padlock.pki import csr, lint, policy, profiles, serials
from padlock.pki.names import RequestedNames

SECONDS = float(os.environ.get("BENCH_SECONDS", "1"))
NOW = datetime.datetime.now(datetime.UTC)


def rate(func: Callable[[], object]) -> tuple[float, float]:
    """(operations per second, median milliseconds) over SECONDS of wall time."""
    func()  # warm up (imports, caches)
    samples: list[float] = []
    deadline = time.perf_counter() + SECONDS
    while time.perf_counter() < deadline or len(samples) < 3:
        start = time.perf_counter()
        func()
        samples.append(time.perf_counter() - start)
    return len(samples) / sum(samples), statistics.median(samples) * 1000


def ca(key: CertificateIssuerPrivateKeyTypes) -> x509.Certificate:
    return profiles.build_certificate(
        profiles.ROOT_CA,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "bench CA")]),
        public_key=key.public_key(),
        sans=(),
        issuer=None,
        issuer_key=key,
        serial=serials.new_serial(),
        not_before=NOW,
        not_after=NOW + datetime.timedelta(days=365),
    )


def main() -> None:
    leaf_key = ec.generate_private_key(ec.SECP256R1())
    request_csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([]))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("api.ns.svc.cluster.local"), x509.DNSName("api.padlock.test")]
            ),
            critical=False,
        )
        .sign(leaf_key, hashes.SHA256())
    )
    pem = request_csr.public_bytes(serialization.Encoding.PEM)
    pol = policy.IssuancePolicy(permitted_dns_domains=("cluster.local", "padlock.test"))

    def check(c: x509.CertificateSigningRequest) -> policy.Approved:
        return policy.check_request(
            policy.IssuanceRequest(
                csr=c,
                profile="tls-server",
                not_before=NOW,
                not_after=NOW + datetime.timedelta(days=90),
                names=RequestedNames(),
            ),
            pol,
        )

    rows: list[tuple[str, float, float]] = []
    rows.append(("policy.check_request (CSR object)", *rate(lambda: check(request_csr))))
    rows.append(("csr.load_csr (PEM) + check_request", *rate(lambda: check(csr.load_csr(pem)))))
    approved = check(request_csr)
    issuers: dict[str, CertificateIssuerPrivateKeyTypes] = {
        "P-256": ec.generate_private_key(ec.SECP256R1()),
        "P-384": ec.generate_private_key(ec.SECP384R1()),
        "RSA-2048": rsa.generate_private_key(public_exponent=65537, key_size=2048),
        "Ed25519": ed25519.Ed25519PrivateKey.generate(),
    }
    leaf: x509.Certificate | None = None
    for label, key in issuers.items():
        issuer = ca(key)

        def build(
            key: CertificateIssuerPrivateKeyTypes = key, issuer: x509.Certificate = issuer
        ) -> x509.Certificate:
            return profiles.build_certificate(
                approved.profile,
                subject=approved.subject,
                public_key=approved.public_key,
                sans=approved.sans,
                issuer=issuer,
                issuer_key=key,
                serial=serials.new_serial(),
                not_before=approved.not_before,
                not_after=approved.not_after,
                endpoints=profiles.Endpoints(
                    ocsp_urls=("http://ocsp.padlock.test/",),
                    crl_urls=("http://ca.padlock.test/crl/0.crl",),
                ),
            )

        rows.append((f"build_certificate, {label} issuer (software key)", *rate(build)))
        leaf = leaf or build()
    assert leaf is not None
    der = leaf.public_bytes(serialization.Encoding.DER)
    rows.append(("lint_certificate (pkilint RFC 5280)", *rate(lambda: lint.lint_certificate(der))))
    rows.append(
        (
            "lint_certificate (RFC 5280 + CABF TLS BR)",
            *rate(lambda: lint.lint_certificate(der, cabf_serverauth=True)),
        )
    )

    print("### padlock.pki: policy, build+sign, lint (software keys, one thread)\n")
    print("`.venv/bin/python bench/bench_pki.py`")
    print(f"(BENCH_SECONDS={SECONDS:g}, load average {os.getloadavg()[0]:.2f} at start)\n")
    print("| operation | per second | median ms |")
    print("|---|---:|---:|")
    for name, per_second, median_ms in rows:
        print(f"| {name} | {per_second:,.0f} | {median_ms:.2f} |")
    print()


if __name__ == "__main__":
    main()
