"""The committed CRDs refuse bad objects with a readable message, and accept good ones — checked
offline (schema + CEL, see crdcheck.py); tests/integration/test_crds.py proves the same cases on
a real kube-apiserver."""

from __future__ import annotations

import pytest

from tests.unit.api import crdcheck
from tests.unit.api.cases import ACCEPTED, REFUSED, Case


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.id)
def test_crd_accepts(case: Case) -> None:
    assert crdcheck.errors(case.object()) == []


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_crd_refuses_with_a_message_naming_the_problem(case: Case) -> None:
    found = crdcheck.errors(case.object())
    assert found, f"{case.id} was accepted"
    assert case.expect is not None
    assert any(case.expect in message for message in found), found


def test_renew_before_rule_uses_the_default_duration_when_duration_is_absent() -> None:
    (case,) = [c for c in ACCEPTED if c.id == "certificate-renew-before-under-default"]
    obj = case.object()
    assert "duration" not in obj["spec"]
    assert crdcheck.errors(obj) == []
    obj["spec"]["renewBefore"] = "2160h"
    assert crdcheck.errors(obj) == [
        "<root>.spec: renewBefore must be shorter than duration (default 2160h)"
    ]


def test_revocation_request_spec_is_immutable() -> None:
    (case,) = [c for c in ACCEPTED if c.id == "revocation-certificate"]
    old = case.object()
    new = case.object()
    new["spec"]["reason"] = "superseded"
    assert crdcheck.errors(new, old=old) == [
        "<root>.spec: a RevocationRequest cannot be changed; create a new one"
    ]
    assert crdcheck.errors(case.object(), old=old) == []


def test_offline_checker_applies_schema_defaults() -> None:
    schema = crdcheck.crd_schemas()["Certificate"]
    (case,) = [c for c in ACCEPTED if c.id == "certificate-minimal"]
    filled = crdcheck.apply_defaults(schema, case.object())
    assert filled["spec"]["duration"] == "2160h"
    assert filled["spec"]["issuerRef"] == {
        "name": "padlock-ca",
        "kind": "Issuer",
        "group": "padlock.dev",
    }


@pytest.mark.parametrize("field", ["duration", "renewBefore"])
def test_malformed_durations_get_the_pattern_error_only(field: str) -> None:
    # CEL's duration() would fail on "90d" with a cryptic type-conversion error; the rules
    # skip malformed values and leave the message to the field's pattern.
    (case,) = [c for c in ACCEPTED if c.id == "certificate-minimal"]
    obj = case.object()
    obj["spec"][field] = "90d"
    assert crdcheck.cel_errors(obj) == []
    (only,) = crdcheck.errors(obj)
    assert only.startswith(f"spec.{field}: '90d' does not match")
