"""Helpers for the CA service tests: CSRs, raw HTTP over the unix socket, real openssl/pkilint."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

from padlock.ledger import ledger as ledger_mod
from tests.fixtures.ca import CASetup


def make_csr(
    dns_names: tuple[str, ...] = ("app.example.test",),
    *,
    key: Any = None,
    common_name: str | None = None,
) -> str:
    """A PEM CSR with these DNS SANs (none when empty), signed with SHA-256."""
    key = key or ec.generate_private_key(ec.SECP256R1())
    subject = [x509.NameAttribute(NameOID.COMMON_NAME, common_name)] if common_name else []
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name(subject))
    if dns_names:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in dns_names]), critical=False
        )
    csr = builder.sign(key, hashes.SHA256())
    return csr.public_bytes(serialization.Encoding.PEM).decode()


def weak_rsa_csr() -> str:
    """A CSR with a 1024-bit RSA key (refused: RSA < 2048)."""
    return make_csr(key=rsa.generate_private_key(public_exponent=65537, key_size=1024))  # noqa: S505


def sign_body(csr: str, key: str, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "csr": csr,
        "profile": "tls-server",
        "lifetime_seconds": 7 * 86400,
        "idempotency_key": key,
        "requester": "default/app",
    }
    body.update(changes)
    return body


async def post_raw(socket: Path, path: str, data: bytes) -> tuple[int, dict[str, Any], Any]:
    """POST raw bytes over the unix socket; (status, headers, decoded JSON body)."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket))) as session,
        session.post(
            f"http://ca{path}", data=data, headers={"Content-Type": "application/json"}
        ) as resp,
    ):
        text = await resp.text()
        return resp.status, dict(resp.headers), json.loads(text)


async def get_raw(socket: Path, path: str) -> tuple[int, str]:
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket))) as session,
        session.get(f"http://ca{path}") as resp,
    ):
        return resp.status, await resp.text()


def openssl_verify(setup: CASetup, leaf_pem: str, chain_pem: str, tmp: Path) -> None:
    """`openssl verify -x509_strict` of the leaf against the root with the served chain."""
    leaf, chain = tmp / "leaf.pem", tmp / "untrusted.pem"
    leaf.write_text(leaf_pem)
    chain.write_text(chain_pem)
    result = subprocess.run(
        [
            "openssl",
            "verify",
            "-x509_strict",
            "-purpose",
            "sslserver",
            "-CAfile",
            str(setup.root_file),
            "-untrusted",
            str(chain),
            str(leaf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr


def pkilint_findings(cert_pem: str, tmp: Path, linter: str = "lint_pkix_cert") -> str:
    """Run the real pkilint command-line linter; its report (empty when clean)."""
    path = tmp / "lint.pem"
    path.write_text(cert_pem)
    args = [sys.executable, "-m", f"pkilint.bin.{linter}", "lint"]
    if linter == "lint_cabf_serverauth_cert":
        args += ["-d"]
    result = subprocess.run(
        [*args, "-s", "WARNING", str(path)], capture_output=True, text=True, check=False
    )
    return (result.stdout + result.stderr).strip()


def count(setup: CASetup, table: str) -> int:
    with ledger_mod.Ledger(setup.config.ledger.url, migrate=False) as ledger:
        return ledger.count(table)


def last_audit_event(setup: CASetup) -> tuple[str, str, dict[str, Any]]:
    """(kind, actor, details) of the newest audit row."""
    import sqlalchemy as sa

    from padlock.ledger import engine, schema

    eng = engine.create_engine(setup.config.ledger.url)
    try:
        with eng.connect() as conn:
            row = conn.execute(
                sa.select(schema.audit_event).order_by(schema.audit_event.c.event_id.desc())
            ).first()
    finally:
        eng.dispose()
    assert row is not None
    return row.kind, row.actor, json.loads(row.details)
