"""crds/ on a real kube-apiserver: bad objects are refused with a readable message before padlock
sees them, good ones and every manifests/examples file are accepted, defaults and printer
columns work.

Uses the `controlplane` fixture (tests/fixtures/controlplane.py applies crds/ at session start)
and `namespace`. The accepted/refused objects are the ones tests/unit/api/test_crd_rules.py
checks offline, so the offline checker is held to what the real API server does.
"""

from __future__ import annotations

import json
import pathlib
from typing import Any

import pytest

from padlock.api import crdgen, group
from tests.unit.api import crdcheck
from tests.unit.api.cases import ACCEPTED, REFUSED, Case

pytestmark = pytest.mark.controlplane

EXAMPLES = sorted(crdcheck.EXAMPLES.glob("*.yaml"))


def _create(controlplane: Any, namespace: str, obj: dict[str, Any], *, dry_run: bool = True) -> Any:
    args = ["create", "-n", namespace, "-o", "name", "-f", "-"]
    if dry_run:
        args.append("--dry-run=server")
    return controlplane.kubectl(*args, input=json.dumps(obj), check=False)


@pytest.mark.parametrize("resource", crdgen.RESOURCES, ids=lambda r: r.names.kind.value)
def test_crd_is_established(controlplane: Any, resource: crdgen.Resource) -> None:
    proc = controlplane.kubectl(
        "get",
        "crd",
        resource.names.crd_name,
        "-o",
        'jsonpath={.status.conditions[?(@.type=="Established")].status}',
    )
    assert proc.stdout == "True"


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.id)
def test_api_server_accepts(controlplane: Any, namespace: str, case: Case) -> None:
    proc = _create(controlplane, namespace, case.object())
    assert proc.returncode == 0, proc.stderr


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_api_server_refuses_with_a_readable_message(
    controlplane: Any, namespace: str, case: Case
) -> None:
    proc = _create(controlplane, namespace, case.object())
    assert proc.returncode != 0, f"{case.id} was accepted"
    assert case.expect is not None
    # One line per problem, naming the field and the rule's own words.
    assert "is invalid" in proc.stderr, proc.stderr
    assert case.expect in proc.stderr, proc.stderr


@pytest.mark.parametrize("field", ["duration", "renewBefore"])
def test_malformed_duration_gets_one_clear_error(
    controlplane: Any, namespace: str, field: str
) -> None:
    (case,) = [c for c in ACCEPTED if c.id == "certificate-minimal"]
    obj = case.object()
    obj["spec"][field] = "90d"
    proc = _create(controlplane, namespace, obj)
    assert proc.returncode != 0
    assert f'spec.{field}: Invalid value: "90d"' in proc.stderr, proc.stderr
    assert "type conversion error" not in proc.stderr, proc.stderr


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_applies_cleanly(controlplane: Any, namespace: str, path: pathlib.Path) -> None:
    proc = controlplane.kubectl(
        "apply", "--dry-run=server", "-n", namespace, "-f", str(path), check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "Warning" not in proc.stderr, proc.stderr


def test_schema_defaults_are_filled_in(controlplane: Any, namespace: str) -> None:
    (case,) = [c for c in ACCEPTED if c.id == "certificate-minimal"]
    created = _create(controlplane, namespace, case.object("defaults"), dry_run=False)
    assert created.returncode == 0, created.stderr
    got = json.loads(
        controlplane.kubectl("get", "-n", namespace, "certificate", "defaults", "-o", "json").stdout
    )
    assert got["spec"]["duration"] == "2160h"
    assert got["spec"]["issuerRef"] == {
        "name": "padlock-ca",
        "kind": "Issuer",
        "group": "padlock.dev",
    }


def test_revocation_request_cannot_be_edited(controlplane: Any, namespace: str) -> None:
    (case,) = [c for c in ACCEPTED if c.id == "revocation-certificate"]
    created = _create(controlplane, namespace, case.object("frozen"), dry_run=False)
    assert created.returncode == 0, created.stderr
    proc = controlplane.kubectl(
        "patch",
        "-n",
        namespace,
        "revocationrequest",
        "frozen",
        "--type=merge",
        "-p",
        json.dumps({"spec": {"reason": "superseded"}}),
        check=False,
    )
    assert proc.returncode != 0
    assert "a RevocationRequest cannot be changed; create a new one" in proc.stderr


def test_status_subresource_and_printer_columns(controlplane: Any, namespace: str) -> None:
    (case,) = [c for c in ACCEPTED if c.id == "certificate-minimal"]
    created = _create(controlplane, namespace, case.object("shown"), dry_run=False)
    assert created.returncode == 0, created.stderr
    status = {
        "status": {
            "conditions": [
                {
                    "type": "Ready",
                    "status": "True",
                    "reason": "Ready",
                    "message": "certificate is up to date",
                    "lastTransitionTime": "2026-11-27T13:00:00Z",
                }
            ],
            "notAfter": "2027-02-25T12:59:00Z",
        }
    }
    controlplane.kubectl(
        "patch",
        "-n",
        namespace,
        "certificate",
        "shown",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(status),
    )
    # Short name and the default columns.
    table = controlplane.kubectl("get", "-n", namespace, "plcert", "shown").stdout.splitlines()
    assert table[0].split() == ["NAME", "READY", "SECRET", "ISSUER", "NOTAFTER", "AGE"]
    assert table[1].split()[:5] == [
        "shown",
        "True",
        "web-tls",
        "padlock-ca",
        "2027-02-25T12:59:00Z",
    ]


def test_status_patch_with_an_unknown_condition_status_is_refused(
    controlplane: Any, namespace: str
) -> None:
    (case,) = [c for c in ACCEPTED if c.id == "issuer-selfsigned"]
    created = _create(controlplane, namespace, case.object("selfsigned"), dry_run=False)
    assert created.returncode == 0, created.stderr
    bad = {"status": {"conditions": [{"type": "Ready", "status": "Maybe"}]}}
    proc = controlplane.kubectl(
        "patch",
        "-n",
        namespace,
        "issuer",
        "selfsigned",
        "--subresource=status",
        "--type=merge",
        "-p",
        json.dumps(bad),
        check=False,
    )
    assert proc.returncode != 0
    assert "Maybe" in proc.stderr


def test_category_lists_every_namespaced_padlock_kind(controlplane: Any, namespace: str) -> None:
    for case_id in ("issuer-ca", "certificate-minimal", "revocation-certificate"):
        (case,) = [c for c in ACCEPTED if c.id == case_id]
        created = _create(controlplane, namespace, case.object(case_id), dry_run=False)
        assert created.returncode == 0, created.stderr
    names = controlplane.kubectl("get", "-n", namespace, group.CATEGORY, "-o", "name").stdout
    # ClusterIssuers (cluster-scoped) are listed too; other tests may have made some.
    namespaced = [n for n in names.split() if not n.startswith("clusterissuer.")]
    assert sorted(namespaced) == [
        "certificate.padlock.dev/certificate-minimal",
        "issuer.padlock.dev/issuer-ca",
        "revocationrequest.padlock.dev/revocation-certificate",
    ]
