"""Prometheus metric definitions for every padlock process: one flat module, no logic.

Who uses it: the CA sidecar (`padlock.ca.*`, served on `GET /metrics` by
`padlock.services.ca_http`), and later the operator, the OCSP responder and the SVID agent,
each adding its own definitions here.

All metrics live in the dedicated `REGISTRY` below, not prometheus-client's global default
registry: a process exposes exactly padlock's metrics (`generate_latest(metrics.REGISTRY)`),
and tests can read values without interference from the platform/process collectors. A
process that also wants the standard process metrics registers `ProcessCollector(registry=
metrics.REGISTRY)` itself. Names carry the `padlock_` prefix (DESIGN.md, Metrics).

Several CA worker processes (`padlock ca serve` with `workers` > 1): the supervisor
(`padlock.services.ca_http.supervisor`) starts every worker with `PROMETHEUS_MULTIPROC_DIR`
naming a private directory, so prometheus-client keeps each value in a per-process file there,
and `exposition()` in any worker answers the totals over all workers (prometheus-client's
multiprocess mode). Gauges name how their per-process values combine (`multiprocess_mode`,
ignored in a single process). Without that variable (the operator, one CA process, tests)
nothing changes: values live in memory and `exposition()` is `generate_latest(REGISTRY)`.
"""

from __future__ import annotations

import os

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

REGISTRY = CollectorRegistry(auto_describe=True)
"""The one registry every padlock metric is registered in."""

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus-client reads it when the first metric is made (that is, when this module is
imported): set it in a process's environment before it starts, never later."""


def multiprocess_dir() -> str | None:
    """The directory of per-process metric files, or None in single-process mode."""
    return os.environ.get(MULTIPROCESS_ENV) or None


def exposition() -> bytes:
    """The Prometheus text exposition of every padlock metric of this process, or of every
    process sharing `multiprocess_dir()` (summed counters and histograms, gauges combined by
    their `multiprocess_mode`)."""
    directory = multiprocess_dir()
    if directory is None:
        return generate_latest(REGISTRY)
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
    return generate_latest(merged)


def combined_value(name: str) -> float | None:
    """The value of the unlabelled metric `name` over every process sharing
    `multiprocess_dir()` (a gauge by its `multiprocess_mode`); None in single-process mode
    or when no process has it yet. Reads every process's file: for probes, not hot paths."""
    directory = multiprocess_dir()
    if directory is None:
        return None
    merged = CollectorRegistry()
    multiprocess.MultiProcessCollector(merged, path=directory)  # type: ignore[no-untyped-call]
    return merged.get_sample_value(name)


def mark_process_dead(pid: int, directory: str) -> None:
    """Forget the live-mode gauge values of a worker that exited (the supervisor calls it);
    its counters stay in the totals, as counters must never go backwards."""
    multiprocess.mark_process_dead(pid, directory)  # type: ignore[no-untyped-call]


# --- CA sidecar (`padlock ca serve`) -------------------------------------------------------

CA_SIGNATURES = Counter(
    "padlock_ca_signatures_total",
    "Certificates signed by the CA key (every HSM signature over a TBS certificate, "
    "whether or not the lint gate then released it).",
    ["profile"],
    registry=REGISTRY,
)

CA_LINT_FAILURES = Counter(
    "padlock_ca_lint_failures_total",
    "Signed certificates the lint gate refused to release (own checks or pkilint errors).",
    ["profile", "linter"],
    registry=REGISTRY,
)

CA_ISSUED = Counter(
    "padlock_ca_certificates_issued_total",
    "Certificates committed to the ledger and returned to a client.",
    ["profile"],
    registry=REGISTRY,
)

CA_REQUESTS = Counter(
    "padlock_ca_requests_total",
    "CA API requests by endpoint and outcome (the JSON error code, or 'ok').",
    ["endpoint", "outcome"],
    registry=REGISTRY,
)

CA_ISSUANCE_SECONDS = Histogram(
    "padlock_ca_issuance_seconds",
    "Time from a parsed sign request to a committed certificate (policy, sign, lint, ledger).",
    buckets=(0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0),
    registry=REGISTRY,
)

CA_HSM_UP_NAME = "padlock_ca_hsm_up"
CA_HSM_UP = Gauge(
    CA_HSM_UP_NAME,
    "1 while the CA holds a working session to the token with the issuing key, else 0.",
    registry=REGISTRY,
    # Several workers: 1 only while every live worker has its session.
    multiprocess_mode="livemin",
)

