"""Certificates for the pkilint differential test (tests/unit/pki/test_lint_walk.py).

Three families, all DER:

- padlock's own: every profile, through the same builders as the pki unit tests (conftest);
- padlock's certificates with the defects the lint-gate tests plant (profiles altered with
  `dataclasses.replace`, as tests/unit/ca/test_lintgate.py and tests/integration/ca/
  test_lint_gate.py do) plus weak keys, odd names and missing extensions;
- real-world style certificates built directly with `cryptography`: EV/OV subjects, policy
  qualifiers, a precertificate, name and policy constraints, every GeneralName form, TLS
  feature, private and malformed extensions, other key and signature algorithms.
"""

from __future__ import annotations

import dataclasses
import datetime
import functools
import ipaddress
import warnings
from collections.abc import Sequence

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import (
    AuthorityInformationAccessOID,
    ExtendedKeyUsageOID,
    NameOID,
    ObjectIdentifier,
)

from padlock.pki import profiles
from tests.unit.pki.conftest import (
    NOW,
    Issued,
    issue,
    make_intermediate,
    make_leaves,
    make_root,
    name,
)

EV_POLICY = ObjectIdentifier("2.23.140.1.1")
OV_POLICY = ObjectIdentifier("2.23.140.1.2.2")
DV_POLICY = ObjectIdentifier("2.23.140.1.2.1")
PRIVATE_EXTENSION = ObjectIdentifier("1.3.6.1.4.1.55555.1.2")


def _der(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(Encoding.DER)


def _padlock(root: Issued, intermediate: Issued, rsa_key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    found = {"root": _der(root.cert), "intermediate": _der(intermediate.cert)}
    found.update({k: _der(v.cert) for k, v in make_leaves(intermediate, rsa_key).items()})
    return found


def _defects(intermediate: Issued) -> dict[str, bytes]:
    server = profiles.TLS_SERVER
    dns = [x509.DNSName("app.padlock.test")]

    def leaf(profile: profiles.Profile = server, **kwargs: object) -> bytes:
        kwargs.setdefault("sans", dns)
        return _der(issue(profile, intermediate, **kwargs).cert)  # type: ignore[arg-type]

    cn = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "app.padlock.test")])
    return {
        "ku-no-bits": leaf(dataclasses.replace(server, key_usages=frozenset())),
        "ku-cert-sign-on-leaf": leaf(
            dataclasses.replace(
                server, key_usages=frozenset({"digital_signature", "key_cert_sign"})
            )
        ),
        "eku-absent": leaf(dataclasses.replace(server, extended_key_usages=())),
        "eku-client-on-server": leaf(
            dataclasses.replace(server, extended_key_usages=profiles.TLS_CLIENT.extended_key_usages)
        ),
        "leaf-is-ca": leaf(
            dataclasses.replace(server, is_ca=True, path_length=0),
            subject=name("not a CA"),
        ),
        "no-san-cn-only": leaf(
            dataclasses.replace(server, requires_san=False), sans=(), subject=cn
        ),
        "no-aia-no-cdp": leaf(endpoints=profiles.Endpoints()),
        "single-label-and-wildcard": leaf(
            sans=[x509.DNSName("web"), x509.DNSName("*.web.example.internal")]
        ),
        "bad-dns-names": leaf(
            sans=[x509.DNSName("-bad-.test"), x509.DNSName("a..b.test"), x509.DNSName("x_y.test")]
        ),
        "spiffe-broken": leaf(
            profiles.SPIFFE_SVID,
            sans=[x509.UniformResourceIdentifier("spiffe://TD/x")],
            lifetime=datetime.timedelta(hours=1),
        ),
        # Deliberately weak (the defect under test): 1024 bits, exponent 3.
        "weak-rsa-1024": leaf(
            key=rsa.generate_private_key(public_exponent=3, key_size=1024)  # noqa: S505
        ),
        "p384-key": leaf(key=ec.generate_private_key(ec.SECP384R1())),
        "ed25519-key": leaf(key=ed25519.Ed25519PrivateKey.generate()),
        "long-lifetime": leaf(
            dataclasses.replace(server, max_lifetime=datetime.timedelta(days=3000)),
            lifetime=datetime.timedelta(days=2500),
        ),
    }


