"""Pod reloads: roll the workloads that opted in when a padlock Secret's content changes.

Called by the Secret watch (`padlock.controllers.secretwatch`) for every consistent padlock
TLS Secret event, with kopf's in-memory indexes of opted-in workloads and of Secret content
hashes. A workload opts in with `padlock.dev/reload: "true"` (every padlock Secret it mounts)
or `padlock.dev/reload-secrets: "a,b"` (those Secrets, same namespace).

The pod template's `padlock.dev/cert-hash` is set to the hash of the Secret's `tls.crt`
(several Secrets: a hash over their hashes) when, and only when, it differs: an operator
restart replays every Secret and patches nothing. A workload seen for the first time, with no
hash yet, gets the hash recorded on its own metadata (which does not roll it): the pods it
runs were started with the content at hand.

The operator keeps what it knows in an `Inventory` (padlock Secret hashes and opted-in
workloads, by namespace), filled from kopf `on.event` handlers. kopf's own indexes would do
the same, but while they pre-populate every object's worker wakes on every other object's
toggle (quadratic): a restart with 2,000 Secrets did not resume in minutes.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from padlock.api import labels
from padlock.controllers import observe
from padlock.kube import events, objects, paths, workloads

if TYPE_CHECKING:
    from padlock.controllers.context import Deps

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class WorkloadRef:
    """What the reload decision needs to know about one opted-in workload."""

    kind: str
    namespace: str
    name: str
    reload_all: bool
    reload_secrets: frozenset[str]
    mounted: frozenset[str]
    cert_hash: str | None
    """The hash the pods run with: the template's, else the baseline on the metadata."""


@dataclasses.dataclass
class Inventory:
    """padlock TLS Secret hashes and opted-in workloads, by namespace (in memory only)."""

    secret_hashes: dict[str, dict[str, str]] = dataclasses.field(default_factory=dict)
    workloads: dict[str, dict[tuple[str, str], WorkloadRef]] = dataclasses.field(
        default_factory=dict
    )

    def hashes_in(self, namespace: str) -> dict[str, str]:
        return self.secret_hashes.get(namespace, {})

    def refs_in(self, namespace: str) -> list[WorkloadRef]:
        return list(self.workloads.get(namespace, {}).values())

    def set_secret(self, namespace: str, name: str, content_hash: str | None) -> None:
        if content_hash is None:
            self.secret_hashes.get(namespace, {}).pop(name, None)
        else:
            self.secret_hashes.setdefault(namespace, {})[name] = content_hash

    def set_workload(self, kind: str, namespace: str, name: str, ref: WorkloadRef | None) -> None:
        if ref is None:
            self.workloads.get(namespace, {}).pop((kind, name), None)
        else:
            self.workloads.setdefault(namespace, {})[(kind, name)] = ref


def wants_reload(annotations: Mapping[str, str]) -> bool:
    """Whether a workload opted into reloads (`padlock.dev/reload` or `reload-secrets`)."""
    return annotations.get(labels.RELOAD) == "true" or bool(annotations.get(labels.RELOAD_SECRETS))


def mounted_secrets(pod_spec: Mapping[str, Any]) -> frozenset[str]:
    """Secret names a pod spec mounts as volumes (plain or projected)."""
    names: set[str] = set()
    for volume in pod_spec.get("volumes") or []:
        secret = volume.get("secret")
        if secret and secret.get("secretName"):
            names.add(secret["secretName"])
        for source in (volume.get("projected") or {}).get("sources") or []:
            if (source.get("secret") or {}).get("name"):
                names.add(source["secret"]["name"])
    return frozenset(names)


def workload_ref(kind: str, body: Mapping[str, Any]) -> WorkloadRef:
    meta = body.get("metadata") or {}
    notes = meta.get("annotations") or {}
    template = (body.get("spec") or {}).get("template") or {}
    template_notes = (template.get("metadata") or {}).get("annotations") or {}
    listed = notes.get(labels.RELOAD_SECRETS) or ""
    return WorkloadRef(
        kind=kind,
        namespace=str(meta.get("namespace")),
        name=str(meta.get("name")),
        reload_all=notes.get(labels.RELOAD) == "true",
        reload_secrets=frozenset(s.strip() for s in listed.split(",") if s.strip()),
        mounted=mounted_secrets(template.get("spec") or {}),
        cert_hash=template_notes.get(labels.CERT_HASH) or notes.get(labels.CERT_HASH),
    )


