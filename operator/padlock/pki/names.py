"""Syntax of subjectAltNames: DNS names (with IDNA), IP addresses, URIs, emails, SPIFFE IDs.

Called by `padlock.pki.policy` for every name of a request (from the CSR and from the
Certificate spec) before any permission check, so permission checks compare normalised names
only. Each `normalize_*` returns the form that goes into the certificate or raises
`PolicyError` with an exact message naming the offending value.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import re
import typing
import urllib.parse

import idna
from cryptography import x509

from padlock.pki.errors import Code, PolicyError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
_T = typing.TypeVar("_T")

MAX_DNS_NAME = 253
"""RFC 1035 §2.3.4: 255 octets on the wire, i.e. 253 characters in text form."""
MAX_DNS_LABEL = 63
"""RFC 1035 §2.3.4."""
MAX_TRUST_DOMAIN = 255
"""SPIFFE ID spec §2.1: trust domain names are at most 255 characters."""
MAX_SPIFFE_ID = 2048
"""SPIFFE ID spec §2.3: implementations MUST support IDs up to 2048 bytes (and may refuse more)."""

# RFC 1035 §2.3.1 / RFC 5890 §2.3.1: letters, digits, hyphen; no hyphen at either end.
_LDH_LABEL = re.compile(r"[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?")
# RFC 3986 §3.1.
_URI_SCHEME = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*")
# RFC 5322 §3.2.3 dot-atom-text: the only local part RFC 5280 §4.2.1.6 rfc822Name can carry.
_EMAIL_LOCAL = re.compile(r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(?:\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*")
# SPIFFE ID spec §2.1 (trust domain) and §2.2 (path segment).
_SPIFFE_TRUST_DOMAIN = re.compile(r"[a-z0-9._-]+")
_SPIFFE_SEGMENT = re.compile(r"[A-Za-z0-9._-]+")


@dataclasses.dataclass(frozen=True)
class RequestedNames:
    """Names as text, before validation: from a CSR's SAN extension or a Certificate spec."""

    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()
    email_addresses: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dns_names or self.ip_addresses or self.uris or self.email_addresses)

    def __add__(self, other: RequestedNames) -> RequestedNames:
        return RequestedNames(
            self.dns_names + other.dns_names,
            self.ip_addresses + other.ip_addresses,
            self.uris + other.uris,
            self.email_addresses + other.email_addresses,
        )


@dataclasses.dataclass(frozen=True)
class ValidNames:
    """Normalised, de-duplicated names, in request order; what the certificate will carry."""

    dns_names: tuple[str, ...] = ()
    ip_addresses: tuple[IPAddress, ...] = ()
    uris: tuple[str, ...] = ()
    email_addresses: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.dns_names or self.ip_addresses or self.uris or self.email_addresses)

    def general_names(self) -> tuple[x509.GeneralName, ...]:
        """The subjectAltName entries (RFC 5280 §4.2.1.6), DNS first, as cert-manager orders."""
        return (
            *(x509.DNSName(n) for n in self.dns_names),
            *(x509.IPAddress(a) for a in self.ip_addresses),
            *(x509.UniformResourceIdentifier(u) for u in self.uris),
            *(x509.RFC822Name(e) for e in self.email_addresses),
        )


def _dedupe(items: list[_T]) -> tuple[_T, ...]:
    return tuple(dict.fromkeys(items))


def validate(names: RequestedNames) -> ValidNames:
    """Normalise every name; the first bad one raises `PolicyError`."""
    return ValidNames(
        dns_names=_dedupe([normalize_dns_name(n) for n in names.dns_names]),
        ip_addresses=_dedupe([normalize_ip(a) for a in names.ip_addresses]),
        uris=_dedupe([normalize_uri(u) for u in names.uris]),
        email_addresses=_dedupe([normalize_email(e) for e in names.email_addresses]),
    )


def from_general_names(general_names: list[x509.GeneralName]) -> RequestedNames:
    """Text form of SAN entries (e.g. a CSR's extensionRequest); other name types refused."""
    dns: list[str] = []
    ips: list[str] = []
    uris: list[str] = []
    emails: list[str] = []
    for gn in general_names:
        if isinstance(gn, x509.DNSName):
            dns.append(gn.value)
        elif isinstance(gn, x509.IPAddress):
            if not isinstance(gn.value, ipaddress.IPv4Address | ipaddress.IPv6Address):
                # A network in iPAddress is only meaningful in name constraints (RFC 5280
                # §4.2.1.10), never in a subjectAltName (§4.2.1.6).
                raise PolicyError(
                    Code.INVALID_IP, f"subjectAltName IP {gn.value} is a network, not an address"
                )
            ips.append(str(gn.value))
        elif isinstance(gn, x509.UniformResourceIdentifier):
            uris.append(gn.value)
        elif isinstance(gn, x509.RFC822Name):
            emails.append(gn.value)
        else:
            raise PolicyError(
                Code.UNSUPPORTED_SAN,
                f"subjectAltName type {type(gn).__name__} is not supported "
                "(use DNS names, IP addresses, URIs or email addresses)",
            )
    return RequestedNames(tuple(dns), tuple(ips), tuple(uris), tuple(emails))


