"""Issuance policy: profile, key, SAN presence, lifetime, name permissions, SVID shape."""

from __future__ import annotations

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.x509.oid import NameOID

from padlock.pki import policy, profiles
from padlock.pki.algorithms import KeyAlgorithm
from padlock.pki.errors import Code, PolicyError
from padlock.pki.names import RequestedNames
from tests.unit.pki.conftest import NOW
from tests.unit.pki.csrs import make_csr

DAY = datetime.timedelta(days=1)


def request(
    sans: list[x509.GeneralName] | None = None,
    *,
    profile: str = "tls-server",
    lifetime: datetime.timedelta = 90 * DAY,
    **fields: object,
) -> policy.IssuanceRequest:
    return policy.IssuanceRequest(
        csr=make_csr(sans),
        profile=profile,
        not_before=NOW,
        not_after=NOW + lifetime,
        **fields,  # type: ignore[arg-type]
    )


def refusal(
    req: policy.IssuanceRequest, pol: policy.IssuancePolicy | None = None
) -> tuple[str, str]:
    with pytest.raises(PolicyError) as exc:
        policy.check_request(req, pol or policy.IssuancePolicy())
    return exc.value.code.value, exc.value.message


def test_good_request_is_approved_with_merged_normalized_names() -> None:
    approved = policy.check_request(
        request(
            [x509.DNSName("API.padlock.test")],
            common_name="api.padlock.test",
            names=RequestedNames(dns_names=("api.padlock.test", "www.padlock.test")),
        ),
        policy.IssuancePolicy(),
    )
    assert approved.profile is profiles.TLS_SERVER
    assert approved.key_algorithm is KeyAlgorithm.EC_P256
    assert approved.sans == (x509.DNSName("api.padlock.test"), x509.DNSName("www.padlock.test"))
    assert approved.subject == x509.Name(
        [x509.NameAttribute(NameOID.COMMON_NAME, "api.padlock.test")]
    )


def test_request_without_common_name_gets_empty_subject() -> None:
    approved = policy.check_request(request([x509.DNSName("a.test.x")]), policy.IssuancePolicy())
    assert len(approved.subject) == 0


def test_missing_san_is_refused() -> None:
    assert refusal(request()) == (
        "no-san",
        "the request names no subjectAltName: put DNS names, IP addresses, URIs or email "
        "addresses in the CSR or the request",
    )


def test_names_from_the_request_alone_are_enough() -> None:
    approved = policy.check_request(
        request(names=RequestedNames(ip_addresses=("10.1.2.3",))), policy.IssuancePolicy()
    )
    assert approved.sans == (x509.IPAddress(ipaddress.ip_address("10.1.2.3")),)


def test_bad_wildcard_in_request_is_refused() -> None:
    assert refusal(request([x509.DNSName("a.*.example.com")])) == (
        "invalid-wildcard",
        "DNS name 'a.*.example.com': a wildcard is allowed only as the whole leftmost label",
    )


def test_bad_idna_in_request_is_refused() -> None:
    code, message = refusal(request([x509.DNSName("xn--zz.example.com")]))
    assert (code, message) == (
        "invalid-idna",
        "DNS name 'xn--zz.example.com': label 'xn--zz' is not a valid IDNA A-label "
        "(Invalid A-label)",
    )


def test_lifetime_over_profile_maximum_is_refused() -> None:
    assert refusal(request([x509.DNSName("a.test.x")], lifetime=400 * DAY)) == (
        "lifetime-too-long",
        "requested lifetime 9600h exceeds the profile tls-server maximum 9528h",
    )


def test_lifetime_over_issuer_policy_maximum_is_refused() -> None:
    pol = policy.IssuancePolicy(max_lifetime=30 * DAY)
    assert refusal(request([x509.DNSName("a.test.x")], lifetime=31 * DAY), pol) == (
        "lifetime-too-long",
        "requested lifetime 744h exceeds the issuer policy maximum 720h",
    )


def test_svid_lifetime_over_one_day_is_refused() -> None:
    req = request(
        [x509.UniformResourceIdentifier("spiffe://td/x")], profile="svid", lifetime=DAY * 2
    )
    assert refusal(req) == (
        "lifetime-too-long",
        "requested lifetime 48h exceeds the profile svid maximum 24h",
    )


