"""padlock.api.labels: every key is a valid Kubernetes label/annotation key."""

from __future__ import annotations

import re

import pytest

from padlock.api import labels

# Kubernetes qualified name: optional DNS-subdomain prefix + "/" + name of at most 63 chars
# (k8s.io/apimachinery/pkg/util/validation IsQualifiedName).
NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
PREFIX = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")

KEYS = {
    name: value
    for name, value in vars(labels).items()
    if name.isupper() and isinstance(value, str) and "/" in value and "=" not in value
}


def test_the_keys_padlock_documents_are_there() -> None:
    assert labels.RELOAD == "padlock.dev/reload"
    assert labels.RELOAD_SECRETS == "padlock.dev/reload-secrets"
    assert labels.CERT_HASH == "padlock.dev/cert-hash"
    assert (labels.MANAGED_BY, labels.MANAGED_BY_VALUE) == (
        "app.kubernetes.io/managed-by",
        "padlock",
    )
    assert labels.CERTIFICATE_NAME == "padlock.dev/certificate-name"
    assert labels.SECRET_SELECTOR == "app.kubernetes.io/managed-by=padlock"


@pytest.mark.parametrize("key", sorted(KEYS.values()))
def test_key_is_a_qualified_name(key: str) -> None:
    prefix, name = key.split("/")
    assert PREFIX.match(prefix) and len(prefix) <= 253
    assert NAME.match(name) and len(name) <= 63


def test_keys_are_distinct() -> None:
    assert len(set(KEYS.values())) == len(KEYS)
