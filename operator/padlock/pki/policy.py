"""Issuance policy: who may get which certificate. Kept apart from signing (`profiles`).

Called by the CA pipeline for every `POST /v1/sign` and ACME finalize, before a serial is
drawn or the HSM is touched. `check_request` returns an `Approved` request holding exactly
what `padlock.pki.profiles.build_certificate` needs, or raises `PolicyError` with a stable
code and an exact message.

Name permissions follow RFC 5280 §4.2.1.10 name-constraints semantics: an empty permitted
list for a name type leaves that type unconstrained; excluded entries win over permitted ones.
"""

from __future__ import annotations

import dataclasses
import datetime
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import TypeVar

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import NameOID

from padlock.pki import csr as csr_checks
from padlock.pki import names as name_syntax
from padlock.pki import profiles
from padlock.pki.algorithms import KeyAlgorithm
from padlock.pki.errors import Code, PolicyError
from padlock.pki.names import RequestedNames, ValidNames

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

MAX_COMMON_NAME = 64
"""RFC 5280 Appendix A: ub-common-name INTEGER ::= 64."""

_LEAF_PROFILES = frozenset({"tls-server", "tls-client", "svid", "ocsp-responder"})


@dataclasses.dataclass(frozen=True)
class IssuancePolicy:
    """What one issuer will sign. The defaults are a sane private CA with no name limits."""

    max_lifetime: datetime.timedelta = datetime.timedelta(days=397)
    """Upper bound on notAfter - notBefore, on top of each profile's own maximum."""
    allowed_profiles: frozenset[str] = _LEAF_PROFILES
    allowed_key_algorithms: frozenset[KeyAlgorithm] = frozenset(KeyAlgorithm)
    permitted_dns_domains: tuple[str, ...] = ()
    """RFC 5280 §4.2.1.10 dNSName subtrees: "example.com" permits it and every name under it;
    ".example.com" only names under it."""
    excluded_dns_domains: tuple[str, ...] = ()
    permitted_ip_networks: tuple[IPNetwork, ...] = ()
    excluded_ip_networks: tuple[IPNetwork, ...] = ()
    permitted_uri_prefixes: tuple[str, ...] = ()
    """e.g. "spiffe://cluster.local" (a whole trust domain) or "spiffe://td/ns/payments/".
    A prefix not ending in "/" matches only at a path boundary, so "spiffe://td" does not
    permit "spiffe://td.evil/x"."""
    excluded_uri_prefixes: tuple[str, ...] = ()
    permitted_email_domains: tuple[str, ...] = ()
    """RFC 5280 §4.2.1.10 rfc822Name: "a@example.com" one mailbox, "example.com" any mailbox
    at that host, ".example.com" any mailbox at a host under it."""
    excluded_email_domains: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        unknown = self.allowed_profiles - set(profiles.PROFILES)
        if unknown:
            raise ValueError(f"unknown profiles in policy: {', '.join(sorted(unknown))}")
        if self.max_lifetime <= datetime.timedelta(0):
            raise ValueError("policy max_lifetime must be positive")
        for domain in (*self.permitted_dns_domains, *self.excluded_dns_domains):
            if not _is_normal_domain(domain.removeprefix(".")):
                raise ValueError(
                    f"DNS constraint {domain!r} must be a lower-case A-label domain, no wildcard"
                )
        for email in (*self.permitted_email_domains, *self.excluded_email_domains):
            domain = email.rpartition("@")[2].removeprefix(".")
            if not _is_normal_domain(domain):
                raise ValueError(
                    f"email constraint {email!r} must name a lower-case A-label domain"
                )


def _is_normal_domain(domain: str) -> bool:
    """Whether `domain` is already in the form names are compared in (so matching is exact)."""
    if "*" in domain:
        return False
    try:
        return name_syntax.normalize_dns_name(domain) == domain
    except PolicyError:
        return False


@dataclasses.dataclass(frozen=True)
class IssuanceRequest:
    """One request to sign: the CSR plus what the Certificate spec (or ACME order) asks for.

    Names from the CSR's SAN extension and the request fields are merged; the operator puts
    its names in the CSR and may leave these fields empty.
    """

    csr: x509.CertificateSigningRequest
    profile: str
    not_before: datetime.datetime
    not_after: datetime.datetime
    common_name: str | None = None
    subject_attributes: tuple[x509.NameAttribute[str], ...] = ()
    """Extra subject DN attributes (O, OU, ...) from the spec's `subject`, before the CN."""
    names: RequestedNames = dataclasses.field(default_factory=RequestedNames)
    issuer_not_after: datetime.datetime | None = None
    """The issuing CA certificate's notAfter: a leaf must not outlive its issuer."""


