"""The offline key ceremony: make the root CA, then the HSM-held intermediate it signs once.

Called by `padlock ca init-root` / `padlock ca init-intermediate`, by `make up` (first run
under `.padlock/`) and by test fixtures that need a whole CA in a temp dir.

The root key is a software key, PKCS#8-encrypted with a passphrase, that never goes near the
cluster: only its certificate is deployed. The intermediate key, and the delegated OCSP
responder key (RFC 6960 §4.2.2.2), are generated inside the PKCS#11 token as sensitive,
non-extractable objects; the root signs the intermediate, the intermediate signs the responder
certificate. The result is a directory holding `intermediate.pem`, `chain.pem`
(intermediate + root), `root.pem`, `ocsp.pem`, and `ca.yaml` for `padlock ca serve`.
"""

from __future__ import annotations

import dataclasses
import datetime
import os
from pathlib import Path

from cryptography import x509
from cryptography.x509.oid import NameOID

from padlock.ca import config as ca_config
from padlock.keys import base, software
from padlock.keys.pkcs11 import Token
from padlock.pki import pem, profiles, serials
from padlock.pki.algorithms import KeyAlgorithm

ROOT_KEY_FILE = "root-key.pem"
ROOT_CERT_FILE = "root.pem"
INTERMEDIATE_FILE = "intermediate.pem"
CHAIN_FILE = "chain.pem"
OCSP_CERT_FILE = "ocsp.pem"
CONFIG_FILE = "ca.yaml"

# Backdate notBefore a little so clients with a slightly slow clock accept a fresh CA.
_BACKDATE = datetime.timedelta(minutes=5)


class CeremonyError(Exception):
    """A ceremony step cannot go on; the message says what to fix."""


@dataclasses.dataclass(frozen=True)
class RootResult:
    certificate: x509.Certificate
    cert_path: Path
    key_path: Path


@dataclasses.dataclass(frozen=True)
class IntermediateResult:
    certificate: x509.Certificate
    ocsp_certificate: x509.Certificate
    config_path: Path


def _utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC).replace(microsecond=0)


def _name(common_name: str, organization: str | None) -> x509.Name:
    attrs = []
    if organization:
        attrs.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organization))
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


