"""The offline ceremony through the real `padlock` command: root, HSM intermediate, one leaf.

Proves issue 2's done-when: a leaf signed through SoftHSM verifies with
`openssl verify -x509_strict` against the chain, and pkilint finds no error in the root,
the intermediate or the leaf.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from padlock.ca import config as ca_config
from tests.fixtures.softhsm import SoftHSMToken

pytestmark = [pytest.mark.softhsm]

PASSPHRASE = "correct horse battery staple"


def padlock(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "padlock", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "PADLOCK_ROOT_PASSPHRASE": PASSPHRASE, **(env or {})},
        check=False,
        timeout=120,
    )


def make_csr(tmp: Path, *names: str) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    csr = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .add_extension(
            x509.SubjectAlternativeName([x509.DNSName(n) for n in names]), critical=False
        )
        .sign(key, hashes.SHA256())
    )
    path = tmp / "leaf.csr"
    path.write_bytes(csr.public_bytes(serialization.Encoding.PEM))
    return path


@pytest.fixture
def ceremony_dirs(tmp_path: Path, softhsm_token: SoftHSMToken) -> tuple[Path, Path]:
    root_dir, out_dir = tmp_path / "root", tmp_path / "ca"
    done = padlock("ca", "init-root", "--dir", str(root_dir))
    assert done.returncode == 0, done.stderr
    done = padlock(
        "ca", "init-intermediate",
        "--root-dir", str(root_dir),
        "--pkcs11-module", softhsm_token.module,
        "--token-label", softhsm_token.label,
        "--pin-file", str(softhsm_token.pin_file),
        "--key-label", f"inter-{tmp_path.name}",
        "--ocsp-key-label", f"ocsp-{tmp_path.name}",
        "--out", str(out_dir),
        "--ocsp-url", "http://ocsp.padlock.test/",
        "--crl-base-url", "http://crl.padlock.test/crl",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return root_dir, out_dir


def test_ceremony_writes_chain_and_config_that_loads(ceremony_dirs: tuple[Path, Path]) -> None:
    root_dir, out_dir = ceremony_dirs
    config = ca_config.load(out_dir / "ca.yaml")
    assert config.chain_file == out_dir / "chain.pem"
    chain = x509.load_pem_x509_certificates(config.chain_file.read_bytes())
    assert [c.subject for c in chain][1] == chain[1].issuer  # intermediate, then the root
    # The root key stays in the root directory only, and is encrypted.
    assert not list(out_dir.glob("*key*"))
    key_pem = (root_dir / "root-key.pem").read_bytes()
    assert b"ENCRYPTED PRIVATE KEY" in key_pem
    assert (root_dir / "root-key.pem").stat().st_mode & 0o077 == 0


def test_init_root_refuses_to_replace_a_root(ceremony_dirs: tuple[Path, Path]) -> None:
    root_dir, _ = ceremony_dirs
    done = padlock("ca", "init-root", "--dir", str(root_dir))
    assert done.returncode == 2
    assert "refusing to replace a root CA" in done.stderr


def test_wrong_passphrase_is_a_clear_error(
    ceremony_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    root_dir, _ = ceremony_dirs
    done = padlock(
        "ca", "init-intermediate", "--root-dir", str(root_dir), "--token-label", "x",
        "--pin-file", "/nonexistent", "--out", str(tmp_path / "other"),
        env={"PADLOCK_ROOT_PASSPHRASE": "not the passphrase at all"},
    )  # fmt: skip
    assert done.returncode == 2
    assert "passphrase" in done.stderr.lower()
    assert "Traceback" not in done.stderr


def test_leaf_signed_in_softhsm_verifies_strictly_and_lints_clean(
    ceremony_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out_dir = ceremony_dirs
    csr = make_csr(tmp_path, "web.padlock.test", "api.padlock.test")
    leaf = tmp_path / "leaf.pem"
    done = padlock(
        "ca", "sign", "--config", str(out_dir / "ca.yaml"), "--csr", str(csr),
        "--profile", "tls-server", "--days", "30", "--out", str(leaf),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    verify = subprocess.run(
        ["openssl", "verify", "-x509_strict", "-CAfile", str(out_dir / "root.pem"),
         "-untrusted", str(out_dir / "intermediate.pem"), str(leaf)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert verify.stdout.strip().endswith(": OK")

    from padlock.ca import lintgate

    for path in (out_dir / "root.pem", out_dir / "intermediate.pem", out_dir / "ocsp.pem", leaf):
        der = x509.load_pem_x509_certificate(path.read_bytes()).public_bytes(
            serialization.Encoding.DER
        )
        errors = lintgate.blocking(lintgate.pkilint_findings(der, cabf_serverauth=False))
        assert not errors, f"{path.name}: {errors}"


def test_sign_refuses_a_weak_key_with_the_policy_message(
    ceremony_dirs: tuple[Path, Path], tmp_path: Path
) -> None:
    _, out_dir = ceremony_dirs
    done = subprocess.run(
        ["openssl", "req", "-new", "-newkey", "rsa:1024", "-nodes", "-keyout", "/dev/null",
         "-subj", "/CN=weak.padlock.test", "-addext", "subjectAltName=DNS:weak.padlock.test",
         "-out", str(tmp_path / "weak.csr")],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    done = padlock(
        "ca", "sign", "--config", str(out_dir / "ca.yaml"), "--csr", str(tmp_path / "weak.csr"),
        "--out", str(tmp_path / "weak.pem"),
    )  # fmt: skip
    assert done.returncode == 2
    assert "RSA" in done.stderr and "2048" in done.stderr
    assert not (tmp_path / "weak.pem").exists()
