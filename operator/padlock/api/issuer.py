"""Issuer and ClusterIssuer: how certificates get signed.

Called by the issuer controller (decode the spec, report Ready), by the certificate controller
(which issuer type to use) and by `padlock.api.crdgen`. Exactly one issuer type is set
(RFC-free rule of this API, enforced by CEL in the CRD and by `IssuerSpec.check`):

- `ca`: the in-cluster CA sidecar, whose intermediate key lives in the HSM;
- `selfSigned`: each certificate signs itself (bootstrap, tests);
- `acme`: an external ACME server (RFC 8555), e.g. another padlock or a public CA.
"""

# Fields are declared with padlock.api.fields.spec_field, a dataclasses.field wrapper.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import enum

from padlock.api import durations
from padlock.api.conditions import Condition
from padlock.api.fields import Rule, list_field, spec_field
from padlock.api.refs import SecretKeySelector
from padlock.api.wire import Model

DURATION_MAX_LENGTH = 64
PROFILE_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CAIssuer(Model):
    """Sign with padlock's CA sidecar (key in the HSM)."""

    profile: str | None = spec_field(
        "Certificate profile the CA applies (e.g. tls-server, tls-client, tls-server-client). "
        "Defaults to the CA's default profile.",
        pattern=PROFILE_PATTERN,
        max_length=63,
    )
    max_duration: str | None = spec_field(
        "Longest lifetime this issuer grants, as a Go duration (e.g. 2160h). Longer "
        "Certificate durations are refused. Defaults to the CA's own limit.",
        pattern=durations.PATTERN,
        max_length=DURATION_MAX_LENGTH,
    )

    def check(self) -> None:
        if self.max_duration is not None:
            durations.parse(self.max_duration)


@dataclasses.dataclass(frozen=True, kw_only=True)
class SelfSignedIssuer(Model):
    """Each certificate is signed by its own private key. Takes no settings."""


@dataclasses.dataclass(frozen=True, kw_only=True)
class ExternalAccountBinding(Model):
    """RFC 8555 §7.3.4 external account binding: ties the ACME account to an existing one."""

    key_id: str = spec_field(
        "Key identifier given by the ACME server's operator.",
        wire="keyID",
        required=True,
        max_length=1024,
    )
    key_secret_ref: SecretKeySelector = spec_field(
        "Secret key holding the base64url-encoded HMAC key for the binding.",
        required=True,
    )


class ServiceType(enum.StrEnum):
    CLUSTER_IP = "ClusterIP"
    NODE_PORT = "NodePort"


class TSIGAlgorithm(enum.StrEnum):
    """TSIG MAC algorithms (RFC 8945 §6)."""

    HMAC_SHA256 = "HMACSHA256"
    HMAC_SHA384 = "HMACSHA384"
    HMAC_SHA512 = "HMACSHA512"