def _write_private(path: Path, data: bytes) -> None:
    """Create a file readable by its owner only, refusing to overwrite."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(data)


def _pem(*certs: x509.Certificate) -> bytes:
    return pem.certificates_to_pem(list(certs))


def init_root(
    directory: Path,
    passphrase: bytes,
    *,
    common_name: str = "padlock Root CA",
    organization: str | None = "padlock",
    algorithm: KeyAlgorithm = KeyAlgorithm.EC_P384,
    lifetime: datetime.timedelta = datetime.timedelta(days=20 * 365),
    now: datetime.datetime | None = None,
) -> RootResult:
    """Make a root key (encrypted PKCS#8) and its self-signed certificate in `directory`."""
    if len(passphrase) < 12:
        raise CeremonyError("the root passphrase must be at least 12 characters long")
    directory.mkdir(parents=True, exist_ok=True)
    key_path, cert_path = directory / ROOT_KEY_FILE, directory / ROOT_CERT_FILE
    for path in (key_path, cert_path):
        if path.exists():
            raise CeremonyError(f"{path} already exists: refusing to replace a root CA")
    signer = software.generate("root", algorithm)
    start = (now or _utc_now()) - _BACKDATE
    subject = _name(common_name, organization)
    cert = profiles.build_certificate(
        profiles.ROOT_CA,
        subject=subject,
        public_key=signer.public_key(),
        sans=(),
        issuer=None,
        issuer_key=signer.private_key(),
        serial=serials.new_serial(),
        not_before=start,
        not_after=start + lifetime,
    )
    _write_private(key_path, signer.to_pem(passphrase))
    cert_path.write_bytes(_pem(cert))
    return RootResult(certificate=cert, cert_path=cert_path, key_path=key_path)


def load_root(directory: Path, passphrase: bytes) -> tuple[x509.Certificate, base.Signer]:
    """The root certificate and its (decrypted, in-memory) signer."""
    cert_path, key_path = directory / ROOT_CERT_FILE, directory / ROOT_KEY_FILE
    for path in (cert_path, key_path):
        if not path.exists():
            raise CeremonyError(f"{path} is missing: run `padlock ca init-root` first")
    cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    signer = software.load(key_path, passphrase, label="root")
    if signer.public_key() != cert.public_key():
        raise CeremonyError(f"{key_path} does not belong to the root certificate {cert_path}")
    return cert, signer


def init_intermediate(
    root_dir: Path,
    passphrase: bytes,
    out_dir: Path,
    *,
    pkcs11: ca_config.Pkcs11Config,
    common_name: str = "padlock Intermediate CA",
    organization: str | None = "padlock",
    algorithm: KeyAlgorithm = KeyAlgorithm.EC_P256,
    lifetime: datetime.timedelta = datetime.timedelta(days=5 * 365),
    ocsp_lifetime: datetime.timedelta = datetime.timedelta(days=90),
    urls: ca_config.UrlConfig | None = None,
    ledger_url: str | None = None,
    now: datetime.datetime | None = None,
) -> IntermediateResult:
    """Generate the intermediate (and OCSP responder) keys in the token, sign them, write
    `out_dir` with the chain and a ready `ca.yaml`."""
    root_cert, root_signer = load_root(root_dir, passphrase)
    out_dir.mkdir(parents=True, exist_ok=True)
    if (out_dir / CONFIG_FILE).exists():
        raise CeremonyError(f"{out_dir / CONFIG_FILE} already exists: refusing to replace it")
    start = (now or _utc_now()) - _BACKDATE
    if start + lifetime > root_cert.not_valid_after_utc:
        lifetime = root_cert.not_valid_after_utc - start
    urls = urls or ca_config.UrlConfig()

    with Token.open(pkcs11.module, pkcs11.token_label, pin_file=pkcs11.pin_file) as token:
        inter_signer = token.generate(pkcs11.key_label, algorithm)
        inter_cert = profiles.build_certificate(
            profiles.INTERMEDIATE_CA,
            subject=_name(common_name, organization),
            public_key=inter_signer.public_key(),
            sans=(),
            issuer=root_cert,
            issuer_key=root_signer.private_key(),
            serial=serials.new_serial(),
            not_before=start,
            not_after=start + lifetime,
        )
        ocsp_signer = token.generate(pkcs11.ocsp_key_label, algorithm)
        # RFC 6960 §4.2.2.2: the delegated responder certificate is issued directly by the
        # CA whose certificates it answers for, with id-kp-OCSPSigning and (§4.2.2.2.1)
        # id-pkix-ocsp-nocheck.
        ocsp_cert = profiles.build_certificate(
            profiles.OCSP_RESPONDER,
            subject=_name(f"{common_name} OCSP Responder", organization),
            public_key=ocsp_signer.public_key(),
            sans=(),
            issuer=inter_cert,
            issuer_key=inter_signer.private_key(),
            serial=serials.new_serial(),
            not_before=start,
            not_after=min(start + ocsp_lifetime, inter_cert.not_valid_after_utc),
        )

    (out_dir / INTERMEDIATE_FILE).write_bytes(_pem(inter_cert))
    (out_dir / CHAIN_FILE).write_bytes(_pem(inter_cert, root_cert))
    (out_dir / ROOT_CERT_FILE).write_bytes(_pem(root_cert))
    (out_dir / OCSP_CERT_FILE).write_bytes(_pem(ocsp_cert))
    config = ca_config.CAConfig(
        chain_file=Path(CHAIN_FILE),
        pkcs11=pkcs11,
        urls=urls,
        ledger=ca_config.LedgerSettings(url=ledger_url or ca_config.LedgerSettings().url),
    )
    config_path = out_dir / CONFIG_FILE
    ca_config.dump(config, config_path)
    return IntermediateResult(
        certificate=inter_cert, ocsp_certificate=ocsp_cert, config_path=config_path
    )