CA_SERIAL_COLLISIONS = Counter(
    "padlock_ca_serial_collisions_total",
    "Fresh serials the ledger refused as already used (the pipeline retried with a new one).",
    registry=REGISTRY,
)

CA_COMMIT_BATCH = Histogram(
    "padlock_ca_commit_batch_size",
    "Certificates per ledger write transaction (padlock.ca.group_commit).",
    buckets=(1, 2, 4, 8, 16, 32, 64),
    registry=REGISTRY,
)

# --- Operator (`padlock operator`) ---------------------------------------------------------
# Set by padlock.controllers.observe; certificate series are removed when their Certificate
# is deleted. Labels follow cert-manager's (name, namespace, issuer_name, issuer_kind).

_CERT_LABELS = ["name", "namespace", "issuer_name", "issuer_kind"]

CERT_EXPIRATION = Gauge(
    "padlock_certificate_expiration_timestamp_seconds",
    "notAfter of the certificate in the Secret, as a Unix timestamp.",
    _CERT_LABELS,
    registry=REGISTRY,
)

CERT_NOT_BEFORE = Gauge(
    "padlock_certificate_not_before_timestamp_seconds",
    "notBefore of the certificate in the Secret, as a Unix timestamp.",
    _CERT_LABELS,
    registry=REGISTRY,
)

CERT_RENEWAL = Gauge(
    "padlock_certificate_renewal_timestamp_seconds",
    "When the operator will renew the certificate, as a Unix timestamp.",
    _CERT_LABELS,
    registry=REGISTRY,
)

CERT_READY = Gauge(
    "padlock_certificate_ready_status",
    "1 for the current status (True, False, Unknown) of the Certificate's Ready condition.",
    [*_CERT_LABELS, "condition"],
    registry=REGISTRY,
)

ISSUER_READY = Gauge(
    "padlock_issuer_ready_status",
    "1 for the current status (True, False, Unknown) of an Issuer's Ready condition.",
    ["name", "namespace", "kind", "condition"],
    registry=REGISTRY,
)

ISSUANCE_SECONDS = Histogram(
    "padlock_issuance_duration_seconds",
    "Time the operator took to issue one certificate: key, CSR, CA call and Secret write.",
    ["issuer_kind"],
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0),
    registry=REGISTRY,
)

WORKLOAD_RELOADS = Counter(
    "padlock_workload_reloads_total",
    "Pod-template patches that rolled a workload after its certificate content changed.",
    ["kind", "namespace"],
    registry=REGISTRY,
)

# --- Revocation: OCSP pre-signing and CRLs (CA), responder (`padlock ocsp serve`) -------------

OCSP_REQUESTS = Counter(
    "padlock_ocsp_requests_total",
    "OCSP requests answered by the responder, by outcome: good, revoked, unknown (signed "
    "answers) or the error status (malformedRequest, unauthorized, tryLater, internalError).",
    ["status"],
    registry=REGISTRY,
)

OCSP_RESPONSE_AGE = Histogram(
    "padlock_ocsp_response_age_seconds",
    "Age (now - thisUpdate) of the signed OCSP responses the responder served.",
    buckets=(1, 10, 60, 600, 3600, 4 * 3600, 8 * 3600, 12 * 3600, 24 * 3600, 48 * 3600),
    registry=REGISTRY,
)

OCSP_SIGNATURES = Counter(
    "padlock_ocsp_signatures_total",
    "OCSP responses signed with the delegated responder key, by why: issued, revoked, "
    "refresh (pre-signed by the CA), nonce, multi, hash, unknown (on demand by the responder).",
    ["reason"],
    registry=REGISTRY,
)

CRL_NEXT_UPDATE = Gauge(
    "padlock_crl_next_update_timestamp_seconds",
    "nextUpdate of the latest published CRL of each shard, as a Unix timestamp.",
    ["shard"],
    registry=REGISTRY,
    multiprocess_mode="max",
)

CRL_BYTES = Gauge(
    "padlock_crl_size_bytes",
    "Size of the latest published CRL of each shard (DESIGN.md: at most 10 MB).",
    ["shard"],
    registry=REGISTRY,
    multiprocess_mode="mostrecent",
)
