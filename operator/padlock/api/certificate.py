"""Certificate: the desired X.509 certificate and the Secret it is written to.

Called by the certificate controller (decode the spec, write the status), by the renewal
scheduler (`effective_duration`, `renew_before_for`), by `padlock.metrics` and by
`padlock.api.crdgen`. Field names follow cert-manager's `Certificate` (cert-manager.io/v1).
"""

# Fields are declared with padlock.api.fields.spec_field, a dataclasses.field wrapper.
# ruff: noqa: RUF009

from __future__ import annotations

import dataclasses
import datetime
import enum
import ipaddress
from typing import Any

from padlock.api import durations
from padlock.api.conditions import Condition
from padlock.api.fields import Rule, list_field, spec_field
from padlock.api.refs import (
    DNS_SUBDOMAIN_MAX,
    DNS_SUBDOMAIN_PATTERN,
    IssuerReference,
    SecretKeySelector,
)
from padlock.api.wire import Model

DEFAULT_DURATION = "2160h"  # 90 days, the CA/Browser Forum's 2026 ceiling for TLS
MINIMUM_DURATION = "1h"
DURATION_MAX_LENGTH = 64
# Default renewal point when neither renewBefore nor renewBeforePercentage is set: at 2/3 of
# the lifetime, as cert-manager does.
DEFAULT_RENEW_BEFORE_FRACTION = 1 / 3

# A DNS name, optionally with one leading wildcard label (RFC 6125 §6.4.3). Case-insensitive.
DNS_NAME_PATTERN = (
    r"^(\*\.)?([A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?\.)*[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?$"
)
# ISO 3166-1 alpha-2 country code (X.520 countryName is exactly two letters).
COUNTRY_PATTERN = r"^[A-Z]{2}$"
# RFC 5280 §4.1.2.2 serial numbers are at most 20 octets: hex, optionally colon-separated.
SERIAL_PATTERN = r"^([0-9A-Fa-f]{1,40}|[0-9A-Fa-f]{2}(:[0-9A-Fa-f]{2}){0,19})$"


class KeyAlgorithm(enum.StrEnum):
    RSA = "RSA"
    ECDSA = "ECDSA"
    ED25519 = "Ed25519"


class RotationPolicy(enum.StrEnum):
    ALWAYS = "Always"  # a new private key for every issuance
    NEVER = "Never"  # keep the key in the Secret, if any


class KeyEncoding(enum.StrEnum):
    PKCS1 = "PKCS1"  # RFC 8017 (RSA) / RFC 5915 (EC) "traditional" PEM
    PKCS8 = "PKCS8"  # RFC 5208 PrivateKeyInfo


# Key sizes the CA's policy accepts (see padlock.pki.algorithms): RSA bits, ECDSA curve bits.
RSA_SIZES = (2048, 3072, 4096)
ECDSA_SIZES = (256, 384)
DEFAULT_SIZES = {KeyAlgorithm.RSA: 2048, KeyAlgorithm.ECDSA: 256}


class KeyUsage(enum.StrEnum):
    """cert-manager's usage names: RFC 5280 §4.2.1.3 key usages and §4.2.1.12 extended ones."""

    SIGNING = "signing"
    DIGITAL_SIGNATURE = "digital signature"
    CONTENT_COMMITMENT = "content commitment"
    KEY_ENCIPHERMENT = "key encipherment"
    KEY_AGREEMENT = "key agreement"
    DATA_ENCIPHERMENT = "data encipherment"
    CERT_SIGN = "cert sign"
    CRL_SIGN = "crl sign"
    ENCIPHER_ONLY = "encipher only"
    DECIPHER_ONLY = "decipher only"
    ANY = "any"
    SERVER_AUTH = "server auth"
    CLIENT_AUTH = "client auth"
    CODE_SIGNING = "code signing"
    EMAIL_PROTECTION = "email protection"
    SMIME = "s/mime"
    IPSEC_END_SYSTEM = "ipsec end system"
    IPSEC_TUNNEL = "ipsec tunnel"
    IPSEC_USER = "ipsec user"
    TIMESTAMPING = "timestamping"
    OCSP_SIGNING = "ocsp signing"
    MICROSOFT_SGC = "microsoft sgc"
    NETSCAPE_SGC = "netscape sgc"


DEFAULT_USAGES = (KeyUsage.DIGITAL_SIGNATURE, KeyUsage.KEY_ENCIPHERMENT)


def _names(description: str) -> Any:
    """A list of subject attribute values."""
    return list_field(description, max_items=100, item_max_length=253)


