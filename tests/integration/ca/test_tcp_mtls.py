"""`padlock ca serve` on loopback TCP requires a client certificate (mTLS)."""

from __future__ import annotations

import asyncio
import datetime
import ipaddress
import socket
import ssl
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from padlock.ca import client
from padlock.ca import config as ca_config
from padlock.services import ca_http
from tests.fixtures.ca import CASetup, MakeCA

pytestmark = pytest.mark.softhsm

NOW = datetime.datetime.now(datetime.UTC)


def _cert(
    name: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Certificate | None,
    issuer_key: ec.EllipticCurvePrivateKey, *, ca: bool = False,
    eku: x509.ObjectIdentifier | None = None,
) -> x509.Certificate:  # fmt: skip
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer.subject if issuer else subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(NOW - datetime.timedelta(minutes=1))
        .not_valid_after(NOW + datetime.timedelta(hours=1))
        .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
    )
    if eku is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage([eku]), critical=False)
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(issuer_key, hashes.SHA256())


def _write(path: Path, *items: x509.Certificate | ec.EllipticCurvePrivateKey) -> Path:
    data = b""
    for item in items:
        if isinstance(item, x509.Certificate):
            data += item.public_bytes(serialization.Encoding.PEM)
        else:
            data += item.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
    path.write_bytes(data)
    return path


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _mtls_ca(
    make_ca: MakeCA, tmp_path: Path
) -> tuple[CASetup, int, x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A CA listening on a free loopback TCP port with mTLS: a throw-away transport CA signs the
    server certificate and one client certificate; its PEM is written to tmp_path/clients.pem.
    Returns the CA set-up, the port, and the client certificate and key. Also used by
    test_workers_tcp."""
    tls_ca_key = ec.generate_private_key(ec.SECP256R1())
    tls_ca = _cert("transport CA", tls_ca_key, None, tls_ca_key, ca=True)
    server_key = ec.generate_private_key(ec.SECP256R1())
    server = _cert("ca", server_key, tls_ca, tls_ca_key, eku=ExtendedKeyUsageOID.SERVER_AUTH)
    client_key = ec.generate_private_key(ec.SECP256R1())
    client_cert = _cert(
        "operator", client_key, tls_ca, tls_ca_key, eku=ExtendedKeyUsageOID.CLIENT_AUTH
    )
    port = _free_port()
    setup = make_ca(
        listen=ca_config.ListenConfig(
            socket=None,
            tcp_host="127.0.0.1",
            tcp_port=port,
            tls_cert_file=_write(tmp_path / "server.pem", server),
            tls_key_file=_write(tmp_path / "server-key.pem", server_key),
            tls_client_ca_file=_write(tmp_path / "clients.pem", tls_ca),
        )
    )
    return setup, port, client_cert, client_key


async def test_tcp_listener_serves_clients_with_a_certificate_and_refuses_others(
    make_ca: MakeCA, tmp_path: Path
) -> None:
    setup, port, client_cert, client_key = _mtls_ca(make_ca, tmp_path)
    stop = asyncio.Event()
    serving = asyncio.create_task(ca_http.serve(setup.config, stop=stop))
    trusted = ssl.create_default_context(cafile=str(tmp_path / "clients.pem"))
    with_cert = ssl.create_default_context(cafile=str(tmp_path / "clients.pem"))
    with_cert.load_cert_chain(
        _write(tmp_path / "client.pem", client_cert),
        _write(tmp_path / "client-key.pem", client_key),
    )
    url = f"https://127.0.0.1:{port}"
    try:
        async with client.CAClient(base_url=url, ssl_context=with_cert) as ca:
            for _ in range(200):
                if await ca.healthy():
                    break
                await asyncio.sleep(0.05)
            info = await ca.info()
        async with client.CAClient(base_url=url, ssl_context=trusted) as anonymous:
            with pytest.raises(client.CAUnavailable):
                await anonymous.info()
    finally:
        stop.set()
        assert await serving == 0
    assert info.name == setup.config.name


async def test_client_reports_an_absent_ca_as_unavailable(tmp_path: Path) -> None:
    async with client.CAClient(socket_path=tmp_path / "nobody.sock", timeout=2) as ca:
        assert not await ca.healthy()
        with pytest.raises(client.CAUnavailable) as absent:
            await ca.sign("csr", "tls-server", 60, "k", "r")
    assert "nobody.sock" in str(absent.value)