def _a_label(label: str, name: str) -> str:
    """One label in A-label form (RFC 5890 §2.3.2.1), validating IDNA both ways."""
    if label.startswith("xn--"):
        # An A-label must decode to a valid U-label and re-encode to itself (RFC 5891 §5.4).
        try:
            if idna.encode(idna.decode(label)).decode("ascii") != label:
                raise idna.IDNAError("does not round-trip")
        except (idna.IDNAError, UnicodeError) as exc:
            raise PolicyError(
                Code.INVALID_IDNA,
                f"DNS name {name!r}: label {label!r} is not a valid IDNA A-label ({exc})",
            ) from None
        return label
    if label.isascii():
        return label
    try:
        # UTS #46 mapping (case folding etc.) then IDNA2008 encoding, as browsers do.
        return idna.encode(label, uts46=True).decode("ascii")
    except (idna.IDNAError, UnicodeError) as exc:
        raise PolicyError(
            Code.INVALID_IDNA,
            f"DNS name {name!r}: label {label!r} cannot be converted to IDNA ({exc})",
        ) from None


def _is_ip(text: str) -> bool:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        return False
    return True


def normalize_dns_name(name: str) -> str:
    """Lower-case A-label form of a dNSName (RFC 5280 §4.2.1.6, RFC 1034 §3.5 preferred syntax).

    A wildcard is allowed only as the whole leftmost label (CABF BR §7.1.4.2.2 / RFC 6125
    §6.4.3 as relying parties implement it) and needs two more labels under it.
    """
    if not name:
        raise PolicyError(Code.INVALID_DNS_NAME, "DNS name is empty")
    if name.endswith("."):
        raise PolicyError(
            Code.INVALID_DNS_NAME, f"DNS name {name!r} must not end with a dot (RFC 5280 §4.2.1.6)"
        )
    wildcard = name.startswith("*.")
    base = name[2:] if wildcard else name
    if "*" in base:
        raise PolicyError(
            Code.INVALID_WILDCARD,
            f"DNS name {name!r}: a wildcard is allowed only as the whole leftmost label",
        )
    if _is_ip(base):
        if wildcard:
            raise PolicyError(
                Code.INVALID_WILDCARD, f"DNS name {name!r}: wildcards are not allowed for IPs"
            )
        raise PolicyError(
            Code.INVALID_DNS_NAME,
            f"DNS name {name!r} is an IP address: put it in ipAddresses",
        )
    labels = [_a_label(label, name) for label in base.lower().split(".")]
    for label in labels:
        if not label:
            raise PolicyError(Code.INVALID_DNS_NAME, f"DNS name {name!r} has an empty label")
        if len(label) > MAX_DNS_LABEL:
            raise PolicyError(
                Code.INVALID_DNS_NAME,
                f"DNS name {name!r}: label {label[:20]!r}... is {len(label)} characters, "
                f"more than {MAX_DNS_LABEL}",
            )
        if not _LDH_LABEL.fullmatch(label):
            raise PolicyError(
                Code.INVALID_DNS_NAME,
                f"DNS name {name!r}: label {label!r} is not letters, digits and inner hyphens",
            )
        if label[2:4] == "--" and not label.startswith("xn--"):
            # RFC 5891 §4.2.3.1: hyphens in positions 3 and 4 are reserved for A-labels.
            raise PolicyError(
                Code.INVALID_DNS_NAME,
                f"DNS name {name!r}: label {label!r} has '--' in positions 3-4 (RFC 5891 §4.2.3.1)",
            )
    if wildcard and len(labels) < 2:
        raise PolicyError(
            Code.INVALID_WILDCARD,
            f"DNS name {name!r}: a wildcard must be followed by at least two labels",
        )
    result = ".".join(["*", *labels] if wildcard else labels)
    if len(result) > MAX_DNS_NAME:
        raise PolicyError(
            Code.INVALID_DNS_NAME,
            f"DNS name {name[:40]!r}... is {len(result)} characters, more than {MAX_DNS_NAME}",
        )
    return result