@dataclasses.dataclass(frozen=True)
class Approved:
    """A request that passed every check; the inputs of `profiles.build_certificate`."""

    profile: profiles.Profile
    subject: x509.Name
    public_key: CertificatePublicKeyTypes
    key_algorithm: KeyAlgorithm
    names: ValidNames
    not_before: datetime.datetime
    not_after: datetime.datetime

    @property
    def sans(self) -> tuple[x509.GeneralName, ...]:
        return self.names.general_names()


def check_request(request: IssuanceRequest, policy: IssuancePolicy) -> Approved:
    """Run every check in a fixed order; the first failure raises `PolicyError`."""
    if request.profile not in policy.allowed_profiles:
        raise PolicyError(
            Code.PROFILE_NOT_ALLOWED,
            f"profile {request.profile!r} is not allowed by this issuer "
            f"(allowed: {', '.join(sorted(policy.allowed_profiles))})",
        )
    profile = profiles.get_profile(request.profile)
    public_key, key_algorithm = csr_checks.checked_key(request.csr)
    if key_algorithm not in policy.allowed_key_algorithms:
        raise PolicyError(
            Code.KEY_NOT_ALLOWED,
            f"key algorithm {key_algorithm.value} is not allowed by this issuer",
        )
    valid = name_syntax.validate(csr_checks.requested_names(request.csr) + request.names)
    if profile.requires_san and not valid:
        raise PolicyError(
            Code.NO_SAN,
            "the request names no subjectAltName: put DNS names, IP addresses, URIs or email "
            "addresses in the CSR or the request",
        )
    if profile.exactly_one_uri_san:
        _check_svid_names(valid)
    subject = _subject(request, profile, valid)
    _check_lifetime(request, profile, policy)
    _check_permitted(valid, policy)
    return Approved(
        profile=profile,
        subject=subject,
        public_key=public_key,
        key_algorithm=key_algorithm,
        names=valid,
        not_before=request.not_before,
        not_after=request.not_after,
    )


def _check_svid_names(valid: ValidNames) -> None:
    # SPIFFE X.509-SVID §2: exactly one URI SAN, the SPIFFE ID; other SAN types MAY appear.
    if len(valid.uris) != 1 or not valid.uris[0].startswith("spiffe://"):
        raise PolicyError(
            Code.SVID_NEEDS_ONE_URI,
            f"an X.509-SVID needs exactly one URI SAN and it must be a spiffe:// ID, "
            f"got {list(valid.uris)}",
        )


def _subject(request: IssuanceRequest, profile: profiles.Profile, valid: ValidNames) -> x509.Name:
    attributes = list(request.subject_attributes)
    cn = request.common_name
    if cn is not None:
        if not cn or len(cn) > MAX_COMMON_NAME:
            raise PolicyError(
                Code.INVALID_COMMON_NAME,
                f"commonName must be 1 to {MAX_COMMON_NAME} characters, got {len(cn)}",
            )
        if profile is profiles.TLS_SERVER and not _cn_in_sans(cn, valid):
            # CABF BR §7.1.4.3: a subscriber CN MUST repeat one of the SAN entries.
            raise PolicyError(
                Code.COMMON_NAME_NOT_IN_SAN,
                f"commonName {cn!r} must also be one of the DNS or IP subjectAltNames",
            )
        attributes.append(x509.NameAttribute(NameOID.COMMON_NAME, cn))
    if not profile.requires_san and not attributes and not valid:
        raise PolicyError(
            Code.INVALID_COMMON_NAME,
            f"profile {profile.name} needs a commonName or subject when it has no SAN",
        )
    return x509.Name(attributes)


def _cn_in_sans(cn: str, valid: ValidNames) -> bool:
    try:
        return name_syntax.normalize_ip(cn) in valid.ip_addresses
    except PolicyError:
        pass
    try:
        return name_syntax.normalize_dns_name(cn) in valid.dns_names
    except PolicyError:
        return False


