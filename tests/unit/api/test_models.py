"""padlock.api models: wire round-trips, refusals that match the CRD's, and effective values."""

from __future__ import annotations

import dataclasses
import datetime

import pytest

from padlock.api import certificate, conditions, issuer, refs, revocation
from padlock.api.group import Kind
from padlock.api.wire import Model, WireError
from tests.unit.api.cases import ACCEPTED, REFUSED, Case

SPEC_MODELS: dict[Kind, type[Model]] = {
    Kind.CERTIFICATE: certificate.CertificateSpec,
    Kind.ISSUER: issuer.IssuerSpec,
    Kind.CLUSTER_ISSUER: issuer.IssuerSpec,
    Kind.REVOCATION_REQUEST: revocation.RevocationRequestSpec,
}


@pytest.mark.parametrize("case", ACCEPTED, ids=lambda c: c.id)
def test_spec_round_trips_through_the_model(case: Case) -> None:
    model = SPEC_MODELS[case.kind].from_dict(case.spec)
    assert model.to_dict() == case.spec


@pytest.mark.parametrize("case", REFUSED, ids=lambda c: c.id)
def test_model_refuses_what_the_crd_refuses(case: Case) -> None:
    assert case.expect is not None
    with pytest.raises(ValueError, match=None) as info:
        SPEC_MODELS[case.kind].from_dict(case.spec, "spec")
    assert case.expect in str(info.value)


def test_wire_error_names_the_json_path_of_the_bad_key() -> None:
    spec = {"secretName": "t", "issuerRef": {"name": "ca"}, "dnsNames": ["a"]}
    spec["privateKey"] = {"size": "big"}
    with pytest.raises(WireError, match=r"^spec\.privateKey\.size: expected an integer, got 'big'"):
        certificate.CertificateSpec.from_dict(spec, "spec")


def test_unknown_keys_are_refused_with_the_known_ones_listed() -> None:
    with pytest.raises(WireError, match=r"spec\.issuerRef: unknown field 'namespace' \(known: "):
        certificate.CertificateSpec.from_dict(
            {"secretName": "t", "issuerRef": {"name": "ca", "namespace": "x"}, "dnsNames": ["a"]},
            "spec",
        )


def test_booleans_are_not_integers() -> None:
    with pytest.raises(WireError, match="expected an integer, got True"):
        certificate.CertificateSpec.from_dict(
            {
                "secretName": "t",
                "issuerRef": {"name": "ca"},
                "dnsNames": ["a"],
                "revisionHistoryLimit": True,
            }
        )


def test_models_are_frozen() -> None:
    spec = certificate.CertificateSpec.from_dict(
        {"secretName": "t", "issuerRef": {"name": "ca"}, "dnsNames": ["a"]}
    )
    with pytest.raises(dataclasses.FrozenInstanceError):
        spec.secret_name = "u"  # type: ignore[misc]


def test_certificate_defaults_apply_when_fields_are_absent() -> None:
    spec = certificate.CertificateSpec.from_dict(
        {"secretName": "t", "issuerRef": {"name": "ca"}, "dnsNames": ["a"]}
    )
    assert spec.effective_duration == datetime.timedelta(days=90)
    assert spec.issuer_ref.effective_kind is refs.IssuerKind.ISSUER
    key = spec.effective_private_key
    assert key.effective_algorithm is certificate.KeyAlgorithm.ECDSA
    assert key.effective_size == 256
    assert key.effective_rotation_policy is certificate.RotationPolicy.ALWAYS
    assert key.effective_encoding is certificate.KeyEncoding.PKCS1
    assert spec.effective_usages == certificate.DEFAULT_USAGES
    # Absent stays absent on the way out: the model never writes defaults into a spec.
    assert spec.to_dict() == {"secretName": "t", "issuerRef": {"name": "ca"}, "dnsNames": ["a"]}


@pytest.mark.parametrize(
    ("fields", "lifetime", "expected"),
    [
        ({"renewBefore": "720h"}, datetime.timedelta(days=90), datetime.timedelta(days=30)),
        # The issuer granted less than asked: renewBefore is capped to the real lifetime.
        ({"renewBefore": "720h"}, datetime.timedelta(days=7), datetime.timedelta(days=7)),
        ({"renewBeforePercentage": 10}, datetime.timedelta(days=90), datetime.timedelta(days=9)),
        ({}, datetime.timedelta(days=90), datetime.timedelta(days=30)),
    ],
)
def test_renew_before_for_a_granted_lifetime(
    fields: dict[str, object], lifetime: datetime.timedelta, expected: datetime.timedelta
) -> None:
    spec = certificate.CertificateSpec.from_dict(
        {"secretName": "t", "issuerRef": {"name": "ca"}, "dnsNames": ["a"], **fields}
    )
    assert spec.renew_before_for(lifetime) == expected


def test_rsa_key_size_defaults_to_2048() -> None:
    key = certificate.PrivateKey.from_dict({"algorithm": "RSA"})
    assert key.effective_size == 2048
    assert certificate.PrivateKey.from_dict({"algorithm": "Ed25519"}).effective_size is None


def test_certificate_status_round_trips_timestamps_in_utc() -> None:
    wire = {
        "conditions": [
            {
                "type": "Ready",
                "status": "True",
                "reason": "Ready",
                "message": "certificate is up to date",
                "lastTransitionTime": "2026-11-27T13:00:00Z",
                "observedGeneration": 2,
            }
        ],
        "notBefore": "2026-11-27T12:59:00Z",
        "notAfter": "2027-02-25T12:59:00Z",
        "renewalTime": "2027-01-24T08:00:00Z",
        "revision": 1,
        "serialNumber": "4f1a007c",
        "failedIssuanceAttempts": 0,
    }
    status = certificate.CertificateStatus.from_dict(wire)
    assert status.not_after == datetime.datetime(2027, 2, 25, 12, 59, tzinfo=datetime.UTC)
    ready = conditions.find(status.conditions, conditions.ConditionType.READY)
    assert ready is not None and ready.status is conditions.ConditionStatus.TRUE
    assert conditions.find(status.conditions, conditions.ConditionType.ISSUING) is None
    assert status.to_dict() == wire


def test_status_encodes_aware_datetimes_as_utc_seconds() -> None:
    cet = datetime.timezone(datetime.timedelta(hours=1))
    status = revocation.RevocationRequestStatus(
        revoked_serials=("01", "02"),
        revoked_at=datetime.datetime(2026, 11, 27, 14, 0, 0, 123456, tzinfo=cet),
        crl_number=7,
    )
    assert status.to_dict() == {
        "revokedSerials": ["01", "02"],
        "revokedAt": "2026-11-27T13:00:00Z",
        "crlNumber": 7,
    }


def test_naive_timestamps_are_refused() -> None:
    with pytest.raises(WireError, match="has no time zone"):
        certificate.CertificateStatus.from_dict({"notAfter": "2027-02-25T12:59:00"})


def test_issuer_type_name() -> None:
    assert issuer.IssuerSpec.from_dict({"selfSigned": {}}).type_name == "selfSigned"
    assert issuer.IssuerSpec.from_dict({"ca": {}}).type_name == "ca"


def test_revocation_reason_defaults_to_unspecified() -> None:
    spec = revocation.RevocationRequestSpec.from_dict({"certificateRef": {"name": "web"}})
    assert spec.effective_reason.code == 0
