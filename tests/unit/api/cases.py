"""Objects the API server must accept or refuse, shared by the offline CRD tests here and by
tests/integration/test_crds.py (the real kube-apiserver), so both prove the same rules.

Each refused case names `expect`: text that the API server's message, the offline checker's
message and the Python model's error all contain (a field name, a bad value, or the CEL rule's
own message).
"""

from __future__ import annotations

import copy
import dataclasses
from typing import Any

from padlock.api import group

WEB_CERTIFICATE: dict[str, Any] = {
    "secretName": "web-tls",
    "issuerRef": {"name": "padlock-ca"},
    "dnsNames": ["web.example.internal"],
}


@dataclasses.dataclass(frozen=True)
class Case:
    id: str
    kind: group.Kind
    spec: dict[str, Any]
    expect: str | None = None  # None: accepted

    def object(self, name: str = "case") -> dict[str, Any]:
        return {
            "apiVersion": group.API_VERSION,
            "kind": self.kind.value,
            "metadata": {"name": name},
            "spec": copy.deepcopy(self.spec),
        }


def _cert(**changes: Any) -> dict[str, Any]:
    spec = copy.deepcopy(WEB_CERTIFICATE)
    for key, value in changes.items():
        if value is None:
            spec.pop(key, None)
        else:
            spec[key] = value
    return spec


CERT = group.Kind.CERTIFICATE
ISSUER = group.Kind.ISSUER
CLUSTER_ISSUER = group.Kind.CLUSTER_ISSUER
REVOCATION = group.Kind.REVOCATION_REQUEST

ACCEPTED: tuple[Case, ...] = (
    Case("certificate-minimal", CERT, _cert()),
    Case(
        "certificate-everything",
        CERT,
        _cert(
            issuerRef={"name": "root", "kind": "ClusterIssuer", "group": "padlock.dev"},
            commonName="web.example.internal",
            ipAddresses=["10.0.0.1", "2001:db8::1"],
            uris=["spiffe://cluster.local/ns/default/sa/web"],
            emailAddresses=["ops@example.com"],
            subject={
                "organizations": ["Example"],
                "organizationalUnits": ["Platform"],
                "countries": ["DE"],
                "localities": ["Berlin"],
                "provinces": ["Berlin"],
                "streetAddresses": ["Unter den Linden 1"],
                "postalCodes": ["10117"],
                "serialNumber": "42",
            },
            duration="720h",
            renewBefore="240h",
            privateKey={
                "algorithm": "RSA",
                "size": 3072,
                "rotationPolicy": "Never",
                "encoding": "PKCS8",
            },
            usages=["digital signature", "key encipherment", "server auth", "client auth"],
            isCA=False,
            secretTemplate={"labels": {"team": "web"}, "annotations": {"owner": "ops"}},
            keystores={
                "pkcs12": {"create": True, "passwordSecretRef": {"name": "p12", "key": "pw"}},
                "jks": {"create": True, "passwordSecretRef": {"name": "jks"}, "alias": "web"},
            },
            revisionHistoryLimit=3,
        ),
    ),
    Case("certificate-percentage", CERT, _cert(renewBeforePercentage=25)),
    Case("certificate-ed25519", CERT, _cert(privateKey={"algorithm": "Ed25519"})),
    Case("certificate-p384", CERT, _cert(privateKey={"algorithm": "ECDSA", "size": 384})),
    Case("certificate-cn-only", CERT, _cert(dnsNames=None, commonName="client-7")),
    Case("certificate-renew-before-under-default", CERT, _cert(renewBefore="2159h")),
    Case("issuer-ca", ISSUER, {"ca": {"profile": "tls-server", "maxDuration": "2160h"}}),
    Case("issuer-ca-empty", ISSUER, {"ca": {}}),
    Case("issuer-selfsigned", ISSUER, {"selfSigned": {}}),
    Case(
        "issuer-acme",
        ISSUER,
        {
            "acme": {
                "server": "https://acme.example.com/directory",
                "email": "ops@example.com",
                "privateKeySecretRef": {"name": "acme-account"},
                "externalAccountBinding": {
                    "keyID": "kid-1",
                    "keySecretRef": {"name": "eab", "key": "hmac"},
                },
                "solvers": [
                    {"http01": {"ingress": {"ingressClassName": "nginx"}}},
                    {
                        "selector": {"dnsZones": ["example.com"]},
                        "dns01": {
                            "rfc2136": {
                                "nameserver": "10.0.0.53:53",
                                "tsigKeyName": "padlock",
                                "tsigAlgorithm": "HMACSHA256",
                                "tsigSecretSecretRef": {"name": "tsig", "key": "secret"},
                            }
                        },
                    },
                ],
            }
        },
    ),
    Case("clusterissuer-selfsigned", CLUSTER_ISSUER, {"selfSigned": {}}),
    Case(
        "revocation-certificate",
        REVOCATION,
        {"certificateRef": {"name": "web"}, "reason": "keyCompromise", "reissue": True},
    ),
    Case(
        "revocation-serial",
        REVOCATION,
        {
            "serialNumber": "4f:1a:00:7c",
            "issuerRef": {"name": "padlock-ca"},
            "reason": "superseded",
        },
    ),
    Case(
        "revocation-all-from-issuer",
        REVOCATION,
        {
            "issuerRef": {"name": "padlock-cluster-ca", "kind": "ClusterIssuer"},
            "scope": "AllFromIssuer",
            "reason": "cACompromise",
        },
    ),
)

