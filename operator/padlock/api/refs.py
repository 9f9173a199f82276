"""References between objects: to an issuer, to a Secret key, to a local object.

Called by the Certificate, Issuer and RevocationRequest models, which share these shapes
(cert-manager's `issuerRef`, `SecretKeySelector`, `LocalObjectReference`).
"""

# Fields are declared with padlock.api.fields.spec_field, a dataclasses.field wrapper.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import enum

from padlock.api import group
from padlock.api.fields import spec_field
from padlock.api.wire import Model

# RFC 1123 DNS subdomain: what Kubernetes accepts as an object name (Secrets, Certificates).
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
DNS_SUBDOMAIN_MAX = 253
# A key in a Secret's data map.
SECRET_KEY_PATTERN = r"^[-._a-zA-Z0-9]+$"  # noqa: S105 - a regex, not a secret


class IssuerKind(enum.StrEnum):
    ISSUER = group.Kind.ISSUER.value
    CLUSTER_ISSUER = group.Kind.CLUSTER_ISSUER.value


@dataclasses.dataclass(frozen=True, kw_only=True)
class IssuerReference(Model):
    """Which Issuer (same namespace) or ClusterIssuer signs."""

    name: str = spec_field(
        "Name of the Issuer or ClusterIssuer.",
        required=True,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=DNS_SUBDOMAIN_MAX,
    )
    kind: IssuerKind | None = spec_field(
        "Issuer (in the same namespace) or ClusterIssuer. Defaults to Issuer.",
        default=IssuerKind.ISSUER.value,
    )
    group: str | None = spec_field(
        "API group of the issuer. Only padlock.dev is served by padlock.",
        default=group.GROUP,
        pattern=r"^padlock\.dev$",
        max_length=253,
    )

    @property
    def effective_kind(self) -> IssuerKind:
        return self.kind or IssuerKind.ISSUER


@dataclasses.dataclass(frozen=True, kw_only=True)
class LocalObjectReference(Model):
    """A reference by name to an object in the same namespace."""

    name: str = spec_field(
        "Name of the object in the same namespace.",
        required=True,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=DNS_SUBDOMAIN_MAX,
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class SecretKeySelector(Model):
    """One key of a Secret in the same namespace (for a ClusterIssuer: padlock's namespace)."""

    name: str = spec_field(
        "Name of the Secret.",
        required=True,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=DNS_SUBDOMAIN_MAX,
    )
    key: str | None = spec_field(
        "Key in the Secret's data. Each field that uses this says its default.",
        pattern=SECRET_KEY_PATTERN,
        max_length=253,
    )