def _raw(
    issuer: Issued | None,
    *,
    subject: x509.Name,
    extensions: Sequence[tuple[x509.ExtensionType, bool]],
    key: CertificateIssuerPrivateKeyTypes | None = None,
    serial: int = 0x1234_5678_9ABC,
    not_after: datetime.datetime = NOW + datetime.timedelta(days=90),
    algorithm: hashes.SHA256 | hashes.SHA384 | hashes.SHA512 | None = None,
    rsa_padding: padding.PSS | None = None,
) -> bytes:
    """A certificate straight from cryptography's builder (no padlock profile, no checks)."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    signer = issuer.key if issuer is not None else key
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.cert.subject if issuer is not None else subject)
        .public_key(key.public_key())
        .serial_number(serial)
        .not_valid_before(NOW - datetime.timedelta(hours=1))
        .not_valid_after(not_after)
    )
    for value, critical in extensions:
        builder = builder.add_extension(value, critical=critical)
    if isinstance(signer, ed25519.Ed25519PrivateKey):
        return _der(builder.sign(signer, None))
    return _der(
        builder.sign(
            signer,
            algorithm or profiles.signature_hash(signer),
            rsa_padding=rsa_padding,
        )
    )


def _identifiers(
    issuer: Issued, key: CertificateIssuerPrivateKeyTypes
) -> list[tuple[x509.ExtensionType, bool]]:
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    aki = x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer.key.public_key())
    return [(ski, False), (aki, False)]


def _aia_cdp() -> list[tuple[x509.ExtensionType, bool]]:
    http = x509.UniformResourceIdentifier
    return [
        (
            x509.AuthorityInformationAccess(
                [
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.OCSP, http("http://ocsp.example.com")
                    ),
                    x509.AccessDescription(
                        AuthorityInformationAccessOID.CA_ISSUERS,
                        http("http://ca.example.com/ca.crt"),
                    ),
                ]
            ),
            False,
        ),
        (
            x509.CRLDistributionPoints(
                [x509.DistributionPoint([http("http://crl.example.com/1.crl")], None, None, None)]
            ),
            False,
        ),
    ]


def _server_basics(dns: Sequence[str]) -> list[tuple[x509.ExtensionType, bool]]:
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            True,
        ),
        (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        (x509.SubjectAlternativeName([x509.DNSName(d) for d in dns]), False),
    ]


def _policies(
    oid: ObjectIdentifier, *qualifiers: str | x509.UserNotice
) -> x509.CertificatePolicies:
    return x509.CertificatePolicies([x509.PolicyInformation(oid, list(qualifiers) or None)])


def _real_world(root: Issued, intermediate: Issued, rsa_key: rsa.RSAPrivateKey) -> dict[str, bytes]:
    out: dict[str, bytes] = {}
    key = ec.generate_private_key(ec.SECP256R1())
    ev_subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.STATE_OR_PROVINCE_NAME, "California"),
            x509.NameAttribute(NameOID.LOCALITY_NAME, "San Francisco"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc."),
            x509.NameAttribute(NameOID.BUSINESS_CATEGORY, "Private Organization"),
            x509.NameAttribute(NameOID.JURISDICTION_COUNTRY_NAME, "US"),
            x509.NameAttribute(NameOID.SERIAL_NUMBER, "C1234567"),
            x509.NameAttribute(NameOID.COMMON_NAME, "www.example.com"),
        ]
    )
    out["ev-subscriber"] = _raw(
        intermediate,
        subject=ev_subject,
        key=key,
        extensions=[
            *_server_basics(["www.example.com", "example.com"]),
            *_identifiers(intermediate, key),
            *_aia_cdp(),
            (_policies(EV_POLICY, "https://cps.example.com/"), False),
        ],
    )
    with warnings.catch_warnings():  # cryptography warns about the (deliberate) length
        warnings.simplefilter("ignore", UserWarning)
        long_common_name = x509.NameAttribute(NameOID.COMMON_NAME, "a" * 70, _validate=False)
    ov_subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "ZZ"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example Org"),
            x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, "IT"),
            x509.NameAttribute(NameOID.EMAIL_ADDRESS, "hostmaster@example.org"),
            long_common_name,
        ]
    )
    notice = x509.UserNotice(None, "This is a long explicit text " * 8)
    out["ov-bad-country-long-cn-user-notice"] = _raw(
        intermediate,
        subject=ov_subject,
        key=key,
        extensions=[
            *_server_basics(["a" * 70 + ".example.org"]),
            *_identifiers(intermediate, key),
            (_policies(OV_POLICY, notice, "http://cps.example.org"), False),
        ],
        not_after=NOW + datetime.timedelta(days=800),
    )
    out["dv-precertificate"] = _raw(
        intermediate,
        subject=x509.Name([]),
        key=key,
        extensions=[
            *_server_basics(["dv.example.net"]),
            *_identifiers(intermediate, key),
            *_aia_cdp(),
            (_policies(DV_POLICY), False),
            (x509.PrecertPoison(), True),
        ],
    )
    out["every-general-name-and-more"] = _raw(
        intermediate,
        subject=x509.Name([x509.NameAttribute(NameOID.DOMAIN_COMPONENT, "example")]),
        key=key,
        extensions=[
            (x509.BasicConstraints(ca=False, path_length=None), False),
            (
                x509.SubjectAlternativeName(
                    [
                        x509.DNSName("host.example.com"),
                        x509.IPAddress(ipaddress.ip_address("10.1.2.3")),
                        x509.IPAddress(ipaddress.ip_address("2001:db8::1")),
                        x509.RFC822Name("someone@example.com"),
                        x509.RFC822Name("not-an-address"),
                        x509.UniformResourceIdentifier("https://example.com/path?q=1"),
                        x509.UniformResourceIdentifier("ldap://ldap.example.com/cn=x"),
                        x509.UniformResourceIdentifier("urn:uuid:6e8bc430-9c3a-11d9-9669"),
                        x509.DirectoryName(name("directory name")),
                        x509.RegisteredID(ObjectIdentifier("1.2.3.4")),
                        x509.OtherName(
                            ObjectIdentifier("1.3.6.1.4.1.311.20.2.3"), b"\x0c\x05u@x.y"
                        ),
                    ]
                ),
                True,
            ),
            (x509.IssuerAlternativeName([x509.DNSName("issuer.example.com")]), False),
            (x509.TLSFeature([x509.TLSFeatureType.status_request]), False),
            (
                x509.FreshestCRL(
                    [
                        x509.DistributionPoint(
                            [x509.UniformResourceIdentifier("http://crl.example.com/delta")],
                            None,
                            None,
                            None,
                        )
                    ]
                ),
                False,
            ),
            (x509.UnrecognizedExtension(PRIVATE_EXTENSION, b"\x04\x03abc"), False),
            (x509.UnrecognizedExtension(ObjectIdentifier("1.2.3.99"), b"\x05\x00"), True),
            (x509.OCSPNoCheck(), False),
        ],
        not_after=datetime.datetime(2051, 1, 1, tzinfo=datetime.UTC),
        algorithm=hashes.SHA512(),
    )
    out["malformed-key-usage-and-san"] = _raw(
        intermediate,
        subject=name("malformed"),
        key=key,
        extensions=[
            (x509.UnrecognizedExtension(x509.oid.ExtensionOID.KEY_USAGE, b"\x01\x02"), True),
            (
                x509.UnrecognizedExtension(
                    x509.oid.ExtensionOID.SUBJECT_ALTERNATIVE_NAME, b"\x30\x03\x82\x01"
                ),
                False,
            ),
        ],
    )
    # The same bytes under three schemas: an empty SEQUENCE is a valid BasicConstraints, not
    # a KeyUsage BIT STRING, and an ExtKeyUsageSyntax only if SIZE (1..MAX) is not checked
    # (the decode memo in padlock.pki.lint_decode keys on the schema, never on bytes alone).
    out["same-bytes-three-schemas"] = _raw(
        intermediate,
        subject=name("same bytes"),
        key=key,
        extensions=[
            (x509.UnrecognizedExtension(x509.oid.ExtensionOID.BASIC_CONSTRAINTS, b"0\x00"), True),
            (x509.UnrecognizedExtension(x509.oid.ExtensionOID.KEY_USAGE, b"0\x00"), True),
            (x509.UnrecognizedExtension(x509.oid.ExtensionOID.EXTENDED_KEY_USAGE, b"0\x00"), False),
        ],
    )
    ca_key = ec.generate_private_key(ec.SECP256R1())
    out["constrained-intermediate"] = _raw(
        root,
        subject=name("constrained issuing CA"),
        key=ca_key,
        extensions=[
            (x509.BasicConstraints(ca=True, path_length=0), True),
            (x509.KeyUsage(True, False, False, False, False, True, True, False, False), True),
            *_identifiers(root, ca_key),
            (
                x509.NameConstraints(
                    permitted_subtrees=[
                        x509.DNSName("example.com"),
                        x509.IPAddress(ipaddress.ip_network("10.0.0.0/8")),
                        x509.DirectoryName(name("permitted")),
                    ],
                    excluded_subtrees=[
                        x509.DNSName("bad.example.com"),
                        x509.IPAddress(ipaddress.ip_network("::/0")),
                    ],
                ),
                True,
            ),
            (x509.PolicyConstraints(require_explicit_policy=0, inhibit_policy_mapping=0), True),
            (x509.InhibitAnyPolicy(0), True),
            (_policies(x509.oid.CertificatePoliciesOID.ANY_POLICY), False),
            (
                x509.ExtendedKeyUsage(
                    [ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]
                ),
                False,
            ),
            *_aia_cdp(),
        ],
    )
    out["rsa-pss-self-signed"] = _raw(
        None,
        subject=name("pss self-signed"),
        key=rsa_key,
        extensions=[(x509.BasicConstraints(ca=True, path_length=None), False)],
        rsa_padding=padding.PSS(padding.MGF1(hashes.SHA256()), padding.PSS.DIGEST_LENGTH),
        algorithm=hashes.SHA256(),
    )
    out["rsa-sha384-no-extensions"] = _raw(
        None, subject=name("bare"), key=rsa_key, extensions=[], algorithm=hashes.SHA384()
    )
    return out


@functools.cache
def corpus() -> dict[str, bytes]:
    """Name → DER, built once per test session."""
    root = make_root()
    intermediate = make_intermediate(root)
    rsa_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return {
        **_padlock(root, intermediate, rsa_key),
        **_defects(intermediate),
        **_real_world(root, intermediate, rsa_key),
    }