def normalize_ip(text: str) -> IPAddress:
    """An iPAddress SAN (RFC 5280 §4.2.1.6): one IPv4 or IPv6 address, no zone, no network."""
    if "*" in text:
        raise PolicyError(
            Code.INVALID_WILDCARD, f"IP address {text!r}: wildcards are not allowed for IPs"
        )
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        raise PolicyError(Code.INVALID_IP, f"{text!r} is not an IPv4 or IPv6 address") from None
    if isinstance(address, ipaddress.IPv6Address) and address.scope_id:
        raise PolicyError(Code.INVALID_IP, f"IP address {text!r} must not carry a zone (%...)")
    return address


def normalize_uri(uri: str) -> str:
    """A uniformResourceIdentifier SAN: absolute, with a scheme (RFC 5280 §4.2.1.6), ASCII
    (IA5String), no wildcard; `spiffe:` URIs must also be valid SPIFFE IDs."""
    if not uri.isascii() or any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F for c in uri):
        raise PolicyError(
            Code.INVALID_URI, f"URI {uri!r} must be ASCII without spaces or control characters"
        )
    scheme, sep, rest = uri.partition(":")
    if not sep or not _URI_SCHEME.fullmatch(scheme) or not rest:
        raise PolicyError(
            Code.INVALID_URI, f"URI {uri!r} must be absolute, with a scheme (RFC 5280 §4.2.1.6)"
        )
    if "*" in uri:
        raise PolicyError(Code.INVALID_WILDCARD, f"URI {uri!r}: wildcards are not allowed in URIs")
    if scheme.lower() == "spiffe":
        check_spiffe_id(uri)
    return uri


def check_spiffe_id(uri: str) -> None:
    """Raise unless `uri` is a SPIFFE ID with a workload path (SPIFFE ID spec §2; X.509-SVID
    §3.1: leaf SPIFFE IDs MUST have a non-root path)."""
    if len(uri.encode()) > MAX_SPIFFE_ID:
        raise PolicyError(Code.INVALID_SPIFFE_ID, f"SPIFFE ID is longer than {MAX_SPIFFE_ID} bytes")
    if not uri.startswith("spiffe://"):
        raise PolicyError(
            Code.INVALID_SPIFFE_ID, f"SPIFFE ID {uri!r} must start with 'spiffe://' (lower case)"
        )
    parts = urllib.parse.urlsplit(uri)
    if parts.query or parts.fragment or "?" in uri or "#" in uri:
        raise PolicyError(
            Code.INVALID_SPIFFE_ID, f"SPIFFE ID {uri!r} must not have a query or fragment"
        )
    authority, _, path = uri.removeprefix("spiffe://").partition("/")
    if len(authority) > MAX_TRUST_DOMAIN:
        raise PolicyError(
            Code.INVALID_SPIFFE_ID,
            f"SPIFFE ID trust domain is longer than {MAX_TRUST_DOMAIN} characters (SPIFFE ID §2.1)",
        )
    if not authority or not _SPIFFE_TRUST_DOMAIN.fullmatch(authority):
        raise PolicyError(
            Code.INVALID_SPIFFE_ID,
            f"SPIFFE ID {uri!r}: trust domain {authority!r} must be lower-case letters, digits, "
            "'.', '-' or '_' (no port, no user info) (SPIFFE ID §2.1)",
        )
    if not path:
        raise PolicyError(
            Code.INVALID_SPIFFE_ID,
            f"SPIFFE ID {uri!r} has no path: a leaf SVID names a workload (X.509-SVID §3.1)",
        )
    for segment in path.split("/"):
        if not segment or segment in {".", ".."} or not _SPIFFE_SEGMENT.fullmatch(segment):
            raise PolicyError(
                Code.INVALID_SPIFFE_ID,
                f"SPIFFE ID {uri!r}: path segment {segment!r} is not allowed (segments are "
                "non-empty letters, digits, '.', '-', '_', not '.' or '..'; SPIFFE ID §2.2)",
            )


def normalize_email(address: str) -> str:
    """An rfc822Name SAN (RFC 5280 §4.2.1.6): ASCII local part @ a DNS domain (A-labels)."""
    local, sep, domain = address.rpartition("@")
    if not sep or not local or not domain:
        raise PolicyError(Code.INVALID_EMAIL, f"email address {address!r} must be local@domain")
    if not _EMAIL_LOCAL.fullmatch(local):
        raise PolicyError(
            Code.INVALID_EMAIL,
            f"email address {address!r}: local part must be ASCII dot-atom (RFC 5322 §3.2.3; "
            "internationalised mailboxes are not supported)",
        )
    if domain.startswith("*"):
        raise PolicyError(
            Code.INVALID_WILDCARD, f"email address {address!r}: wildcards are not allowed"
        )
    try:
        normalized_domain = normalize_dns_name(domain)
    except PolicyError as exc:
        raise PolicyError(exc.code, f"email address {address!r}: {exc.message}") from None
    return f"{local}@{normalized_domain}"
