"""Pod-template patches that roll Deployments, StatefulSets and DaemonSets after a renewal.

Called by the reload controller once it has decided that a workload's mounted certificate
content changed. Setting `padlock.dev/cert-hash` on the pod template is a template change, so
the workload's own controller rolls the pods (a new ReplicaSet for a Deployment).
"""

from __future__ import annotations

from padlock.api import labels
from padlock.kube import paths
from padlock.kube.client import KubeClient, NotFound


async def set_cert_hash(
    client: KubeClient, kind: str, namespace: str, name: str, cert_hash: str
) -> bool:
    """Set the pod template's cert-hash annotation; False if the workload is gone."""
    resource = paths.WORKLOADS[kind]
    patch = {"spec": {"template": {"metadata": {"annotations": {labels.CERT_HASH: cert_hash}}}}}
    try:
        await client.merge_patch(resource.path(namespace, name), patch)
    except NotFound:
        return False
    return True
