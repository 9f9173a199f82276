"""The demo's revocation step without the shared `make up` stack: a RevocationRequest
(certificateRef, keyCompromise, reissue) turns `openssl ocsp` against the real responder
(`padlock ocsp serve`) from good to revoked within 15 s, and the replacement answers good.

The module's CA (`ca_service`, overriding the conftest's) names the responder in its
certificates (RFC 5280 §4.2.2.1 AIA), as the CA of `make up` does.
"""

from __future__ import annotations

import signal
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from tests.integration.ca import procs
from tests.integration.operator.conftest import (
    PADLOCK,
    CAService,
    Kube,
    OperatorProcess,
    _free_port,
    certificate_yaml,
    eventually,
    issuer_yaml,
)

pytestmark = [pytest.mark.controlplane, pytest.mark.softhsm, pytest.mark.slow]

OCSP_PORT = _free_port()
OCSP_URL = f"http://127.0.0.1:{OCSP_PORT}"


@pytest.fixture(scope="module")
def ca_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[CAService]:
    files = procs.make_isolated_ca(
        tmp_path_factory.mktemp("operator-ocsp-ca"),
        urls={
            "ocsp": f"{OCSP_URL}/",
            "ca_issuers": f"{OCSP_URL}/ca.crt",
            "crl_base": f"{OCSP_URL}/crl",
        },
    )
    service = CAService(files)
    service.start()
    yield service
    service.stop()


def _healthy(proc: subprocess.Popen[bytes], log: Path) -> bool:
    assert proc.poll() is None, log.read_text()[-2000:]
    try:
        with urllib.request.urlopen(f"{OCSP_URL}/healthz", timeout=2) as resp:  # noqa: S310
            return bool(resp.status == 200)
    except OSError:
        return False


@pytest.fixture(scope="module")
def responder(ca_service: CAService) -> Iterator[str]:
    log = ca_service.files.directory / "ocsp.log"
    args = [PADLOCK, "ocsp", "serve", "--config", str(ca_service.files.config_path)]
    args += ["--port", str(OCSP_PORT), "--poll-interval", "0.5"]
    with log.open("ab") as out:
        proc = subprocess.Popen(args, env=ca_service.files.env, stdout=out, stderr=out)
    try:
        eventually(lambda: _healthy(proc, log), 30, "the responder's /healthz")
        yield OCSP_URL
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _write_leaf_and_chain(kube: Kube, tmp_path: Path, tag: str) -> tuple[Path, Path]:
    tls_crt = kube.secret_data("web-tls", "tls.crt")
    assert tls_crt is not None
    chain = x509.load_pem_x509_certificates(tls_crt)
    leaf, issuers = tmp_path / f"leaf-{tag}.pem", tmp_path / f"chain-{tag}.pem"
    leaf.write_bytes(chain[0].public_bytes(serialization.Encoding.PEM))
    issuers.write_bytes(b"".join(c.public_bytes(serialization.Encoding.PEM) for c in chain[1:]))
    return leaf, issuers


def _ocsp(leaf: Path, chain: Path, root: Path, url: str) -> str:
    result = subprocess.run(
        ["openssl", "ocsp", "-issuer", str(chain), "-cert", str(leaf), "-url", url + "/",
         "-CAfile", str(root), "-resp_text"],
        capture_output=True, text=True, check=False, timeout=20,
    )  # fmt: skip
    return result.stdout + result.stderr


def _ocsp_says(word: str, leaf: Path, chain: Path, root: Path, url: str) -> str | None:
    """openssl's whole output once it reports `word` (good, revoked) for `leaf`, else None."""
    out = _ocsp(leaf, chain, root, url)
    return out if f"{leaf}: {word}" in out else None


def _complete(kube: Kube, name: str) -> dict[str, Any] | None:
    body = kube.get("revocationrequests.padlock.dev", name) or {}
    for condition in (body.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "Complete":
            return dict(condition)
    return None


def test_openssl_ocsp_says_revoked_within_15_s_and_the_replacement_is_good(
    kube: Kube,
    operator: OperatorProcess,
    ca_service: CAService,
    responder: str,
    tmp_path: Path,
) -> None:
    root = tmp_path / "root.pem"
    root.write_bytes(ca_service.root_pem)
    kube.apply(issuer_yaml())
    kube.apply(certificate_yaml())
    kube.wait_revision("web", 1)
    leaf, chain = _write_leaf_and_chain(kube, tmp_path, "1")
    good = eventually(
        lambda: _ocsp_says("good", leaf, chain, root, responder),
        30,
        "OCSP good for the issued certificate",
    )
    assert "Response verify OK" in good

    kube.apply(
        """
apiVersion: padlock.dev/v1alpha1
kind: RevocationRequest
metadata: {name: web-key-compromise}
spec:
  certificateRef: {name: web}
  reason: keyCompromise
  reissue: true
"""
    )
    eventually(
        lambda: (c := _complete(kube, "web-key-compromise")) and c["status"] == "True",
        60,
        "RevocationRequest Complete",
    )
    completed = time.monotonic()
    revoked = eventually(
        lambda: _ocsp_says("revoked", leaf, chain, root, responder),
        15,
        "OCSP revoked within 15 s of Complete",
    )
    took = time.monotonic() - completed
    assert "Reason: keyCompromise" in revoked, revoked
    print(f"OCSP said revoked {took:.2f} s after Complete")

    kube.wait_revision("web", 2)
    new_leaf, new_chain = _write_leaf_and_chain(kube, tmp_path, "2")
    eventually(
        lambda: _ocsp_says("good", new_leaf, new_chain, root, responder),
        30,
        "OCSP good for the replacement",
    )
