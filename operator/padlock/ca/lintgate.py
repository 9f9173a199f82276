"""The lint gate: no certificate leaves the CA before it passes its checks.

Called by `padlock.ca.pipeline` on every freshly signed certificate, before the ledger commit.
Two layers:

1. `structural_findings()` — padlock's own checks, in-process and cheap: the certificate is
   exactly what was asked for (public key, SANs, subject, validity, serial), carries the
   profile's extensions, chains to the issuing CA (name, AKI, a real signature check against
   the CA's public key — which also catches a faulty HSM signature).
2. pkilint (RFC 5280 validators; CA/Browser Forum TLS BR validators for `tls-server` when
   `lint.cabf_serverauth` is set), run in a process pool so several certificates are linted in
   parallel and the event loop never waits on it. Each worker builds its validators once.

A finding of severity ERROR or FATAL refuses the certificate; warnings are returned for the
audit record but do not block. The pool uses the `forkserver` start method: forking a
process that holds a PKCS#11 session is undefined behaviour in most modules.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
from collections.abc import Sequence
from typing import Any

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import CertificatePublicKeyTypes
from cryptography.x509.oid import ExtensionOID

from padlock.ca import lintpool
from padlock.pki import lint as pki_lint
from padlock.pki import profiles

SIGNATURE = "signature"
"""The code of the structural finding "the signature does not verify with the issuing CA's
key"; without it the certificate's signature was verified (the ledger relies on that)."""


@dataclasses.dataclass(frozen=True)
class Finding:
    """One lint finding. `linter` is `padlock` (own checks), `pkilint-pkix` or
    `pkilint-cabf`; `severity` uses pkilint's names (FATAL, ERROR, WARNING, NOTICE, INFO)."""

    linter: str
    severity: str
    code: str
    message: str = ""
    waiver: str | None = None
    """Why padlock does not block on this finding (see padlock.pki.lint), or None."""

    @property
    def blocking(self) -> bool:
        return self.severity in pki_lint.BLOCKING_SEVERITIES and self.waiver is None

    def as_dict(self) -> dict[str, str]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


@dataclasses.dataclass(frozen=True)
class Expected:
    """What the certificate must contain: the request after policy, as the pipeline built it."""

    profile: profiles.Profile
    public_key: CertificatePublicKeyTypes
    subject: x509.Name
    sans: tuple[x509.GeneralName, ...]
    serial: int
    not_before: datetime.datetime
    not_after: datetime.datetime


def _spki(key: CertificatePublicKeyTypes) -> bytes:
    return key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def _extensions(cert: x509.Certificate) -> dict[x509.ObjectIdentifier, x509.Extension[Any]]:
    """The certificate's extensions by OID, read once (`get_extension_for_class` walks the
    list on every call). RFC 5280 §4.2: an extension appears at most once; `cryptography`
    refuses to parse a certificate that repeats one."""
    return {extension.oid: extension for extension in cert.extensions}


def structural_findings(
    cert: x509.Certificate, issuer: x509.Certificate, expected: Expected
) -> list[Finding]:
    """padlock's own checks of a signed certificate against the request and the issuer."""
    out: list[Finding] = []

    def error(code: str, message: str) -> None:
        out.append(Finding("padlock", "ERROR", code, message))

    if cert.version is not x509.Version.v3:
        error("version", "certificate is not X.509 v3 (RFC 5280 §4.1.2.1)")
    if cert.serial_number != expected.serial:
        error("serial", f"serial {cert.serial_number:#x} is not the drawn {expected.serial:#x}")
    if _spki(cert.public_key()) != _spki(expected.public_key):
        error("public_key", "subjectPublicKeyInfo is not the CSR's public key")
    if cert.subject != expected.subject:
        error("subject", f"subject {cert.subject.rfc4514_string()!r} is not the requested one")
    if cert.issuer != issuer.subject:
        # RFC 5280 §4.1.2.4: issuer MUST equal the issuing CA's subject.
        error("issuer_name", "issuer name is not the issuing CA's subject (RFC 5280 §4.1.2.4)")
    if (cert.not_valid_before_utc, cert.not_valid_after_utc) != (
        expected.not_before.replace(microsecond=0),
        expected.not_after.replace(microsecond=0),
    ):
        error("validity", "validity period is not the one the pipeline chose")
    if cert.not_valid_after_utc > issuer.not_valid_after_utc:
        error("validity_beyond_issuer", "notAfter is later than the issuing CA's notAfter")
    try:
        cert.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError) as exc:
        error(SIGNATURE, f"signature does not verify with the issuing CA's key: {exc!r}")
    _check_extensions(cert, _extensions(cert), issuer, expected, error)
    return out