REFUSED: tuple[Case, ...] = (
    Case("certificate-without-secretName", CERT, _cert(secretName=None), "secretName"),
    Case("certificate-without-issuerRef", CERT, _cert(issuerRef=None), "issuerRef"),
    Case(
        "certificate-both-renewals",
        CERT,
        _cert(renewBefore="720h", renewBeforePercentage=25),
        "set at most one of renewBefore and renewBeforePercentage",
    ),
    Case(
        "certificate-unknown-key-algorithm",
        CERT,
        _cert(privateKey={"algorithm": "DSA"}),
        "DSA",
    ),
    Case(
        "certificate-renewBefore-equal-duration",
        CERT,
        _cert(duration="720h", renewBefore="720h"),
        "renewBefore must be shorter than duration",
    ),
    Case(
        "certificate-renewBefore-over-default-duration",
        CERT,
        _cert(renewBefore="2400h"),
        "renewBefore must be shorter than duration",
    ),
    Case(
        "certificate-renewBefore-longer-in-other-units",
        CERT,
        _cert(duration="90m", renewBefore="1h31m"),
        "renewBefore must be shorter than duration",
    ),
    Case("certificate-duration-in-days", CERT, _cert(duration="90d"), "duration"),
    Case(
        "certificate-duration-too-short",
        CERT,
        _cert(duration="30m"),
        "duration must be at least 1h",
    ),
    Case(
        "certificate-rsa-1024",
        CERT,
        _cert(privateKey={"algorithm": "RSA", "size": 1024}),
        "RSA keys must be 2048, 3072 or 4096 bits",
    ),
    Case(
        "certificate-rsa-odd-size",
        CERT,
        _cert(privateKey={"algorithm": "RSA", "size": 2047}),
        "RSA keys must be 2048, 3072 or 4096 bits",
    ),
    Case(
        "certificate-ecdsa-521",
        CERT,
        _cert(privateKey={"algorithm": "ECDSA", "size": 521}),
        "ECDSA keys must be size 256 (P-256) or 384 (P-384)",
    ),
    Case(
        "certificate-no-identity",
        CERT,
        _cert(dnsNames=None),
        "set at least one of commonName, dnsNames, ipAddresses, uris or emailAddresses",
    ),
    Case(
        "certificate-empty-dns-names",
        CERT,
        _cert(dnsNames=[]),
        "set at least one of commonName, dnsNames, ipAddresses, uris or emailAddresses",
    ),
    Case("certificate-bad-usage", CERT, _cert(usages=["server-auth"]), "server-auth"),
    Case("certificate-bad-dns-name", CERT, _cert(dnsNames=["web_1.example"]), "dnsNames"),
    Case(
        "certificate-bad-ip",
        CERT,
        _cert(ipAddresses=["10.0.0.256"]),
        "must be an IPv4 or IPv6 address",
    ),
    Case(
        "certificate-foreign-issuer-group",
        CERT,
        _cert(issuerRef={"name": "le", "group": "cert-manager.io"}),
        "group",
    ),
    Case(
        "issuer-two-types",
        ISSUER,
        {"ca": {}, "selfSigned": {}},
        "exactly one of ca, selfSigned or acme must be set",
    ),
    Case("issuer-no-type", ISSUER, {}, "exactly one of ca, selfSigned or acme must be set"),
    Case(
        "clusterissuer-two-types",
        CLUSTER_ISSUER,
        {
            "selfSigned": {},
            "acme": {"server": "https://a.example/dir", "privateKeySecretRef": {"name": "k"}},
        },
        "exactly one of ca, selfSigned or acme must be set",
    ),
    Case(
        "issuer-acme-http",
        ISSUER,
        {"acme": {"server": "http://a.example/dir", "privateKeySecretRef": {"name": "k"}}},
        "server",
    ),
    Case(
        "issuer-acme-solver-two-kinds",
        ISSUER,
        {
            "acme": {
                "server": "https://a.example/dir",
                "privateKeySecretRef": {"name": "k"},
                "solvers": [
                    {
                        "http01": {"ingress": {}},
                        "dns01": {"rfc2136": {"nameserver": "10.0.0.53"}},
                    }
                ],
            }
        },
        "a solver sets exactly one of http01 or dns01",
    ),
    Case(
        "revocation-invalid-reason",
        REVOCATION,
        {"certificateRef": {"name": "web"}, "reason": "lostLaptop"},
        "lostLaptop",
    ),
    Case(
        "revocation-remove-from-crl",
        REVOCATION,
        {"certificateRef": {"name": "web"}, "reason": "removeFromCRL"},
        "removeFromCRL",
    ),
    Case(
        "revocation-no-target",
        REVOCATION,
        {"reason": "superseded"},
        "set exactly one target",
    ),
    Case(
        "revocation-two-targets",
        REVOCATION,
        {"certificateRef": {"name": "web"}, "serialNumber": "01", "issuerRef": {"name": "ca"}},
        "set exactly one target",
    ),
    Case(
        "revocation-serial-without-issuer",
        REVOCATION,
        {"serialNumber": "01"},
        "serialNumber",
    ),
    Case(
        "revocation-scope-without-issuer",
        REVOCATION,
        {"scope": "AllFromIssuer"},
        "issuerRef",
    ),
    Case(
        "revocation-bad-serial",
        REVOCATION,
        {"serialNumber": "not-hex", "issuerRef": {"name": "ca"}},
        "serialNumber",
    ),
)