def test_inverted_validity_is_refused() -> None:
    assert refusal(request([x509.DNSName("a.test.x")], lifetime=-DAY)) == (
        "invalid-lifetime",
        "notAfter 2026-05-31T12:00:00+00:00 is not after notBefore 2026-06-01T12:00:00+00:00",
    )


def test_leaf_outliving_its_issuer_is_refused() -> None:
    req = request([x509.DNSName("a.test.x")], issuer_not_after=NOW + 10 * DAY)
    assert refusal(req) == (
        "lifetime-exceeds-issuer",
        "notAfter 2026-08-30T12:00:00+00:00 is after the issuer's notAfter "
        "2026-06-11T12:00:00+00:00",
    )


def test_disallowed_domain_is_refused() -> None:
    pol = policy.IssuancePolicy(permitted_dns_domains=("svc.cluster.local", ".padlock.test"))
    policy.check_request(request([x509.DNSName("api.ns.svc.cluster.local")]), pol)
    policy.check_request(request([x509.DNSName("svc.cluster.local")]), pol)
    policy.check_request(request([x509.DNSName("*.padlock.test")]), pol)
    assert refusal(request([x509.DNSName("evil.test.x")]), pol) == (
        "name-not-permitted",
        "DNS name 'evil.test.x' is not under a permitted domain (svc.cluster.local, .padlock.test)",
    )
    # ".padlock.test" permits names under it, not the domain itself (RFC 5280 §4.2.1.10).
    assert refusal(request([x509.DNSName("padlock.test")]), pol)[0] == "name-not-permitted"
    # Suffix match is on label boundaries: "xsvc.cluster.local" is not under the domain.
    assert refusal(request([x509.DNSName("xsvc.cluster.local")]), pol)[0] == "name-not-permitted"


def test_excluded_domain_wins_and_blocks_covering_wildcards() -> None:
    pol = policy.IssuancePolicy(
        permitted_dns_domains=("padlock.test",), excluded_dns_domains=("admin.padlock.test",)
    )
    assert refusal(request([x509.DNSName("x.admin.padlock.test")]), pol) == (
        "name-excluded",
        "DNS name 'x.admin.padlock.test' is excluded by 'admin.padlock.test'",
    )
    assert refusal(request([x509.DNSName("*.padlock.test")]), pol) == (
        "name-excluded",
        "DNS name '*.padlock.test' is excluded by 'admin.padlock.test'",
    )
    policy.check_request(request([x509.DNSName("www.padlock.test")]), pol)


def test_ip_outside_permitted_networks_is_refused() -> None:
    pol = policy.IssuancePolicy(
        permitted_ip_networks=(ipaddress.ip_network("10.0.0.0/8"),),
        excluded_ip_networks=(ipaddress.ip_network("10.9.0.0/16"),),
    )
    policy.check_request(request(names=RequestedNames(ip_addresses=("10.1.1.1",))), pol)
    assert refusal(request(names=RequestedNames(ip_addresses=("192.168.1.1",))), pol) == (
        "name-not-permitted",
        "IP address 192.168.1.1 is not in a permitted network (10.0.0.0/8)",
    )
    assert refusal(request(names=RequestedNames(ip_addresses=("10.9.1.1",))), pol) == (
        "name-excluded",
        "IP address 10.9.1.1 is excluded by 10.9.0.0/16",
    )


def test_uri_prefix_matches_only_on_path_boundaries() -> None:
    pol = policy.IssuancePolicy(permitted_uri_prefixes=("spiffe://cluster.local",))
    svid = "spiffe://cluster.local/ns/a/sa/b"
    policy.check_request(
        request([x509.UniformResourceIdentifier(svid)], profile="svid", lifetime=DAY), pol
    )
    evil = request(
        [x509.UniformResourceIdentifier("spiffe://cluster.local.evil/ns/a/sa/b")],
        profile="svid",
        lifetime=DAY,
    )
    assert refusal(evil, pol) == (
        "name-not-permitted",
        "URI 'spiffe://cluster.local.evil/ns/a/sa/b' is not under a permitted prefix "
        "(spiffe://cluster.local)",
    )


