"""Which serial numbers a RevocationRequest names: the three target forms, resolved.

Called by the revocation controller (`padlock.controllers.revocations`) before it calls the CA.

- `certificateRef`: the certificate the Certificate's Secret holds now. `status.serialNumber`
  and the Secret's `tls.crt` must agree; while they differ (an issuance in flight) the answer
  is "try again shortly", never a guess.
- `serialNumber` + `issuerRef`: that serial; the issuer must be a `ca` Issuer/ClusterIssuer
  (padlock's CA). RFC 5280 §4.1.2.2: a serial is unique only within one CA.
- `issuerRef` + `scope: AllFromIssuer`: every certificate of padlock's CA (the CA answers with
  the list).

A problem is `TargetProblem` with a condition reason and whether it is permanent (the spec is
immutable, so a missing Certificate or a selfSigned issuer stays so) or temporary.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

from padlock.api import certificate as cert_api
from padlock.api import group
from padlock.api.conditions import Reason
from padlock.api.issuer import IssuerSpec
from padlock.api.refs import IssuerReference
from padlock.api.revocation import RevocationRequestSpec
from padlock.controllers import crypto
from padlock.kube import objects, paths, secrets
from padlock.kube.client import KubeClient
from padlock.pki import serials

NOT_REVOCABLE = "NotRevocable"  # the issuer is not padlock's CA (selfSigned, ACME)
INVALID_SERIAL = "InvalidSerial"


class TargetProblem(Exception):
    """The target cannot be resolved; `reason` goes into the Complete condition."""

    def __init__(self, reason: str, message: str, *, permanent: bool) -> None:
        super().__init__(message)
        self.reason = reason
        self.message = message
        self.permanent = permanent


@dataclasses.dataclass(frozen=True)
class Target:
    """What to revoke: `serials` (lowercase hex), or everything (`all_from_issuer`).
    `namespace` is where the affected Certificates are looked for (None: everywhere)."""

    serials: tuple[str, ...]
    all_from_issuer: bool
    namespace: str | None
    description: str


def normalize_serial(text: str) -> str:
    """Lowercase hex without separators or leading zero bytes beyond an even length, as
    `status.serialNumber` and `revokedSerials` spell it; ValueError for a non-serial."""
    value = int(text.strip().replace(":", ""), 16)
    serials.check_serial(value)
    return serials.serial_hex(value).lower()


async def _issuer_body(
    kube: KubeClient, namespace: str, ref: IssuerReference
) -> Mapping[str, Any] | None:
    kind = ref.effective_kind.value
    if kind == group.Kind.CLUSTER_ISSUER:
        return await objects.get(kube, paths.CLUSTER_ISSUERS, None, ref.name)
    return await objects.get(kube, paths.ISSUERS, namespace, ref.name)


async def check_ca_issuer(kube: KubeClient, namespace: str, ref: IssuerReference) -> str:
    """Describe the issuer; TargetProblem unless it exists and is a `ca` issuer."""
    kind = ref.effective_kind.value
    where = f"{kind} {ref.name}" + ("" if kind == group.Kind.CLUSTER_ISSUER else f" in {namespace}")
    body = await _issuer_body(kube, namespace, ref)
    if body is None:
        raise TargetProblem(Reason.ISSUER_NOT_FOUND, f"{where} does not exist", permanent=True)
    try:
        spec = IssuerSpec.from_dict(body.get("spec") or {}, "spec")
    except ValueError as exc:
        raise TargetProblem(Reason.INVALID_CONFIG, f"{where}: {exc}", permanent=True) from None
    if spec.type_name != "ca":
        raise TargetProblem(
            NOT_REVOCABLE,
            f"{where} is a {spec.type_name} issuer: padlock's CA did not sign its certificates, "
            "so it cannot revoke them",
            permanent=True,
        )
    return where


async def _certificate_serial(kube: KubeClient, namespace: str, name: str) -> tuple[str, str]:
    """(serial, description) of the certificate a Certificate's Secret holds now."""
    body = await objects.get(kube, paths.CERTIFICATES, namespace, name)
    if body is None:
        raise TargetProblem(
            Reason.TARGET_NOT_FOUND,
            f"Certificate {name} does not exist in namespace {namespace}",
            permanent=True,
        )
    try:
        spec = cert_api.CertificateSpec.from_dict(body.get("spec") or {}, "spec")
    except ValueError as exc:
        raise TargetProblem(
            Reason.TARGET_NOT_FOUND,
            f"Certificate {name} has an invalid spec: {exc}",
            permanent=True,
        ) from None
    await check_ca_issuer(kube, namespace, spec.issuer_ref)
    status_serial = (body.get("status") or {}).get("serialNumber")
    if not status_serial:
        raise TargetProblem(
            Reason.PENDING, f"Certificate {name} has no certificate yet", permanent=False
        )
    secret = await secrets.read(kube, namespace, spec.secret_name)
    tls_crt = secrets.data_of(secret, secrets.TLS_CRT)
    uid = (body.get("metadata") or {}).get("uid")
    if tls_crt is None or secrets.annotations_of(secret).get(secrets.CERTIFICATE_UID) != uid:
        raise TargetProblem(
            Reason.PENDING,
            f"Secret {spec.secret_name} does not hold Certificate {name}'s certificate now "
            "(being re-issued?)",
            permanent=False,
        )
    try:
        held = crypto.load_leaf(tls_crt)
    except ValueError as exc:
        raise TargetProblem(
            Reason.PENDING, f"Secret {spec.secret_name} is unreadable: {exc}", permanent=False
        ) from None
    serial = serials.serial_hex(held.serial_number).lower()
    if normalize_serial(str(status_serial)) != serial:
        raise TargetProblem(
            Reason.PENDING,
            f"Certificate {name} says serial {status_serial} but Secret {spec.secret_name} "
            f"holds {serial} (an issuance in flight); waiting for them to agree",
            permanent=False,
        )
    return serial, f"Certificate {name} (serial {serial})"


async def resolve(kube: KubeClient, namespace: str, spec: RevocationRequestSpec) -> Target:
    """The target of a decoded, checked spec (see the module docstring)."""
    if spec.certificate_ref is not None:
        serial, description = await _certificate_serial(kube, namespace, spec.certificate_ref.name)
        return Target((serial,), False, namespace, description)
    assert spec.issuer_ref is not None, "RevocationRequestSpec.check() requires issuerRef here"
    where = await check_ca_issuer(kube, namespace, spec.issuer_ref)
    if spec.serial_number is not None:
        try:
            serial = normalize_serial(spec.serial_number)
        except ValueError as exc:
            raise TargetProblem(
                INVALID_SERIAL, f"serialNumber {spec.serial_number}: {exc}", permanent=True
            ) from None
        return Target((serial,), False, None, f"serial {serial} of {where}")
    return Target((), True, None, f"every certificate of padlock's CA ({where})")