def followed(ref: WorkloadRef) -> set[str]:
    """Every Secret name the workload may follow (padlock's or not)."""
    return set(ref.reload_secrets) | (set(ref.mounted) if ref.reload_all else set())


def watched_secrets(ref: WorkloadRef, padlock_secrets: Iterable[str]) -> set[str]:
    """The padlock Secrets (by name) whose content this workload follows."""
    return followed(ref) & set(padlock_secrets)


def combined_hash(hashes: Mapping[str, str]) -> str:
    """One Secret: its tls.crt hash. Several: a hash over `name=hash` lines, sorted."""
    if len(hashes) == 1:
        return next(iter(hashes.values()))
    text = "".join(f"{name}={value}\n" for name, value in sorted(hashes.items()))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


async def reload_for_secret(
    deps: Deps,
    namespace: str,
    secret_name: str,
    refs: Iterable[WorkloadRef],
    secret_hashes: Mapping[str, str],
) -> int:
    """Roll every workload in `namespace` following `secret_name` whose hash is stale.

    `secret_hashes` maps padlock TLS Secret names in the namespace to their tls.crt hash.
    Returns how many workloads were rolled.
    """
    rolled = 0
    for ref in refs:
        watched = watched_secrets(ref, secret_hashes)
        if secret_name not in watched:
            continue
        wanted = combined_hash({name: secret_hashes[name] for name in watched})
        if ref.cert_hash == wanted:
            continue
        if ref.cert_hash is None:
            # First sight: record the baseline on the workload's metadata (no roll).
            await record_baseline(deps, ref, secret_hashes)
            continue
        resource = paths.WORKLOADS[ref.kind]
        if await workloads.set_cert_hash(deps.kube, ref.kind, namespace, ref.name, wanted):
            rolled += 1
            observe.workload_reloaded(ref.kind, namespace)
            log.info("rolled %s %s/%s for Secret %s", ref.kind, namespace, ref.name, secret_name)
            await events.post(
                deps.kube,
                {
                    "apiVersion": resource.api_version,
                    "kind": ref.kind,
                    "metadata": {"namespace": namespace, "name": ref.name},
                },
                reason="CertificateReloaded",
                message=f"Secret {secret_name} has a new certificate: rolling the pods",
            )
    return rolled


async def record_baseline(deps: Deps, ref: WorkloadRef, secret_hashes: Mapping[str, str]) -> bool:
    """A workload that opted in after its Secrets were written: record the content its pods
    run with (on its metadata: no roll), so the next change rolls it. True if recorded."""
    if ref.cert_hash is not None:
        return False
    watched = watched_secrets(ref, secret_hashes)
    if not watched:
        return False
    wanted = combined_hash({name: secret_hashes[name] for name in watched})
    patched = await objects.patch_annotations(
        deps.kube, paths.WORKLOADS[ref.kind], ref.namespace, ref.name, {labels.CERT_HASH: wanted}
    )
    return patched is not None


async def handle_workload_event(
    deps: Deps, ref: WorkloadRef, secret_hashes: Mapping[str, str]
) -> int:
    """A workload event: record a baseline, or roll a workload that follows exactly one
    Secret whose content changed while nobody rolled it (e.g. the operator crashed between
    writing the Secret and patching the pod template). Several Secrets: only Secret events
    roll, since a partly filled inventory would give a wrong combined hash. Returns rolls."""
    if ref.cert_hash is None:
        await record_baseline(deps, ref, secret_hashes)
        return 0
    only = followed(ref)
    if len(only) != 1:
        return 0
    (name,) = only
    if name not in secret_hashes:
        return 0
    return await reload_for_secret(deps, ref.namespace, name, [ref], secret_hashes)
