"""kopf settings for padlock's operator (KOPF-NOTES.md), and the run-time configuration.

Called by `padlock.controllers.run` before the operator starts, and by tests that run the
operator against kmock.
"""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import kopf

from padlock.api import labels
from padlock.kube import secrets

# Not "padlock.dev" itself: kopf treats every annotation under a prefix it manages as its own
# and leaves it out of its diffs, and padlock's trigger and renew-request annotations live
# under padlock.dev/ precisely so that changing them runs the update handler.
PROGRESS_PREFIX = "operator.padlock.dev"


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """Everything `padlock operator` is told on its command line."""

    kubeconfig: Path | None = None
    namespaces: tuple[str, ...] = ()
    ca_socket: Path | None = None
    ca_url: str | None = None
    ca_timeout: float = 10.0
    metrics_host: str = "0.0.0.0"  # noqa: S104 - scraped by Prometheus from other pods
    metrics_port: int | None = 9402
    max_concurrent_ca_calls: int = 16


def configure(settings: kopf.OperatorSettings) -> None:
    """Apply padlock's choices to kopf's settings."""
    # Events for warnings and errors only: no Event flood for routine handler logs.
    settings.posting.level = logging.WARNING
    # Bounded API calls (kopf's default request timeout is 300 s, connect unbounded).
    settings.networking.request_timeout = 60
    settings.networking.connect_timeout = 10
    # Only padlock's TLS Secrets stream in: selected by the API server, not after a full LIST.
    settings.watching.label_selectors["v1", "secrets"] = (
        f"{labels.SECRET_SELECTOR},{secrets.ROLE}={secrets.ROLE_TLS}"
    )
    # Handler progress lives in annotations (the CRDs' status schema has no room for kopf's).
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=PROGRESS_PREFIX)
    settings.persistence.finalizer = f"{PROGRESS_PREFIX}/finalizer"
    # Key generation runs in the default executor; RSA-4096 takes a CPU second.
    settings.execution.max_workers = 4
