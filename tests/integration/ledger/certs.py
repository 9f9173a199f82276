"""Real X.509 certificates for the ledger tests: a software CA and the leaves it signs.

Used by the ledger suite and its crash-test child process. Software keys stand in for the HSM
here because the ledger only stores what was signed; it never signs.
"""

from __future__ import annotations

import datetime

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

T0 = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
_LEAF_KEY = ec.generate_private_key(ec.SECP256R1())


class SoftwareCA:
    """A self-signed CA that signs leaves with chosen serials."""

    def __init__(self, name: str = "padlock test CA") -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        self.name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.certificate = (
            x509.CertificateBuilder()
            .subject_name(self.name)
            .issuer_name(self.name)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(T0)
            .not_valid_after(T0 + datetime.timedelta(days=3650))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(self.key, hashes.SHA256())
        )

    def issue(
        self,
        serial: int | None = None,
        *,
        dns: str = "web.default.svc",
        not_after: datetime.datetime | None = None,
    ) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, dns)]))
            .issuer_name(self.name)
            .public_key(_LEAF_KEY.public_key())
            .serial_number(serial if serial is not None else x509.random_serial_number())
            .not_valid_before(T0)
            .not_valid_after(not_after or T0 + datetime.timedelta(days=90))
            .add_extension(
                x509.SubjectAlternativeName(
                    [x509.DNSName(dns), x509.UniformResourceIdentifier("spiffe://cluster/ns/x")]
                ),
                critical=False,
            )
            .sign(self.key, hashes.SHA256())
        )