def _check_extensions(
    cert: x509.Certificate,
    extensions: dict[x509.ObjectIdentifier, x509.Extension[Any]],
    issuer: x509.Certificate,
    expected: Expected,
    error: Any,
) -> None:
    profile = expected.profile
    bc = extensions.get(ExtensionOID.BASIC_CONSTRAINTS)
    if bc is None or bc.value.ca != profile.is_ca:
        error("basic_constraints", f"basicConstraints cA must be {profile.is_ca} (§4.2.1.9)")
    ku = extensions.get(ExtensionOID.KEY_USAGE)
    if ku is None:
        error("key_usage", "keyUsage is missing (RFC 5280 §4.2.1.3)")
    elif not profile.is_ca and (ku.value.key_cert_sign or ku.value.crl_sign):
        error("key_usage", "end-entity certificate asserts keyCertSign/cRLSign (§4.2.1.3)")
    eku = extensions.get(ExtensionOID.EXTENDED_KEY_USAGE)
    got_eku = tuple(eku.value) if eku is not None else ()
    if set(got_eku) != set(profile.extended_key_usages):
        error("extended_key_usage", "extendedKeyUsage differs from the profile (§4.2.1.12)")
    san = extensions.get(ExtensionOID.SUBJECT_ALTERNATIVE_NAME)
    got_sans = list(san.value) if san is not None else []
    if sorted(map(repr, got_sans)) != sorted(map(repr, expected.sans)):
        error("subject_alt_name", "subjectAltName differs from the requested names (§4.2.1.6)")
    if san is not None and len(cert.subject) == 0 and not san.critical:
        error("subject_alt_name", "SAN must be critical when the subject is empty (§4.2.1.6)")
    aki = extensions.get(ExtensionOID.AUTHORITY_KEY_IDENTIFIER)
    issuer_ski = _issuer_ski(issuer)
    if aki is None:
        error("authority_key_identifier", "AKI is missing (RFC 5280 §4.2.1.1)")
    elif issuer_ski is not None and aki.value.key_identifier != issuer_ski:
        error("authority_key_identifier", "AKI does not match the issuer's SKI (§4.2.1.1)")


@functools.lru_cache(maxsize=16)
def _issuer_ski(issuer: x509.Certificate) -> bytes | None:
    """The issuing CA's subjectKeyIdentifier (RFC 5280 §4.2.1.2), read once per CA."""
    try:
        return issuer.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return None


# --- pkilint, in worker processes ----------------------------------------------------------


def pkilint_findings(der: bytes, cabf_serverauth: bool) -> list[Finding]:
    """pkilint on one DER certificate (in whatever process calls it), through
    `padlock.pki.lint`, which re-checks and waives pkilint's known false positives for a
    private PKI (spiffe:// URIs, wildcards, single-label names)."""
    return [
        Finding(f"pkilint-{f.linter}", f.severity, f.code, f.message or f.path, f.waiver)
        for f in pki_lint.lint_certificate(der, cabf_serverauth=cabf_serverauth)
    ]


class LintGate:
    """Lints certificates: own checks in the caller, pkilint in `padlock.ca.lintpool`'s worker
    processes (each warmed up at start, the CABF tree too when `cabf_serverauth` is set).

    `processes=0` runs pkilint in a thread instead (for tests that need no parallelism).
    `enabled=False` keeps only the structural checks (bench "lint off" and emergencies).
    """

    def __init__(self, *, enabled: bool, cabf_serverauth: bool, processes: int) -> None:
        self.enabled = enabled
        self.cabf_serverauth = cabf_serverauth
        self.pool: lintpool.LintPool[list[Finding]] | None = None
        if enabled and processes > 0:
            self.pool = lintpool.LintPool(
                pkilint_findings,
                processes,
                warm_up=functools.partial(pki_lint.warm_up, cabf_serverauth=cabf_serverauth),
            )

    async def pkilint(self, cert: x509.Certificate, profile: profiles.Profile) -> list[Finding]:
        """pkilint findings for `cert`; [] when the gate is disabled. Raises (so the
        certificate is not released) when it could not be linted: `lintpool.LintUnavailable`,
        `lintpool.LintFailed`."""
        if not self.enabled:
            return []
        der = cert.public_bytes(serialization.Encoding.DER)
        cabf = self.cabf_serverauth and profile.name == profiles.TLS_SERVER.name
        if self.pool is None:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, pkilint_findings, der, cabf)
        return await self.pool.lint(der, cabf)

    def close(self) -> None:
        """Stop the pkilint workers; safe from any thread (the CA app closes it in one)."""
        if self.pool is not None:
            self.pool.close()
            self.pool = None


def blocking(findings: Sequence[Finding]) -> list[Finding]:
    """The findings that refuse a certificate."""
    return [f for f in findings if f.blocking]
