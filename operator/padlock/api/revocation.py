"""RevocationRequest: revoke one certificate, one serial, or everything an issuer signed.

Called by the revocation controller (decode the spec, call the CA's `/v1/revoke`, write the
status) and by `padlock.api.crdgen`. Three target forms, exactly one per request:

- `certificateRef`: the certificate currently in a Certificate's Secret (same namespace);
- `serialNumber` + `issuerRef`: one serial (a serial is unique only within one CA,
  RFC 5280 §4.1.2.2);
- `issuerRef` + `scope: AllFromIssuer`: every unexpired certificate of that issuer (the
  intermediate-compromise drill).

A revocation cannot be undone, so the spec is immutable once created.
"""

# Fields are declared with padlock.api.fields.spec_field, a dataclasses.field wrapper.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import datetime
import enum

from padlock.api.certificate import SERIAL_PATTERN
from padlock.api.conditions import Condition
from padlock.api.fields import Rule, list_field, spec_field
from padlock.api.reasons import REQUESTABLE, RevocationReason
from padlock.api.refs import IssuerReference, LocalObjectReference
from padlock.api.wire import Model


class RevocationScope(enum.StrEnum):
    ALL_FROM_ISSUER = "AllFromIssuer"


TARGET_MESSAGE = (
    "set exactly one target: certificateRef, serialNumber (with issuerRef), "
    "or scope: AllFromIssuer (with issuerRef)"
)


@dataclasses.dataclass(frozen=True, kw_only=True)
class RevocationRequestSpec(Model):
    """What to revoke, and why."""

    RULES = (
        Rule(
            rule="[has(self.certificateRef), has(self.serialNumber), has(self.scope)]"
            ".filter(x, x).size() == 1",
            message=TARGET_MESSAGE,
        ),
        Rule(
            rule="!has(self.serialNumber) || has(self.issuerRef)",
            message="serialNumber needs issuerRef: a serial number is unique only within one CA",
            field_path=".issuerRef",
        ),
        Rule(
            rule="!has(self.scope) || has(self.issuerRef)",
            message="scope: AllFromIssuer needs issuerRef",
            field_path=".issuerRef",
        ),
        Rule(
            rule="!has(self.certificateRef) || !has(self.issuerRef)",
            message="with certificateRef the issuer is the Certificate's: leave issuerRef unset",
            field_path=".issuerRef",
        ),
        Rule(
            rule="self == oldSelf",
            message="a RevocationRequest cannot be changed; create a new one",
        ),
    )

    certificate_ref: LocalObjectReference | None = spec_field(
        "Revoke the certificate currently held by this Certificate's Secret (same namespace)."
    )
    serial_number: str | None = spec_field(
        "Revoke this serial number (hex, colons allowed) of the issuer in issuerRef.",
        pattern=SERIAL_PATTERN,
        max_length=59,
    )
    issuer_ref: IssuerReference | None = spec_field(
        "The issuer of serialNumber, or the issuer whose certificates scope revokes."
    )
    scope: RevocationScope | None = spec_field(
        "AllFromIssuer: revoke every unexpired certificate the issuer in issuerRef signed."
    )
    reason: RevocationReason | None = spec_field(
        "RFC 5280 §5.3.1 CRLReason. removeFromCRL is not accepted (it only appears in delta "
        "CRLs). Defaults to unspecified.",
        default=RevocationReason.UNSPECIFIED.value,
        choices=[r.value for r in REQUESTABLE],
    )
    reissue: bool | None = spec_field(
        "After revoking, issue a fresh certificate (and key, per rotationPolicy) for every "
        "affected Certificate. Defaults to false.",
        default=False,
    )

    def check(self) -> None:
        targets = [self.certificate_ref, self.serial_number, self.scope]
        if sum(t is not None for t in targets) != 1:
            raise ValueError(TARGET_MESSAGE)
        if (self.serial_number is not None or self.scope is not None) and self.issuer_ref is None:
            raise ValueError("serialNumber and scope: AllFromIssuer need issuerRef")
        if self.certificate_ref is not None and self.issuer_ref is not None:
            raise ValueError(
                "with certificateRef the issuer is the Certificate's: leave issuerRef unset"
            )
        if self.reason is not None and self.reason not in REQUESTABLE:
            raise ValueError(
                f"reason {self.reason.value} cannot be requested (RFC 5280 §5.3.1: "
                "removeFromCRL only appears in delta CRLs)"
            )

    @property
    def effective_reason(self) -> RevocationReason:
        return self.reason or RevocationReason.UNSPECIFIED


@dataclasses.dataclass(frozen=True, kw_only=True)
class RevocationRequestStatus(Model):
    """Outcome of the request."""

    conditions: tuple[Condition, ...] = list_field(
        "Current conditions: Complete is True once every target serial is revoked and the "
        "OCSP responses and CRL are updated.",
        max_items=8,
        list_map_keys=("type",),
    )
    revoked_serials: tuple[str, ...] = list_field(
        "Serial numbers revoked by this request, lowercase hex.",
        item_pattern=SERIAL_PATTERN,
        max_items=100000,
    )
    revoked_at: datetime.datetime | None = spec_field(
        "Revocation time recorded by the CA (RFC 3339).", format="date-time"
    )
    crl_number: int | None = spec_field(
        "CRL number (RFC 5280 §5.2.3) of the first CRL that lists the revocation.", minimum=0
    )