def test_email_constraints_follow_rfc5280() -> None:
    pol = policy.IssuancePolicy(permitted_email_domains=("padlock.test",))
    policy.check_request(
        request(names=RequestedNames(email_addresses=("ops@padlock.test",)), profile="tls-client"),
        pol,
    )
    assert refusal(
        request(names=RequestedNames(email_addresses=("ops@x.test",)), profile="tls-client"), pol
    ) == (
        "name-not-permitted",
        "email address 'ops@x.test' is not in a permitted domain (padlock.test)",
    )


def test_svid_needs_exactly_one_spiffe_uri() -> None:
    two = request(
        [
            x509.UniformResourceIdentifier("spiffe://td/a"),
            x509.UniformResourceIdentifier("spiffe://td/b"),
        ],
        profile="svid",
        lifetime=DAY,
    )
    assert refusal(two) == (
        "svid-needs-one-uri",
        "an X.509-SVID needs exactly one URI SAN and it must be a spiffe:// ID, "
        "got ['spiffe://td/a', 'spiffe://td/b']",
    )
    dns_only = request([x509.DNSName("a.test.x")], profile="svid", lifetime=DAY)
    assert refusal(dns_only) == (
        "svid-needs-one-uri",
        "an X.509-SVID needs exactly one URI SAN and it must be a spiffe:// ID, got []",
    )
    https = request([x509.UniformResourceIdentifier("https://td/a")], profile="svid", lifetime=DAY)
    assert refusal(https)[0] == "svid-needs-one-uri"


def test_svid_with_bad_spiffe_id_is_refused() -> None:
    req = request([x509.UniformResourceIdentifier("spiffe://td")], profile="svid", lifetime=DAY)
    assert refusal(req)[0] == "invalid-spiffe-id"


def test_tls_server_common_name_must_be_a_san() -> None:
    req = request([x509.DNSName("a.test.x")], common_name="b.test.x")
    assert refusal(req) == (
        "common-name-not-in-san",
        "commonName 'b.test.x' must also be one of the DNS or IP subjectAltNames",
    )


def test_tls_client_common_name_may_be_a_user_name() -> None:
    approved = policy.check_request(
        request([x509.DNSName("a.test.x")], profile="tls-client", common_name="alice"),
        policy.IssuancePolicy(),
    )
    assert approved.subject.rfc4514_string() == "CN=alice"


def test_over_long_common_name_is_refused() -> None:
    req = request([x509.DNSName("a.test.x")], profile="tls-client", common_name="x" * 65)
    assert refusal(req) == ("invalid-common-name", "commonName must be 1 to 64 characters, got 65")


def test_profile_not_allowed_by_issuer_is_refused() -> None:
    pol = policy.IssuancePolicy(allowed_profiles=frozenset({"svid"}))
    assert refusal(request([x509.DNSName("a.test.x")]), pol) == (
        "profile-not-allowed",
        "profile 'tls-server' is not allowed by this issuer (allowed: svid)",
    )


def test_key_algorithm_not_allowed_by_issuer_is_refused() -> None:
    pol = policy.IssuancePolicy(allowed_key_algorithms=frozenset({KeyAlgorithm.ED25519}))
    assert refusal(request([x509.DNSName("a.test.x")]), pol) == (
        "key-not-allowed",
        "key algorithm ec-p256 is not allowed by this issuer",
    )


def test_policy_refuses_bad_configuration() -> None:
    with pytest.raises(ValueError, match="unknown profiles in policy: web"):
        policy.IssuancePolicy(allowed_profiles=frozenset({"web"}))
    with pytest.raises(ValueError, match="must be a lower-case A-label domain"):
        policy.IssuancePolicy(permitted_dns_domains=("Example.com",))
    with pytest.raises(ValueError, match="must be a lower-case A-label domain"):
        policy.IssuancePolicy(excluded_dns_domains=("bücher.test",))
    with pytest.raises(ValueError, match="must be a lower-case A-label domain"):
        policy.IssuancePolicy(permitted_dns_domains=("*.x.test",))
    with pytest.raises(ValueError, match=r"email constraint 'a@X\.test' must name a lower-case"):
        policy.IssuancePolicy(permitted_email_domains=("a@X.test",))
    policy.IssuancePolicy(permitted_dns_domains=(".xn--bcher-kva.test", "svc"))


def test_policy_error_serializes_code_and_message() -> None:
    err = PolicyError(Code.WEAK_KEY, "too small")
    assert err.as_dict() == {"code": "weak-key", "message": "too small"}
    assert str(err) == "too small"