def _check_lifetime(
    request: IssuanceRequest, profile: profiles.Profile, policy: IssuancePolicy
) -> None:
    if request.not_before.tzinfo is None or request.not_after.tzinfo is None:
        raise PolicyError(Code.INVALID_LIFETIME, "notBefore and notAfter must carry a timezone")
    lifetime = request.not_after - request.not_before
    if lifetime <= datetime.timedelta(0):
        raise PolicyError(
            Code.INVALID_LIFETIME,
            f"notAfter {request.not_after.isoformat()} is not after notBefore "
            f"{request.not_before.isoformat()}",
        )
    limit, source = profile.max_lifetime, f"profile {profile.name}"
    if policy.max_lifetime < limit:
        limit, source = policy.max_lifetime, "issuer policy"
    if lifetime > limit:
        raise PolicyError(
            Code.LIFETIME_TOO_LONG,
            f"requested lifetime {_hours(lifetime)} exceeds the {source} maximum {_hours(limit)}",
        )
    if request.issuer_not_after is not None and request.not_after > request.issuer_not_after:
        # RFC 5280 §6.1.3 (a)(2): the chain is only valid while every certificate is.
        raise PolicyError(
            Code.LIFETIME_EXCEEDS_ISSUER,
            f"notAfter {request.not_after.isoformat()} is after the issuer's notAfter "
            f"{request.issuer_not_after.isoformat()}",
        )


def _hours(delta: datetime.timedelta) -> str:
    """Durations in the Go/cert-manager spelling users write in `duration:` (e.g. 2160h)."""
    seconds = int(delta.total_seconds())
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h" + (f"{minutes}m" if minutes or secs else "") + (f"{secs}s" if secs else "")


def _dns_matches(name: str, constraint: str) -> bool:
    # RFC 5280 §4.2.1.10: adding labels on the left of the constraint satisfies it.
    if constraint.startswith("."):
        return name.endswith(constraint)
    return name == constraint or name.endswith("." + constraint)


def _wildcard_covers(name: str, excluded: str) -> bool:
    """Whether wildcard `name` ("*.d") could stand for a name under `excluded`."""
    if not name.startswith("*."):
        return False
    base = name[2:]
    return excluded.lstrip(".").endswith("." + base)


def _uri_matches(uri: str, prefix: str) -> bool:
    if prefix.endswith("/"):
        return uri.startswith(prefix)
    return uri == prefix or uri.startswith(prefix + "/")


def _email_matches(address: str, constraint: str) -> bool:
    if "@" in constraint:
        return address == constraint
    return _dns_matches(address.rpartition("@")[2], constraint)


_V = TypeVar("_V")
_C = TypeVar("_C")


def _check_family(
    what: str,
    values: Iterable[_V],
    excluded: Sequence[_C],
    permitted: Sequence[_C],
    excludes: Callable[[_V, _C], bool],
    permits: Callable[[_V, _C], bool],
    outside: str,
    show: Callable[[object], str] = repr,
) -> None:
    """Refuse the first value an excluded constraint matches, or that no permitted one does."""
    for value in values:
        for constraint in excluded:
            if excludes(value, constraint):
                raise PolicyError(
                    Code.NAME_EXCLUDED,
                    f"{what} {show(value)} is excluded by {show(constraint)}",
                )
        if permitted and not any(permits(value, c) for c in permitted):
            raise PolicyError(
                Code.NAME_NOT_PERMITTED,
                f"{what} {show(value)} is not {outside} ({', '.join(str(c) for c in permitted)})",
            )


def _check_permitted(valid: ValidNames, policy: IssuancePolicy) -> None:
    _check_family(
        "DNS name",
        valid.dns_names,
        policy.excluded_dns_domains,
        policy.permitted_dns_domains,
        lambda dns, c: _dns_matches(dns, c) or _wildcard_covers(dns, c),
        _dns_matches,
        "under a permitted domain",
    )
    _check_family(
        "IP address",
        valid.ip_addresses,
        policy.excluded_ip_networks,
        policy.permitted_ip_networks,
        lambda ip, network: ip in network,
        lambda ip, network: ip in network,
        "in a permitted network",
        show=str,
    )
    _check_family(
        "URI",
        valid.uris,
        policy.excluded_uri_prefixes,
        policy.permitted_uri_prefixes,
        _uri_matches,
        _uri_matches,
        "under a permitted prefix",
    )
    _check_family(
        "email address",
        valid.email_addresses,
        policy.excluded_email_domains,
        policy.permitted_email_domains,
        _email_matches,
        _email_matches,
        "in a permitted domain",
    )
