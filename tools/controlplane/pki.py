"""Throw-away PKI for the local control plane: cluster CA, serving and client certificates.

Called by tools/controlplane/local.py when it lays out a fresh control plane. Everything here
lives under that control plane's state folder, is made anew for each fresh start and never
leaves the machine; it is test scaffolding, not padlock's CA.

Files written (PEM): ca.crt/ca.key (cluster CA), apiserver.crt/.key (serving, SANs for
loopback and the in-cluster names), admin.crt/.key (group system:masters, for the admin
kubeconfig), controller-manager.crt/.key (user system:kube-controller-manager, also in
system:masters: it runs the controllers with its own credentials), sa.key/sa.pub
(service-account token signing pair, ES256).
"""

from __future__ import annotations

import datetime
import ipaddress
import pathlib

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

LIFETIME = datetime.timedelta(days=2)
# The first address of --service-cluster-ip-range (local.SERVICE_CIDR) is the `kubernetes`
# Service's ClusterIP; the apiserver checks its serving certificate covers it.
SERVICE_IP = "10.0.0.1"


def _name(common_name: str, organization: str | None = None) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)]
    if organization:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    return x509.Name(attrs)


def _write_key(path: pathlib.Path, key: ec.EllipticCurvePrivateKey) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)


def _issue(
    ca_key: ec.EllipticCurvePrivateKey,
    ca_name: x509.Name,
    subject: x509.Name,
    key: ec.EllipticCurvePrivateKey,
    now: datetime.datetime,
    *,
    is_ca: bool = False,
    server: bool = False,
    sans: list[x509.GeneralName] | None = None,
) -> x509.Certificate:
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + LIFETIME)
        .add_extension(x509.BasicConstraints(ca=is_ca, path_length=None), critical=True)
    )
    if is_ca:
        builder = builder.add_extension(
            x509.KeyUsage(False, False, False, False, False, True, True, False, False),
            critical=True,
        )
    else:
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = builder.add_extension(
            x509.KeyUsage(True, False, False, False, False, False, False, False, False),
            critical=True,
        ).add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return builder.sign(ca_key, hashes.SHA256())


def write_pki(folder: pathlib.Path, now: datetime.datetime) -> None:
    """Write a fresh CA, serving/client pairs and the service-account key pair into folder."""
    folder.mkdir(parents=True, exist_ok=True)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = _name("padlock-local-controlplane-ca")
    ca_cert = _issue(ca_key, ca_name, ca_name, ca_key, now, is_ca=True)
    _write_key(folder / "ca.key", ca_key)
    (folder / "ca.crt").write_bytes(ca_cert.public_bytes(serialization.Encoding.PEM))

    dns = ["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"]
    dns.append("kubernetes.default.svc.cluster.local")
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns]
    sans += [x509.IPAddress(ipaddress.ip_address(a)) for a in ("127.0.0.1", SERVICE_IP)]
    leaves = {
        "apiserver": (_name("kube-apiserver"), True, sans),
        "admin": (_name("padlock-admin", "system:masters"), False, None),
        "controller-manager": (
            _name("system:kube-controller-manager", "system:masters"),
            False,
            None,
        ),
    }
    for stem, (subject, server, leaf_sans) in leaves.items():
        key = ec.generate_private_key(ec.SECP256R1())
        cert = _issue(ca_key, ca_name, subject, key, now, server=server, sans=leaf_sans)
        _write_key(folder / f"{stem}.key", key)
        (folder / f"{stem}.crt").write_bytes(cert.public_bytes(serialization.Encoding.PEM))

    sa_key = ec.generate_private_key(ec.SECP256R1())
    _write_key(folder / "sa.key", sa_key)
    (folder / "sa.pub").write_bytes(
        sa_key.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
