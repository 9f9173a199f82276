"""Prometheus series the operator keeps (definitions live in `padlock.metrics`).

Called by the controllers after each reconciliation and on deletion. Remembers which label
set each Certificate used, so its series disappear when it is deleted or its issuer changes.
"""

from __future__ import annotations

import contextlib
import datetime

from padlock import metrics

_STATUSES = ("True", "False", "Unknown")

# (namespace, name) → (issuer_name, issuer_kind) of the series currently exported.
_cert_labels: dict[tuple[str, str], tuple[str, str]] = {}


def _labels(namespace: str, name: str, issuer_name: str, issuer_kind: str) -> dict[str, str]:
    return {
        "name": name,
        "namespace": namespace,
        "issuer_name": issuer_name,
        "issuer_kind": issuer_kind,
    }


def certificate_ready(
    namespace: str, name: str, issuer_name: str, issuer_kind: str, status: str
) -> None:
    """Set the Ready gauge (1 for `status`, 0 for the other two)."""
    previous = _cert_labels.get((namespace, name))
    if previous is not None and previous != (issuer_name, issuer_kind):
        certificate_forgotten(namespace, name)
    _cert_labels[(namespace, name)] = (issuer_name, issuer_kind)
    labels = _labels(namespace, name, issuer_name, issuer_kind)
    for candidate in _STATUSES:
        metrics.CERT_READY.labels(**labels, condition=candidate).set(
            1.0 if candidate == status else 0.0
        )


def certificate_times(
    namespace: str,
    name: str,
    issuer_name: str,
    issuer_kind: str,
    not_before: datetime.datetime,
    not_after: datetime.datetime,
    renewal: datetime.datetime,
) -> None:
    labels = _labels(namespace, name, issuer_name, issuer_kind)
    metrics.CERT_NOT_BEFORE.labels(**labels).set(not_before.timestamp())
    metrics.CERT_EXPIRATION.labels(**labels).set(not_after.timestamp())
    metrics.CERT_RENEWAL.labels(**labels).set(renewal.timestamp())


def certificate_forgotten(namespace: str, name: str) -> None:
    """Remove every series of a deleted Certificate."""
    previous = _cert_labels.pop((namespace, name), None)
    if previous is None:
        return
    values = (name, namespace, *previous)
    for gauge in (metrics.CERT_NOT_BEFORE, metrics.CERT_EXPIRATION, metrics.CERT_RENEWAL):
        with contextlib.suppress(KeyError):
            gauge.remove(*values)
    for status in _STATUSES:
        with contextlib.suppress(KeyError):
            metrics.CERT_READY.remove(*values, status)


def issuer_ready(kind: str, namespace: str, name: str, status: str) -> None:
    for candidate in _STATUSES:
        metrics.ISSUER_READY.labels(
            name=name, namespace=namespace, kind=kind, condition=candidate
        ).set(1.0 if candidate == status else 0.0)


def issuer_forgotten(kind: str, namespace: str, name: str) -> None:
    for status in _STATUSES:
        with contextlib.suppress(KeyError):
            metrics.ISSUER_READY.remove(name, namespace, kind, status)


def issuance_took(issuer_kind: str, seconds: float) -> None:
    metrics.ISSUANCE_SECONDS.labels(issuer_kind=issuer_kind).observe(seconds)


def workload_reloaded(kind: str, namespace: str) -> None:
    metrics.WORKLOAD_RELOADS.labels(kind=kind, namespace=namespace).inc()