@dataclasses.dataclass(frozen=True, kw_only=True)
class ACMEIngress(Model):
    """HTTP-01 through an Ingress that padlock creates for the challenge path."""

    ingress_class_name: str | None = spec_field(
        "IngressClass of the challenge Ingress. Defaults to the cluster's default class.",
        max_length=253,
    )
    service_type: ServiceType | None = spec_field(
        "Service type of the challenge solver: ClusterIP or NodePort. Defaults to NodePort."
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ACMEHTTP01(Model):
    """RFC 8555 §8.3 HTTP-01 challenge solving."""

    ingress: ACMEIngress = spec_field("Solve through an Ingress.", required=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ACMERFC2136(Model):
    """DNS-01 through RFC 2136 dynamic updates, signed with TSIG (RFC 8945)."""

    nameserver: str = spec_field(
        "Address of the authoritative DNS server, host or host:port (port 53 by default).",
        required=True,
        max_length=261,
    )
    tsig_key_name: str | None = spec_field("TSIG key name.", max_length=253)
    tsig_algorithm: TSIGAlgorithm | None = spec_field("TSIG algorithm. Defaults to HMACSHA256.")
    tsig_secret_secret_ref: SecretKeySelector | None = spec_field(
        "Secret key holding the base64-encoded TSIG secret."
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ACMEDNS01(Model):
    """RFC 8555 §8.4 DNS-01 challenge solving."""

    rfc2136: ACMERFC2136 = spec_field("Solve with RFC 2136 dynamic DNS updates.", required=True)


@dataclasses.dataclass(frozen=True, kw_only=True)
class ACMESolverSelector(Model):
    """Which Certificates a solver applies to. An empty selector matches all."""

    dns_names: tuple[str, ...] = list_field(
        "Exact DNS names this solver handles.", max_items=100, item_max_length=253
    )
    dns_zones: tuple[str, ...] = list_field(
        "DNS zones this solver handles (a name matches its zone and every subdomain).",
        max_items=100,
        item_max_length=253,
    )
    match_labels: dict[str, str] | None = spec_field(
        "Labels a Certificate must carry for this solver to apply."
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class ACMESolver(Model):
    """One way to answer ACME challenges: exactly one of http01 or dns01."""

    RULES = (
        Rule(
            rule="has(self.http01) != has(self.dns01)",
            message="a solver sets exactly one of http01 or dns01",
        ),
    )

    selector: ACMESolverSelector | None = spec_field(
        "Which Certificates this solver applies to. Absent: all of them."
    )
    http01: ACMEHTTP01 | None = spec_field("Answer HTTP-01 challenges.")
    dns01: ACMEDNS01 | None = spec_field("Answer DNS-01 challenges.")

    def check(self) -> None:
        if (self.http01 is None) == (self.dns01 is None):
            raise ValueError("a solver sets exactly one of http01 or dns01")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ACMEIssuer(Model):
    """Get certificates from an ACME server (RFC 8555)."""

    server: str = spec_field(
        "URL of the ACME server's directory (RFC 8555 §7.1.1), https only.",
        required=True,
        pattern=r"^https://",
        max_length=2048,
    )
    email: str | None = spec_field(
        "Contact e-mail registered with the ACME account.", format="email", max_length=254
    )
    private_key_secret_ref: SecretKeySelector = spec_field(
        "Secret that holds (or will hold, if absent) the ACME account's private key. "
        "Key defaults to tls.key.",
        required=True,
    )
    external_account_binding: ExternalAccountBinding | None = spec_field(
        "External account binding, when the ACME server requires one."
    )
    ca_bundle: str | None = spec_field(
        "Base64-encoded PEM bundle of CA certificates to trust for the ACME server's TLS. "
        "Defaults to the system trust store.",
        format="byte",
        max_length=262144,
    )
    solvers: tuple[ACMESolver, ...] = list_field(
        "How to answer challenges; the first whose selector matches a Certificate is used.",
        max_items=32,
    )


ISSUER_TYPES = ("ca", "selfSigned", "acme")


@dataclasses.dataclass(frozen=True, kw_only=True)
class IssuerSpec(Model):
    """Spec of an Issuer or ClusterIssuer: exactly one issuer type."""

    RULES = (
        Rule(
            rule="[has(self.ca), has(self.selfSigned), has(self.acme)].filter(x, x).size() == 1",
            message="exactly one of ca, selfSigned or acme must be set",
        ),
    )

    ca: CAIssuer | None = spec_field("Sign with padlock's in-cluster CA (key in the HSM).")
    self_signed: SelfSignedIssuer | None = spec_field(
        "Sign each certificate with its own private key."
    )
    acme: ACMEIssuer | None = spec_field("Get certificates from an ACME server (RFC 8555).")

    def check(self) -> None:
        present = [
            name
            for name, value in zip(
                ISSUER_TYPES, (self.ca, self.self_signed, self.acme), strict=True
            )
            if value is not None
        ]
        if len(present) != 1:
            found = ", ".join(present) if present else "none"
            raise ValueError(f"exactly one of ca, selfSigned or acme must be set (found: {found})")

    @property
    def type_name(self) -> str:
        """'ca', 'selfSigned' or 'acme'."""
        for name, value in zip(ISSUER_TYPES, (self.ca, self.self_signed, self.acme), strict=True):
            if value is not None:
                return name
        raise AssertionError("IssuerSpec.check guarantees one type")


@dataclasses.dataclass(frozen=True, kw_only=True)
class ACMEIssuerStatus(Model):
    """What padlock knows of the ACME account."""

    uri: str | None = spec_field("URL of the registered ACME account.", max_length=2048)
    last_registered_email: str | None = spec_field(
        "E-mail the account was last registered with.", max_length=254
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class IssuerStatus(Model):
    """Observed state of an Issuer or ClusterIssuer."""

    conditions: tuple[Condition, ...] = list_field(
        "Current conditions; Ready is True when the issuer can sign.",
        max_items=8,
        list_map_keys=("type",),
    )
    acme: ACMEIssuerStatus | None = spec_field("ACME account state (acme issuers only).")
