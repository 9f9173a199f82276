"""Status conditions: the `conditions[]` entry model and the type/reason names padlock sets.

Called by the controllers (they write conditions), by `padlock.metrics` (ready status gauges)
and by the CRD generator (the condition schema and printer columns). The entry follows
Kubernetes' `metav1.Condition` (type, status, reason, message, lastTransitionTime,
observedGeneration).
"""

# Fields are declared with padlock.api.fields.spec_field, a dataclasses.field wrapper.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import datetime
import enum

from padlock.api.fields import spec_field
from padlock.api.wire import Model


class ConditionType(enum.StrEnum):
    READY = "Ready"  # Certificate, Issuer, ClusterIssuer
    ISSUING = "Issuing"  # Certificate: an issuance is in progress
    COMPLETE = "Complete"  # RevocationRequest: the revocation took effect


class ConditionStatus(enum.StrEnum):
    TRUE = "True"
    FALSE = "False"
    UNKNOWN = "Unknown"


class Reason(enum.StrEnum):
    """CamelCase reasons (metav1.Condition requires `^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$`)."""

    # Certificate Ready
    READY = "Ready"  # the Secret holds a valid certificate matching the spec
    DOES_NOT_EXIST = "DoesNotExist"  # the Secret is not there yet
    SECRET_MISMATCH = "SecretMismatch"  # noqa: S105 - the Secret's certificate does not match the spec
    EXPIRED = "Expired"
    REVOKED = "Revoked"
    # Certificate Issuing
    ISSUING = "Issuing"
    RENEWING = "Renewing"
    ISSUED = "Issued"
    FAILED = "Failed"
    # Certificate, both
    ISSUER_NOT_FOUND = "IssuerNotFound"
    ISSUER_NOT_READY = "IssuerNotReady"
    POLICY_VIOLATION = "PolicyViolation"  # the CA refused the request (key, SANs, lifetime)
    # Issuer Ready
    CA_REACHABLE = "CAReachable"
    CA_UNREACHABLE = "CAUnreachable"
    ACME_ACCOUNT_REGISTERED = "ACMEAccountRegistered"
    ACME_ACCOUNT_FAILED = "ACMEAccountFailed"
    INVALID_CONFIG = "InvalidConfig"
    # RevocationRequest Complete
    # (REVOKED above when every target serial is revoked)
    PENDING = "Pending"
    TARGET_NOT_FOUND = "TargetNotFound"
    REVOCATION_FAILED = "RevocationFailed"


CONDITION_REASON_PATTERN = r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$"


@dataclasses.dataclass(frozen=True, kw_only=True)
class Condition(Model):
    """One status condition (Kubernetes API conventions, `metav1.Condition`)."""

    type: ConditionType = spec_field(
        "Type of the condition: Ready, Issuing (Certificate) or Complete (RevocationRequest).",
        required=True,
    )
    status: ConditionStatus = spec_field(
        "Status of the condition: True, False or Unknown.", required=True
    )
    reason: str | None = spec_field(
        "Machine-readable CamelCase reason for the last transition.",
        pattern=CONDITION_REASON_PATTERN,
        max_length=1024,
    )
    message: str | None = spec_field(
        "Human-readable detail about the last transition.", max_length=32768
    )
    last_transition_time: datetime.datetime | None = spec_field(
        "When the status last changed (RFC 3339).", format="date-time"
    )
    observed_generation: int | None = spec_field(
        "metadata.generation of the object when this condition was set.", minimum=0
    )


def find(conditions: tuple[Condition, ...], type_: ConditionType) -> Condition | None:
    """The condition of a given type, or None."""
    for condition in conditions:
        if condition.type is type_:
            return condition
    return None
