"""subjectAltName syntax: DNS/LDH/IDNA, wildcards, IPs, URIs, emails, SPIFFE IDs."""

from __future__ import annotations

import ipaddress

import pytest

from padlock.pki import names
from padlock.pki.errors import PolicyError


def refused(func: object, value: str) -> tuple[str, str]:
    assert callable(func)
    with pytest.raises(PolicyError) as exc:
        func(value)
    return exc.value.code.value, exc.value.message


@pytest.mark.parametrize(
    ("given", "normalized"),
    [
        ("API.Padlock.Test", "api.padlock.test"),
        ("*.padlock.test", "*.padlock.test"),
        ("bücher.padlock.test", "xn--bcher-kva.padlock.test"),
        ("xn--bcher-kva.padlock.test", "xn--bcher-kva.padlock.test"),
        ("my-svc", "my-svc"),
        ("a" * 63 + ".test", "a" * 63 + ".test"),
    ],
)
def test_dns_names_are_normalized(given: str, normalized: str) -> None:
    assert names.normalize_dns_name(given) == normalized


@pytest.mark.parametrize(
    ("given", "code", "message"),
    [
        (
            "a.*.example.com",
            "invalid-wildcard",
            "DNS name 'a.*.example.com': a wildcard is allowed only as the whole leftmost label",
        ),
        (
            "*.*.x",
            "invalid-wildcard",
            "DNS name '*.*.x': a wildcard is allowed only as the whole leftmost label",
        ),
        (
            "*",
            "invalid-wildcard",
            "DNS name '*': a wildcard is allowed only as the whole leftmost label",
        ),
        (
            "f*.example.com",
            "invalid-wildcard",
            "DNS name 'f*.example.com': a wildcard is allowed only as the whole leftmost label",
        ),
        (
            "*.com",
            "invalid-wildcard",
            "DNS name '*.com': a wildcard must be followed by at least two labels",
        ),
        (
            "*.10.0.0.1",
            "invalid-wildcard",
            "DNS name '*.10.0.0.1': wildcards are not allowed for IPs",
        ),
        (
            "10.0.0.1",
            "invalid-dns-name",
            "DNS name '10.0.0.1' is an IP address: put it in ipAddresses",
        ),
        (
            "a..b",
            "invalid-dns-name",
            "DNS name 'a..b' has an empty label",
        ),
        (
            "example.com.",
            "invalid-dns-name",
            "DNS name 'example.com.' must not end with a dot (RFC 5280 §4.2.1.6)",
        ),
        (
            "under_score.test",
            "invalid-dns-name",
            "DNS name 'under_score.test': label 'under_score' is not letters, digits and "
            "inner hyphens",
        ),
        (
            "-lead.test",
            "invalid-dns-name",
            "DNS name '-lead.test': label '-lead' is not letters, digits and inner hyphens",
        ),
        (
            "ab--cd.test",
            "invalid-dns-name",
            "DNS name 'ab--cd.test': label 'ab--cd' has '--' in positions 3-4 (RFC 5891 §4.2.3.1)",
        ),
        (
            "a" * 64 + ".test",
            "invalid-dns-name",
            f"DNS name {'a' * 64 + '.test'!r}: label 'aaaaaaaaaaaaaaaaaaaa'... is 64 characters, "
            "more than 63",
        ),
        (
            ".".join(["a" * 63] * 4),
            "invalid-dns-name",
            f"DNS name {'a' * 40!r}... is 255 characters, more than 253",
        ),
        (
            "xn--zz.padlock.test",
            "invalid-idna",
            "DNS name 'xn--zz.padlock.test': label 'xn--zz' is not a valid IDNA A-label "
            "(Invalid A-label)",
        ),
    ],
)
def test_bad_dns_names_are_refused(given: str, code: str, message: str) -> None:
    assert refused(names.normalize_dns_name, given) == (code, message)


def test_bad_u_label_is_refused_as_idna() -> None:
    code, message = refused(names.normalize_dns_name, "☃.padlock.test")
    assert code == "invalid-idna"
    assert message.startswith("DNS name '☃.padlock.test': label '☃' cannot be converted to IDNA (")


def test_ip_addresses_parse_v4_and_v6() -> None:
    assert names.normalize_ip("10.0.0.1") == ipaddress.IPv4Address("10.0.0.1")
    assert names.normalize_ip("2001:db8::1") == ipaddress.IPv6Address("2001:db8::1")


