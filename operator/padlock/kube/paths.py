"""REST paths of the resources padlock reads and writes.

Called by the other `padlock.kube` modules to build URLs; one place spells `/api/v1` versus
`/apis/<group>/<version>` and namespaced versus cluster-scoped paths.
"""

from __future__ import annotations

import dataclasses
from urllib.parse import quote

from padlock.api import group


@dataclasses.dataclass(frozen=True)
class Resource:
    """One API resource: `group` is "" for the core API."""

    group: str
    version: str
    plural: str
    namespaced: bool = True

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    def path(
        self, namespace: str | None = None, name: str | None = None, subresource: str = ""
    ) -> str:
        """`/api/v1/namespaces/NS/secrets/NAME/sub`; no namespace for cluster-wide lists."""
        root = f"/apis/{self.group}/{self.version}" if self.group else f"/api/{self.version}"
        if self.namespaced and namespace is not None:
            root += f"/namespaces/{quote(namespace, safe='')}"
        root += f"/{self.plural}"
        if name is not None:
            root += f"/{quote(name, safe='')}"
            if subresource:
                root += f"/{subresource}"
        return root


SECRETS = Resource("", "v1", "secrets")
EVENTS = Resource("", "v1", "events")
DEPLOYMENTS = Resource("apps", "v1", "deployments")
STATEFULSETS = Resource("apps", "v1", "statefulsets")
DAEMONSETS = Resource("apps", "v1", "daemonsets")
WORKLOADS = {"Deployment": DEPLOYMENTS, "StatefulSet": STATEFULSETS, "DaemonSet": DAEMONSETS}

CERTIFICATES = Resource(group.GROUP, group.VERSION, group.CERTIFICATE.plural)
ISSUERS = Resource(group.GROUP, group.VERSION, group.ISSUER.plural)
CLUSTER_ISSUERS = Resource(
    group.GROUP, group.VERSION, group.CLUSTER_ISSUER.plural, namespaced=False
)
