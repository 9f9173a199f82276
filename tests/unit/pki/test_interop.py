"""Interop: root → intermediate → every leaf profile, checked by tools padlock did not write.

`openssl verify -x509_strict` (with the purpose a relying party would use) and pkilint (its
own CLI where padlock needs no waiver, `padlock.pki.lint` otherwise).
"""

from __future__ import annotations

import datetime
import pathlib
import shutil
import subprocess
import sys

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ed25519, rsa
from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes
from cryptography.hazmat.primitives.serialization import Encoding

from padlock.pki import lint, profiles, serials
from tests.unit.pki.conftest import NOW, Issued, issue, name

pytestmark = pytest.mark.skipif(shutil.which("openssl") is None, reason="needs openssl")

# The openssl -purpose a relying party checks each leaf profile for.
PURPOSES = {
    "tls-server": "sslserver",
    "tls-server-rsa": "sslserver",
    "tls-client": "sslclient",
    "svid": "sslclient",
    "ocsp-responder": "ocsphelper",
}


def write(path: pathlib.Path, cert: x509.Certificate) -> str:
    path.write_bytes(cert.public_bytes(Encoding.PEM))
    return str(path)


def openssl_verify(
    tmp_path: pathlib.Path, root: Issued, intermediate: Issued, leaf: x509.Certificate, *extra: str
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            "openssl", "verify", "-x509_strict",
            "-attime", str(int(NOW.timestamp())),
            *extra,
            "-CAfile", write(tmp_path / "root.pem", root.cert),
            "-untrusted", write(tmp_path / "intermediate.pem", intermediate.cert),
            write(tmp_path / "leaf.pem", leaf),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip


@pytest.mark.parametrize("profile", sorted(PURPOSES))
def test_openssl_verifies_each_leaf_strictly(
    tmp_path: pathlib.Path,
    root: Issued,
    intermediate: Issued,
    leaves: dict[str, Issued],
    profile: str,
) -> None:
    result = openssl_verify(
        tmp_path, root, intermediate, leaves[profile].cert, "-purpose", PURPOSES[profile]
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip().endswith("leaf.pem: OK")


def test_openssl_refuses_a_server_leaf_for_client_purpose(
    tmp_path: pathlib.Path, root: Issued, intermediate: Issued, leaves: dict[str, Issued]
) -> None:
    # Proves the purpose check above can fail: EKU serverAuth only.
    result = openssl_verify(
        tmp_path, root, intermediate, leaves["tls-server"].cert, "-purpose", "sslclient"
    )
    assert result.returncode != 0
    assert "unsuitable certificate purpose" in result.stdout + result.stderr


def test_openssl_refuses_the_leaf_without_the_intermediate(
    tmp_path: pathlib.Path, root: Issued, leaves: dict[str, Issued]
) -> None:
    result = subprocess.run(
        [
            "openssl", "verify", "-x509_strict", "-attime", str(int(NOW.timestamp())),
            "-CAfile", write(tmp_path / "root.pem", root.cert),
            write(tmp_path / "leaf.pem", leaves["tls-client"].cert),
        ],
        capture_output=True,
        text=True,
        check=False,
    )  # fmt: skip
    assert result.returncode != 0
    assert "unable to get local issuer certificate" in result.stdout + result.stderr


@pytest.mark.slow  # one pkilint process start (~2 s) per certificate
@pytest.mark.parametrize("which", ["root", "intermediate", "tls-client", "ocsp-responder"])
def test_pkilint_cli_reports_no_error_without_any_waiver(
    tmp_path: pathlib.Path,
    root: Issued,
    intermediate: Issued,
    leaves: dict[str, Issued],
    which: str,
) -> None:
    cert = {"root": root, "intermediate": intermediate}.get(which) or leaves[which]
    path = write(tmp_path / f"{which}.pem", cert.cert)
    cli = pathlib.Path(sys.executable).parent / "lint_pkix_cert"
    result = subprocess.run(
        [str(cli), "lint", "-s", "ERROR", path], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    "which",
    [
        "root",
        "intermediate",
        "tls-server",
        "tls-server-rsa",
        "tls-client",
        "svid",
        "ocsp-responder",
    ],
)
def test_pkilint_reports_no_blocking_finding(
    root: Issued, intermediate: Issued, leaves: dict[str, Issued], which: str
) -> None:
    cert = {"root": root, "intermediate": intermediate}.get(which) or leaves[which]
    findings = lint.lint_certificate(
        cert.cert.public_bytes(Encoding.DER), cabf_serverauth=which.startswith("tls-server")
    )
    assert lint.blocking(findings) == []


def _chain_with_issuer_keys(
    root_key: CertificateIssuerPrivateKeyTypes, intermediate_key: CertificateIssuerPrivateKeyTypes
) -> tuple[Issued, Issued, Issued]:
    root_cert = profiles.build_certificate(
        profiles.ROOT_CA,
        subject=name("alt root"),
        public_key=root_key.public_key(),
        sans=(),
        issuer=None,
        issuer_key=root_key,
        serial=serials.new_serial(),
        not_before=NOW - datetime.timedelta(days=1),
        not_after=NOW + datetime.timedelta(days=365),
    )
    root = Issued(root_cert, root_key)
    intermediate = issue(
        profiles.INTERMEDIATE_CA,
        root,
        subject=name("alt intermediate"),
        sans=(),
        key=intermediate_key,
        endpoints=profiles.Endpoints(),
    )
    leaf = issue(profiles.TLS_SERVER, intermediate, sans=[x509.DNSName("alt.padlock.test")])
    return root, intermediate, leaf


@pytest.mark.parametrize(
    ("root_key", "intermediate_key"),
    [
        pytest.param(
            rsa.generate_private_key(public_exponent=65537, key_size=3072),
            rsa.generate_private_key(public_exponent=65537, key_size=2048),
            id="rsa-3072-root/rsa-2048-intermediate",
        ),
        pytest.param(
            ed25519.Ed25519PrivateKey.generate(),
            ed25519.Ed25519PrivateKey.generate(),
            id="ed25519",
        ),
    ],
)
def test_other_issuer_key_types_verify_and_lint_clean(
    tmp_path: pathlib.Path,
    root_key: CertificateIssuerPrivateKeyTypes,
    intermediate_key: CertificateIssuerPrivateKeyTypes,
) -> None:
    root, intermediate, leaf = _chain_with_issuer_keys(root_key, intermediate_key)
    result = openssl_verify(tmp_path, root, intermediate, leaf.cert, "-purpose", "sslserver")
    assert result.returncode == 0, result.stdout + result.stderr
    for cert in (root.cert, intermediate.cert, leaf.cert):
        assert lint.blocking(lint.lint_certificate(cert.public_bytes(Encoding.DER))) == []
