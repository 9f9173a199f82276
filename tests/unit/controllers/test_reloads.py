"""Pod reloads: roll a workload once per content change, never on a replay."""

from __future__ import annotations

from typing import Any

from padlock import metrics
from padlock.api import labels
from padlock.controllers import reloads
from padlock.kube import paths

from .conftest import NAMESPACE, Env


def _deployment(annotations: dict[str, str], template_hash: str | None = None) -> dict[str, Any]:
    template_notes = {labels.CERT_HASH: template_hash} if template_hash else {}
    return {
        "kind": "Deployment",
        "metadata": {"name": "web", "annotations": annotations},
        "spec": {
            "template": {
                "metadata": {"annotations": template_notes},
                "spec": {
                    "containers": [{"name": "c", "image": "nginx"}],
                    "volumes": [
                        {"name": "tls", "secret": {"secretName": "web-tls"}},
                        {
                            "name": "both",
                            "projected": {"sources": [{"secret": {"name": "db-tls"}}]},
                        },
                        {"name": "cfg", "configMap": {"name": "cfg"}},
                    ],
                },
            }
        },
    }


def _reloads(kind: str = "Deployment") -> float:
    value = metrics.REGISTRY.get_sample_value(
        "padlock_workload_reloads_total", {"kind": kind, "namespace": NAMESPACE}
    )
    return value or 0.0


def test_opt_in_annotations_select_the_followed_secrets() -> None:
    ref = reloads.workload_ref("Deployment", _deployment({labels.RELOAD: "true"}))
    assert ref.mounted == {"web-tls", "db-tls"}
    assert reloads.watched_secrets(ref, ["web-tls", "db-tls", "unrelated"]) == {"web-tls", "db-tls"}
    listed = reloads.workload_ref(
        "Deployment", _deployment({labels.RELOAD_SECRETS: "db-tls, other"})
    )
    assert reloads.watched_secrets(listed, ["web-tls", "db-tls", "other"]) == {"db-tls", "other"}
    assert not reloads.wants_reload({labels.RELOAD: "false"})


def test_the_hash_of_one_secret_is_its_own_and_of_several_is_order_free() -> None:
    assert reloads.combined_hash({"a": "h1"}) == "h1"
    assert reloads.combined_hash({"a": "h1", "b": "h2"}) == reloads.combined_hash(
        {"b": "h2", "a": "h1"}
    )


async def test_first_sight_records_a_baseline_then_a_change_rolls_once(env: Env) -> None:
    await env.create(paths.DEPLOYMENTS, _deployment({labels.RELOAD_SECRETS: "web-tls"}))

    async def replay(content: str) -> int:
        body = await env.get(paths.DEPLOYMENTS, "web")
        ref = reloads.workload_ref("Deployment", body)
        return await reloads.reload_for_secret(
            env.deps, NAMESPACE, "web-tls", [ref], {"web-tls": content}
        )

    before = _reloads()
    assert await replay("hash-1") == 0  # baseline on metadata, template untouched
    body = await env.get(paths.DEPLOYMENTS, "web")
    assert labels.CERT_HASH not in body["spec"]["template"]["metadata"]["annotations"]
    assert body["metadata"]["annotations"][labels.CERT_HASH] == "hash-1"
    assert await replay("hash-1") == 0  # a restart replays the same content
    assert await replay("hash-2") == 1  # a renewal
    body = await env.get(paths.DEPLOYMENTS, "web")
    assert body["spec"]["template"]["metadata"]["annotations"][labels.CERT_HASH] == "hash-2"
    assert await replay("hash-2") == 0
    assert _reloads() == before + 1


async def test_a_workload_not_following_the_secret_is_left_alone(env: Env) -> None:
    await env.create(paths.DEPLOYMENTS, _deployment({labels.RELOAD_SECRETS: "db-tls"}, "old"))
    body = await env.get(paths.DEPLOYMENTS, "web")
    ref = reloads.workload_ref("Deployment", body)
    rolled = await reloads.reload_for_secret(
        env.deps, NAMESPACE, "web-tls", [ref], {"web-tls": "new", "db-tls": "old"}
    )
    assert rolled == 0


async def test_a_workload_opting_in_after_issuance_gets_a_baseline_then_rolls(env: Env) -> None:
    await env.create(paths.DEPLOYMENTS, _deployment({labels.RELOAD: "true"}))
    ref = reloads.workload_ref("Deployment", await env.get(paths.DEPLOYMENTS, "web"))
    assert await reloads.record_baseline(env.deps, ref, {"web-tls": "hash-1"})
    ref = reloads.workload_ref("Deployment", await env.get(paths.DEPLOYMENTS, "web"))
    assert ref.cert_hash == "hash-1"
    assert not await reloads.record_baseline(env.deps, ref, {"web-tls": "hash-1"})
    rolled = await reloads.reload_for_secret(
        env.deps, NAMESPACE, "web-tls", [ref], {"web-tls": "h2"}
    )
    assert rolled == 1


async def test_a_workload_event_rolls_a_single_secret_follower_that_missed_a_change(
    env: Env,
) -> None:
    # As after a crash between the Secret write and the pod-template patch.
    await env.create(paths.DEPLOYMENTS, _deployment({labels.RELOAD_SECRETS: "web-tls"}, "old"))
    ref = reloads.workload_ref("Deployment", await env.get(paths.DEPLOYMENTS, "web"))
    assert await reloads.handle_workload_event(env.deps, ref, {"web-tls": "old"}) == 0
    assert await reloads.handle_workload_event(env.deps, ref, {}) == 0  # not seen yet
    assert await reloads.handle_workload_event(env.deps, ref, {"web-tls": "new"}) == 1


async def test_a_workload_event_never_rolls_a_several_secret_follower(env: Env) -> None:
    await env.create(paths.DEPLOYMENTS, _deployment({labels.RELOAD: "true"}, "old"))
    ref = reloads.workload_ref("Deployment", await env.get(paths.DEPLOYMENTS, "web"))
    # Only one of its two Secrets known yet: a combined hash now would be wrong.
    assert await reloads.handle_workload_event(env.deps, ref, {"web-tls": "new"}) == 0


def test_the_inventory_forgets_deleted_secrets_and_workloads() -> None:
    inventory = reloads.Inventory()
    inventory.set_secret("ns", "a", "h")
    ref = reloads.workload_ref("Deployment", _deployment({labels.RELOAD: "true"}))
    inventory.set_workload("Deployment", "ns", "web", ref)
    assert inventory.hashes_in("ns") == {"a": "h"} and inventory.refs_in("ns") == [ref]
    inventory.set_secret("ns", "a", None)
    inventory.set_workload("Deployment", "ns", "web", None)
    assert inventory.hashes_in("ns") == {} and inventory.refs_in("ns") == []