@pytest.mark.parametrize(
    ("given", "code", "message"),
    [
        (
            "10.0.0.*",
            "invalid-wildcard",
            "IP address '10.0.0.*': wildcards are not allowed for IPs",
        ),
        ("10.0.0.0/8", "invalid-ip", "'10.0.0.0/8' is not an IPv4 or IPv6 address"),
        ("fe80::1%eth0", "invalid-ip", "IP address 'fe80::1%eth0' must not carry a zone (%...)"),
    ],
)
def test_bad_ips_are_refused(given: str, code: str, message: str) -> None:
    assert refused(names.normalize_ip, given) == (code, message)


@pytest.mark.parametrize(
    ("given", "code", "message"),
    [
        (
            "no-scheme",
            "invalid-uri",
            "URI 'no-scheme' must be absolute, with a scheme (RFC 5280 §4.2.1.6)",
        ),
        (
            "/relative/path",
            "invalid-uri",
            "URI '/relative/path' must be absolute, with a scheme (RFC 5280 §4.2.1.6)",
        ),
        (
            "https://a b/",
            "invalid-uri",
            "URI 'https://a b/' must be ASCII without spaces or control characters",
        ),
        (
            "https://*.x.test/",
            "invalid-wildcard",
            "URI 'https://*.x.test/': wildcards are not allowed in URIs",
        ),
        (
            "spiffe://TD/x",
            "invalid-spiffe-id",
            "SPIFFE ID 'spiffe://TD/x': trust domain 'TD' must be lower-case letters, digits, "
            "'.', '-' or '_' (no port, no user info) (SPIFFE ID §2.1)",
        ),
        (
            "spiffe://td:8443/x",
            "invalid-spiffe-id",
            "SPIFFE ID 'spiffe://td:8443/x': trust domain 'td:8443' must be lower-case letters, "
            "digits, '.', '-' or '_' (no port, no user info) (SPIFFE ID §2.1)",
        ),
        (
            "spiffe://td",
            "invalid-spiffe-id",
            "SPIFFE ID 'spiffe://td' has no path: a leaf SVID names a workload (X.509-SVID §3.1)",
        ),
        (
            "spiffe://td/ns//sa",
            "invalid-spiffe-id",
            "SPIFFE ID 'spiffe://td/ns//sa': path segment '' is not allowed (segments are "
            "non-empty letters, digits, '.', '-', '_', not '.' or '..'; SPIFFE ID §2.2)",
        ),
        (
            "spiffe://td/ns/../sa",
            "invalid-spiffe-id",
            "SPIFFE ID 'spiffe://td/ns/../sa': path segment '..' is not allowed (segments are "
            "non-empty letters, digits, '.', '-', '_', not '.' or '..'; SPIFFE ID §2.2)",
        ),
        (
            "spiffe://td/x?y=1",
            "invalid-spiffe-id",
            "SPIFFE ID 'spiffe://td/x?y=1' must not have a query or fragment",
        ),
    ],
)
def test_bad_uris_are_refused(given: str, code: str, message: str) -> None:
    assert refused(names.normalize_uri, given) == (code, message)


def test_good_uris_pass_unchanged() -> None:
    for uri in ("spiffe://cluster.local/ns/default/sa/api", "urn:uuid:1234", "https://x.test/a"):
        assert names.normalize_uri(uri) == uri


def test_emails_normalize_the_domain_and_refuse_bad_syntax() -> None:
    assert names.normalize_email("Ops@Bücher.Test") == "Ops@xn--bcher-kva.test"
    assert refused(names.normalize_email, "no-at-sign") == (
        "invalid-email",
        "email address 'no-at-sign' must be local@domain",
    )
    assert refused(names.normalize_email, "a b@x.test")[0] == "invalid-email"
    assert refused(names.normalize_email, "a@*.x.test") == (
        "invalid-wildcard",
        "email address 'a@*.x.test': wildcards are not allowed",
    )


def test_validate_dedupes_after_normalizing() -> None:
    valid = names.validate(
        names.RequestedNames(dns_names=("A.test", "a.test"), ip_addresses=("::1", "0::1"))
    )
    assert valid.dns_names == ("a.test",)
    assert valid.ip_addresses == (ipaddress.IPv6Address("::1"),)