@dataclasses.dataclass(frozen=True, kw_only=True)
class X509Subject(Model):
    """Subject distinguished name attributes (RFC 5280 §4.1.2.6, X.520 names)."""

    organizations: tuple[str, ...] = _names("Organization (O).")
    organizational_units: tuple[str, ...] = _names("Organizational unit (OU).")
    countries: tuple[str, ...] = list_field(
        "Country (C), two-letter ISO 3166-1 code.",
        max_items=10,
        item_pattern=COUNTRY_PATTERN,
        item_max_length=2,
    )
    localities: tuple[str, ...] = _names("Locality (L).")
    provinces: tuple[str, ...] = _names("State or province (ST).")
    street_addresses: tuple[str, ...] = _names("Street address.")
    postal_codes: tuple[str, ...] = _names("Postal code.")
    serial_number: str | None = spec_field(
        "Subject serialNumber attribute (X.520), not the certificate's serial.", max_length=64
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class PrivateKey(Model):
    """The private key padlock generates (never logged, never sent to the CA)."""

    RULES = (
        Rule(
            rule="!has(self.size) || !has(self.algorithm) || self.algorithm != 'RSA' "
            "|| self.size in [2048, 3072, 4096]",
            message="RSA keys must be 2048, 3072 or 4096 bits",
            field_path=".size",
        ),
        Rule(
            rule="!has(self.size) || (has(self.algorithm) && self.algorithm == 'RSA') "
            "|| (has(self.algorithm) && self.algorithm == 'Ed25519') || self.size in [256, 384]",
            message="ECDSA keys must be size 256 (P-256) or 384 (P-384)",
            field_path=".size",
        ),
        Rule(
            rule="!has(self.size) || !has(self.algorithm) || self.algorithm != 'Ed25519'",
            message="Ed25519 keys have a fixed size: leave size unset",
            field_path=".size",
        ),
    )

    algorithm: KeyAlgorithm | None = spec_field(
        "Key algorithm: ECDSA, RSA or Ed25519. Defaults to ECDSA.",
        default=KeyAlgorithm.ECDSA.value,
    )
    size: int | None = spec_field(
        "Key size: RSA 2048 (default), 3072 or 4096 bits; ECDSA 256 (P-256, default) or 384 "
        "(P-384); unset for Ed25519.",
        minimum=256,
        maximum=8192,
    )
    rotation_policy: RotationPolicy | None = spec_field(
        "Always: a new key for every issuance (default). Never: reuse the key in the Secret.",
        default=RotationPolicy.ALWAYS.value,
    )
    encoding: KeyEncoding | None = spec_field(
        "PEM encoding of tls.key: PKCS1 (default; SEC 1 for ECDSA) or PKCS8. Ed25519 is "
        "always PKCS8.",
        default=KeyEncoding.PKCS1.value,
    )

    def check(self) -> None:
        algorithm = self.effective_algorithm
        if self.size is None:
            return
        if algorithm is KeyAlgorithm.RSA and self.size not in RSA_SIZES:
            raise ValueError("RSA keys must be 2048, 3072 or 4096 bits")
        if algorithm is KeyAlgorithm.ECDSA and self.size not in ECDSA_SIZES:
            raise ValueError("ECDSA keys must be size 256 (P-256) or 384 (P-384)")
        if algorithm is KeyAlgorithm.ED25519:
            raise ValueError("Ed25519 keys have a fixed size: leave size unset")

    @property
    def effective_algorithm(self) -> KeyAlgorithm:
        return self.algorithm or KeyAlgorithm.ECDSA

    @property
    def effective_size(self) -> int | None:
        """Bits for RSA, curve bits for ECDSA, None for Ed25519."""
        return self.size or DEFAULT_SIZES.get(self.effective_algorithm)

    @property
    def effective_rotation_policy(self) -> RotationPolicy:
        return self.rotation_policy or RotationPolicy.ALWAYS

    @property
    def effective_encoding(self) -> KeyEncoding:
        return self.encoding or KeyEncoding.PKCS1


@dataclasses.dataclass(frozen=True, kw_only=True)
class SecretTemplate(Model):
    """Labels and annotations copied onto the Secret padlock writes."""

    labels: dict[str, str] | None = spec_field("Labels to add to the Secret.")
    annotations: dict[str, str] | None = spec_field("Annotations to add to the Secret.")


@dataclasses.dataclass(frozen=True, kw_only=True)
class PKCS12Keystore(Model):
    """A PKCS#12 file (RFC 7292) `keystore.p12` with key and chain, and `truststore.p12`."""

    create: bool = spec_field(
        "Write keystore.p12 and truststore.p12 into the Secret.", required=True
    )
    password_secret_ref: SecretKeySelector = spec_field(
        "Secret key holding the password that encrypts the keystore.", required=True
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class JKSKeystore(Model):
    """A Java KeyStore `keystore.jks` with key and chain, and `truststore.jks`."""

    create: bool = spec_field(
        "Write keystore.jks and truststore.jks into the Secret.", required=True
    )
    password_secret_ref: SecretKeySelector = spec_field(
        "Secret key holding the keystore password.", required=True
    )
    alias: str | None = spec_field(
        "Alias of the key entry. Defaults to certificate.", max_length=253
    )


@dataclasses.dataclass(frozen=True, kw_only=True)
class Keystores(Model):
    """Extra keystore formats written next to tls.crt and tls.key."""

    pkcs12: PKCS12Keystore | None = spec_field("PKCS#12 keystore.")
    jks: JKSKeystore | None = spec_field("Java KeyStore.")


_DURATION_OF_SELF = f"duration(has(self.duration) ? self.duration : '{DEFAULT_DURATION}')"
# CEL's duration() fails on a malformed string; the field's pattern already reports that, so
# the rules skip malformed values instead of adding a second, cryptic error.
_MALFORMED = "!self.{0}.matches('" + durations.PATTERN + "')"


@dataclasses.dataclass(frozen=True, kw_only=True)
class CertificateSpec(Model):
    """Desired state: what the certificate says, who signs it, where it goes."""

    RULES = (
        Rule(
            rule="!(has(self.renewBefore) && has(self.renewBeforePercentage))",
            message="set at most one of renewBefore and renewBeforePercentage",
        ),
        Rule(
            rule="!has(self.renewBefore) || "
            + _MALFORMED.format("renewBefore")
            + " || (has(self.duration) && "
            + _MALFORMED.format("duration")
            + f") || duration(self.renewBefore) < {_DURATION_OF_SELF}",
            message=f"renewBefore must be shorter than duration (default {DEFAULT_DURATION})",
            field_path=".renewBefore",
        ),
        Rule(
            rule="!has(self.duration) || "
            + _MALFORMED.format("duration")
            + f" || duration(self.duration) >= duration('{MINIMUM_DURATION}')",
            message=f"duration must be at least {MINIMUM_DURATION}",
            field_path=".duration",
        ),
        Rule(
            rule="has(self.commonName) || "
            + " || ".join(
                f"(has(self.{f}) && size(self.{f}) > 0)"
                for f in ("dnsNames", "ipAddresses", "uris", "emailAddresses")
            ),
            message="set at least one of commonName, dnsNames, ipAddresses, uris or emailAddresses",
        ),
    )

    secret_name: str = spec_field(
        "Name of the kubernetes.io/tls Secret (same namespace) that receives tls.crt "
        "(leaf and chain), tls.key and ca.crt.",
        required=True,
        pattern=DNS_SUBDOMAIN_PATTERN,
        max_length=DNS_SUBDOMAIN_MAX,
    )
    issuer_ref: IssuerReference = spec_field(
        "The Issuer or ClusterIssuer that signs this certificate.", required=True
    )
    common_name: str | None = spec_field(
        "Subject common name (CN). Deprecated for TLS by RFC 6125; prefer dnsNames. At most "
        "64 characters (RFC 5280 ub-common-name).",
        max_length=64,
    )
    dns_names: tuple[str, ...] = list_field(
        "DNS subjectAltNames (RFC 5280 §4.2.1.6); a leading '*.' makes a wildcard.",
        max_items=100,
        item_pattern=DNS_NAME_PATTERN,
        item_max_length=253,
        list_set=True,
    )
    ip_addresses: tuple[str, ...] = list_field(
        "IP address subjectAltNames, IPv4 or IPv6.",
        max_items=100,
        item_max_length=45,
        item_rules=(Rule(rule="isIP(self)", message="must be an IPv4 or IPv6 address"),),
        list_set=True,
    )
    uris: tuple[str, ...] = list_field(
        "URI subjectAltNames, e.g. SPIFFE IDs (spiffe://trust-domain/path).",
        max_items=100,
        item_format="uri",
        item_max_length=2048,
        list_set=True,
    )
    email_addresses: tuple[str, ...] = list_field(
        "E-mail subjectAltNames (rfc822Name).",
        max_items=100,
        item_format="email",
        item_max_length=254,
        list_set=True,
    )
    subject: X509Subject | None = spec_field("Further subject distinguished name attributes.")
    duration: str | None = spec_field(
        f"Requested lifetime as a Go duration (e.g. 2160h, 720h, 1h30m); at least "
        f"{MINIMUM_DURATION}. The issuer may cap it. Defaults to {DEFAULT_DURATION} (90 days).",
        default=DEFAULT_DURATION,
        pattern=durations.PATTERN,
        max_length=DURATION_MAX_LENGTH,
    )
    renew_before: str | None = spec_field(
        "Renew this long before notAfter, as a Go duration; shorter than duration. Not with "
        "renewBeforePercentage. Default: renew at 2/3 of the lifetime.",
        pattern=durations.PATTERN,
        max_length=DURATION_MAX_LENGTH,
    )
    renew_before_percentage: int | None = spec_field(
        "Renew when this percentage of the lifetime remains (1-99). Not with renewBefore.",
        minimum=1,
        maximum=99,
    )
    private_key: PrivateKey | None = spec_field(
        "Private key settings. Defaults to a new ECDSA P-256 key per issuance."
    )
    usages: tuple[KeyUsage, ...] = list_field(
        "Key usages and extended key usages (cert-manager names). Defaults to digital "
        "signature and key encipherment; the issuer's profile may add server/client auth.",
        max_items=24,
        list_set=True,
    )
    is_ca: bool | None = spec_field(
        "Ask for a CA certificate (basicConstraints cA=TRUE, RFC 5280 §4.2.1.9). The issuer "
        "may refuse.",
        wire="isCA",
    )
    secret_template: SecretTemplate | None = spec_field(
        "Labels and annotations to put on the Secret."
    )
    keystores: Keystores | None = spec_field("Extra keystore formats in the Secret.")
    revision_history_limit: int | None = spec_field(
        "How many past issuance records to keep. Unset keeps all.", minimum=1
    )

    def check(self) -> None:
        for address in self.ip_addresses:
            try:
                ipaddress.ip_address(address)
            except ValueError:
                raise ValueError(
                    f"ipAddresses: {address!r} must be an IPv4 or IPv6 address"
                ) from None
        for text in (self.duration, self.renew_before):
            if text is not None:
                durations.parse(text)
        if self.renew_before is not None and self.renew_before_percentage is not None:
            raise ValueError("set at most one of renewBefore and renewBeforePercentage")
        if self.renew_before is not None and durations.parse(self.renew_before) >= (
            self.effective_duration
        ):
            raise ValueError(
                f"renewBefore must be shorter than duration (default {DEFAULT_DURATION})"
            )
        if self.effective_duration < durations.parse(MINIMUM_DURATION):
            raise ValueError(f"duration must be at least {MINIMUM_DURATION}")
        if not (
            self.common_name
            or self.dns_names
            or self.ip_addresses
            or self.uris
            or self.email_addresses
        ):
            raise ValueError(
                "set at least one of commonName, dnsNames, ipAddresses, uris or emailAddresses"
            )

    @property
    def effective_duration(self) -> datetime.timedelta:
        """The requested lifetime, the default applied."""
        return durations.parse(self.duration or DEFAULT_DURATION)

    def renew_before_for(self, lifetime: datetime.timedelta) -> datetime.timedelta:
        """How long before notAfter to renew a certificate whose real lifetime is `lifetime`.

        The issuer may grant less than `duration`; renewBefore is then capped to the lifetime
        (as cert-manager does) so a renewal is never scheduled before notBefore.
        """
        if self.renew_before is not None:
            return min(durations.parse(self.renew_before), lifetime)
        if self.renew_before_percentage is not None:
            return lifetime * self.renew_before_percentage / 100
        return lifetime * DEFAULT_RENEW_BEFORE_FRACTION

    @property
    def effective_private_key(self) -> PrivateKey:
        return self.private_key or PrivateKey()

    @property
    def effective_usages(self) -> tuple[KeyUsage, ...]:
        return self.usages or DEFAULT_USAGES


@dataclasses.dataclass(frozen=True, kw_only=True)
class CertificateStatus(Model):
    """Observed state: the certificate in the Secret and the issuance progress."""

    conditions: tuple[Condition, ...] = list_field(
        "Current conditions: Ready (the Secret is valid and current), Issuing (an issuance "
        "is in progress).",
        max_items=8,
        list_map_keys=("type",),
    )
    not_before: datetime.datetime | None = spec_field(
        "notBefore of the certificate in the Secret (RFC 3339).", format="date-time"
    )
    not_after: datetime.datetime | None = spec_field(
        "notAfter (expiry) of the certificate in the Secret (RFC 3339).", format="date-time"
    )
    renewal_time: datetime.datetime | None = spec_field(
        "When padlock will renew: notAfter minus renewBefore, minus a per-object jitter.",
        format="date-time",
    )
    revision: int | None = spec_field(
        "Issuance counter: 1 for the first certificate, +1 for each re-issuance.", minimum=1
    )
    serial_number: str | None = spec_field(
        "Serial number of the certificate in the Secret, lowercase hex.",
        pattern=SERIAL_PATTERN,
    )
    last_failure_time: datetime.datetime | None = spec_field(
        "When the last issuance attempt failed (RFC 3339).", format="date-time"
    )
    failed_issuance_attempts: int | None = spec_field(
        "Consecutive failed issuance attempts; drives the retry back-off. Reset on success.",
        minimum=0,
    )
