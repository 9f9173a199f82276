"""The API group, version, kinds, plurals and short names of padlock's custom resources.

Called by `padlock.api.crdgen` (CRD names), the controllers (what kopf watches) and
`padlock.kube` (which URLs to call). Short names are chosen not to clash with cert-manager's
(`cert`, `certs`, `cr`, `crs`), so both can run in one cluster.
"""

from __future__ import annotations

import dataclasses
import enum

GROUP = "padlock.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
CATEGORY = "padlock"


class Kind(enum.StrEnum):
    ISSUER = "Issuer"
    CLUSTER_ISSUER = "ClusterIssuer"
    CERTIFICATE = "Certificate"
    REVOCATION_REQUEST = "RevocationRequest"


class Scope(enum.StrEnum):
    """CustomResourceDefinition `spec.scope`."""

    NAMESPACED = "Namespaced"
    CLUSTER = "Cluster"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Names:
    """CustomResourceDefinition `spec.names` plus the scope of one kind."""

    kind: Kind
    singular: str
    plural: str
    short_names: tuple[str, ...]
    scope: Scope

    @property
    def crd_name(self) -> str:
        """`<plural>.<group>`, the CRD's metadata.name."""
        return f"{self.plural}.{GROUP}"


ISSUER = Names(
    kind=Kind.ISSUER,
    singular="issuer",
    plural="issuers",
    short_names=("pliss",),
    scope=Scope.NAMESPACED,
)
CLUSTER_ISSUER = Names(
    kind=Kind.CLUSTER_ISSUER,
    singular="clusterissuer",
    plural="clusterissuers",
    short_names=("plciss",),
    scope=Scope.CLUSTER,
)
CERTIFICATE = Names(
    kind=Kind.CERTIFICATE,
    singular="certificate",
    plural="certificates",
    short_names=("plcert", "plcerts"),
    scope=Scope.NAMESPACED,
)
REVOCATION_REQUEST = Names(
    kind=Kind.REVOCATION_REQUEST,
    singular="revocationrequest",
    plural="revocationrequests",
    short_names=("plrevoke", "plrr"),
    scope=Scope.NAMESPACED,
)

ALL: tuple[Names, ...] = (ISSUER, CLUSTER_ISSUER, CERTIFICATE, REVOCATION_REQUEST)
