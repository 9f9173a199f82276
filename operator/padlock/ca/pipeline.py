"""The issuance pipeline: parse → policy → serial → build → sign in the HSM → lint → commit.

Called by `padlock.services.ca_http` for every `POST /v1/sign` (and later by the ACME
front end). Policy (`padlock.pki.policy`) is kept apart from signing (`padlock.pki.profiles`);
this module only orders the steps, keeps blocking work off the event loop and guarantees:

- Idempotency: the same idempotency key returns the same certificate, never a second one.
  The ledger is asked before anything is signed; if two requests race, the ledger's UNIQUE
  constraint settles it and the loser returns the winner's certificate. A key reused for a
  different CSR (other public key, names or profile) is refused (`IdempotencyConflict`).
- Serials: 159 random bits (`padlock.pki.serials`); a collision in the ledger draws a fresh
  serial and signs again (RFC 5280 §4.1.2.2: unique per CA).
- Lint gate: every signed certificate passes `padlock.ca.lintgate` before it is committed;
  a failure is audited, counted, and nothing is released.
- Atomicity: the certificate is returned only after the ledger commit (certificate row,
  audit event and its pre-signed "good" OCSP response in one transaction), so a client never
  holds a certificate the ledger lacks.
- Group commit (`padlock.ca.group_commit`): concurrent requests that reach the commit share
  one ledger transaction; if that transaction fails, every request of the batch fails (503)
  and nothing of it is committed.
- The OCSP response is pre-signed (`presign`) before the commit, since a new certificate's
  status can only be "good"; if that fails, the certificate is committed without one and the
  `after_issue` hooks run as before. Hook failures are logged, never un-issue a certificate.

Blocking work runs in a thread pool (`signing_threads`), pkilint in a process pool. The HSM
step is batched like the commit (`signing`, a `group_commit.Batcher`): requests queued
together are signed, structurally linted (which verifies the signature with the CA's key) and
OCSP-pre-signed in ONE thread-pool call, each with its own outcome; the token signs one
request at a time anyway (one session, one lock), and a hop costs 50-150 µs of CPU (see
docs/design/20261127.ca-cpu.md). Recently seen idempotency keys are answered from memory
(`RECENT_KEYS`); the ledger stays the source of truth for every key not there.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import dataclasses
import datetime
import functools
import hashlib
import ipaddress
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization

from padlock import metrics
from padlock.ca import authority as authority_mod
from padlock.ca import config as ca_config
from padlock.ca import errors, group_commit, hsm, lintgate
from padlock.keys import base as keys_base
from padlock.ledger import errors as ledger_errors
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from padlock.pki import csr as pki_csr
from padlock.pki import names as pki_names
from padlock.pki import policy as pki_policy
from padlock.pki import profiles, serials
from padlock.pki.errors import PolicyError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Profiles a client may ask for over the API, and the ledger's name for each.
ISSUABLE: Mapping[str, records.CertType] = {
    profiles.TLS_SERVER.name: records.CertType.TLS_SERVER,
    profiles.TLS_CLIENT.name: records.CertType.TLS_CLIENT,
    profiles.SPIFFE_SVID.name: records.CertType.SPIFFE_SVID,
}

#: Fresh serials to try before giving up (a collision at 159 random bits means a broken RNG).
MAX_SERIAL_ATTEMPTS = 4

#: Backdating of notBefore, so relying parties with a slightly slow clock accept a fresh cert.
BACKDATE = datetime.timedelta(seconds=60)

#: The certificate builder (a seam: tests substitute a faulty one to prove the lint gate).
Builder = Callable[..., x509.Certificate]

#: Runs after a certificate is committed (e.g. pre-signing its "good" OCSP response).
AfterIssue = Callable[["Issued"], Awaitable[None]]

#: Pre-signs the "good" OCSP response of a serial before its commit (blocking: HSM); None
#: when the CA has no responder key.
PreSign = Callable[[int], records.OcspCacheEntry | None]

#: Most requests signed in one thread-pool call (bounds the wait of the last of a batch).
MAX_SIGN_BATCH = 16

#: Idempotency keys whose certificate is kept in memory (a record is immutable once committed).
RECENT_KEYS = 4096


@dataclasses.dataclass(frozen=True)
class SignRequest:
    """One `POST /v1/sign`, fields already type-checked by the front end."""

    csr_pem: str
    profile: str
    lifetime_seconds: int
    idempotency_key: str
    requester: str


@dataclasses.dataclass(frozen=True)
class Issued:
    """A committed certificate. `replayed` is True when the idempotency key already had it."""

    certificate: x509.Certificate
    certificate_pem: str
    serial: int
    profile: str
    requester: str
    replayed: bool
    ocsp_presigned: bool = False
    """True when its "good" OCSP response was committed with it (no hook needs to sign one)."""


@dataclasses.dataclass(frozen=True)
class _Signed:
    """One signing attempt: the certificate, its structural lint findings and, unless those
    refuse it, its pre-signed "good" OCSP response."""

    certificate: x509.Certificate
    findings: list[lintgate.Finding]
    ocsp: records.OcspCacheEntry | None
    signature_verified: bool
    """The structural lint verified the signature with the issuing CA's public key."""


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def issuance_policy(
    policy: ca_config.PolicyConfig, allowed_profiles: Sequence[str] = tuple(ISSUABLE)
) -> pki_policy.IssuancePolicy:
    """The pki policy object for the config's `policy:` section."""
    return pki_policy.IssuancePolicy(
        max_lifetime=datetime.timedelta(seconds=policy.max_lifetime_seconds),
        allowed_profiles=frozenset(allowed_profiles),
        permitted_dns_domains=tuple(policy.allowed_dns_suffixes),
        excluded_dns_domains=tuple(policy.excluded_dns_suffixes),
        permitted_ip_networks=tuple(ipaddress.ip_network(n) for n in policy.allowed_ip_networks),
        permitted_uri_prefixes=tuple(policy.allowed_uri_prefixes),
    )


class Pipeline:
    """Issues certificates for one CA. Thread-safe; one instance per process."""

    def __init__(
        self,
        *,
        authority: authority_mod.Authority,
        key: hsm.IssuingKey,
        ledger: ledger_mod.Ledger,
        lint: lintgate.LintGate,
        policy: pki_policy.IssuancePolicy,
        executor: concurrent.futures.Executor,
        issuable: Mapping[str, records.CertType] = ISSUABLE,
        build: Builder = profiles.build_certificate,
        after_issue: Sequence[AfterIssue] = (),
        now: Callable[[], datetime.datetime] = utc_now,
        new_serial: Callable[[], int] = serials.new_serial,
        presign: PreSign | None = None,
        max_batch: int = group_commit.MAX_BATCH,
    ) -> None:
        self.authority = authority
        self.key = key
        self.ledger = ledger
        self.lint = lint
        self.policy = policy
        self.executor = executor
        self.issuable = issuable
        self.after_issue = list(after_issue)
        self.presign = presign
        self.committer = group_commit.committer(ledger, executor, max_batch=max_batch)
        self.lookups = group_commit.key_lookup(ledger, authority.ca_id, executor)
        self.signing: group_commit.Batcher[tuple[pki_policy.Approved, int], _Signed | Exception]
        self.signing = group_commit.Batcher(
            self._sign_batch, executor, max_batch=MAX_SIGN_BATCH, name="padlock-sign"
        )
        self._build = build
        self._now = now
        self._new_serial = new_serial
        self._recent: collections.OrderedDict[str, records.CertificateRecord] = (
            collections.OrderedDict()
        )

    async def close(self) -> None:
        """Finish the commit in flight (at shutdown, before the thread pool closes)."""
        await self.lookups.close()
        await self.signing.close()
        await self.committer.close()

    def _remember(self, record: records.CertificateRecord) -> None:
        if record.idempotency_key is None:
            return
        self._recent[record.idempotency_key] = record
        self._recent.move_to_end(record.idempotency_key)
        if len(self._recent) > RECENT_KEYS:
            self._recent.popitem(last=False)

    async def _find_by_key(self, key: str) -> records.CertificateRecord | None:
        """The certificate already committed under `key`: from memory if this process saw
        it, else from the ledger."""
        record = self._recent.get(key)
        if record is None:
            record = await self._batched(self.lookups, key)
            if record is not None:
                self._remember(record)
        return record

    async def _run(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(func, *args, **kwargs))

    async def _ledger(self, func: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return await self._run(func, *args, **kwargs)
        except ledger_errors.LedgerError:
            raise
        except (ValueError, TypeError):
            raise
        except Exception as exc:  # database driver errors: connection lost, disk full, ...
            log.exception("ledger call %s failed", getattr(func, "__name__", func))
            raise errors.LedgerUnavailable(f"the ledger is unavailable: {exc}") from None

    async def audit_refusal(self, requester: str, code: str, message: str) -> None:
        """Record a refused request (bad input, policy) as an audit event, nothing else."""
        details: dict[str, Any] = {"ca_id": self.authority.ca_id, "code": code}
        details["message"] = message[:500]
        await self._ledger(self.ledger.append_audit, "sign.refused", requester or "-", details)

    async def issue(self, request: SignRequest) -> Issued:
        """Run the whole pipeline for one request; see the module docstring for guarantees."""
        started = time.perf_counter()
        cert_type = self.issuable.get(request.profile)
        if cert_type is None:
            raise errors.BadRequest(
                f"unknown profile {request.profile!r} "
                f"(this CA issues: {', '.join(sorted(self.issuable))})",
                code="unknown-profile",
            )
        try:
            csr = pki_csr.load_csr(request.csr_pem.encode("utf-8", "replace"))
        except PolicyError as exc:
            raise errors.BadRequest(exc.message, code=exc.code.value) from None
        existing = await self._find_by_key(request.idempotency_key)
        if existing is not None:
            # A replay needs no signature: it is answered even while the HSM is away.
            return self._replay(existing, request, _csr_key(csr), _requested_sans(csr))
        if not self.key.healthy:
            # Refuse before anything is signed or written while the HSM is away.
            raise errors.HsmUnavailable(f"the HSM is unavailable: {self.key.last_error}")
        approved = self._approve(csr, request)
        issued = await self._sign_lint_commit(approved, cert_type, request)
        metrics.CA_ISSUANCE_SECONDS.observe(time.perf_counter() - started)
        if not issued.replayed:
            metrics.CA_ISSUED.labels(request.profile).inc()
            for hook in self.after_issue:
                try:
                    await hook(issued)
                except Exception:
                    log.exception("after-issue hook %r failed for %x", hook, issued.serial)
        return issued

    def _approve(
        self, csr: x509.CertificateSigningRequest, request: SignRequest
    ) -> pki_policy.Approved:
        if request.lifetime_seconds <= 0:
            raise errors.BadRequest(
                f"lifetime_seconds must be positive, got {request.lifetime_seconds}",
                code="invalid-lifetime",
            )
        now = self._now().replace(microsecond=0)
        not_before = now - BACKDATE
        not_after = not_before + datetime.timedelta(seconds=request.lifetime_seconds)
        try:
            return pki_policy.check_request(
                pki_policy.IssuanceRequest(
                    csr=csr,
                    profile=request.profile,
                    not_before=not_before,
                    not_after=not_after,
                    common_name=pki_csr.common_name(csr),
                    issuer_not_after=self.authority.certificate.not_valid_after_utc,
                ),
                self.policy,
            )
        except PolicyError as exc:
            raise errors.BadRequest(exc.message, code=exc.code.value) from None

    async def _sign_lint_commit(
        self, approved: pki_policy.Approved, cert_type: records.CertType, request: SignRequest
    ) -> Issued:
        for _attempt in range(MAX_SERIAL_ATTEMPTS):
            serial = self._new_serial()
            signed = await self.signing.submit((approved, serial))
            if isinstance(signed, BaseException):
                raise signed
            metrics.CA_SIGNATURES.labels(request.profile).inc()
            await self._gate(signed, approved, serial, request)
            outcome = await self._commit(
                ledger_mod.Issuance(
                    self.authority.ca_id,
                    signed.certificate,
                    cert_type=cert_type,
                    requester=request.requester,
                    idempotency_key=request.idempotency_key,
                    ocsp=signed.ocsp,
                    # The structural lint verified the signature with this CA's certificate
                    # (it refuses otherwise): the ledger need not verify it a second time.
                    signature_verified=signed.signature_verified,
                )
            )
            if isinstance(outcome, ledger_errors.SerialCollision):
                metrics.CA_SERIAL_COLLISIONS.inc()
                log.warning("serial %x already used by this CA; signing again", serial)
                continue
            if isinstance(outcome, ledger_errors.IdempotencyKeyReused):
                # A concurrent request with the same key won the race; ours is discarded.
                return self._replay(outcome.existing, request, approved.public_key, approved.sans)
            if isinstance(outcome, Exception):
                raise outcome
            self._remember(outcome)
            return Issued(
                signed.certificate,
                outcome.cert_pem,
                serial,
                request.profile,
                request.requester,
                False,
                ocsp_presigned=signed.ocsp is not None,
            )
        raise errors.CAError(
            f"{MAX_SERIAL_ATTEMPTS} fresh serials in a row were already used; "
            "the random number generator is broken",
            code="serial-exhausted",
        )

    def _sign_batch(
        self, items: list[tuple[pki_policy.Approved, int]]
    ) -> list[_Signed | Exception]:
        """Blocking, in one worker thread: `_sign_check_presign` for every request queued
        together. The token signs one request at a time anyway (one session, one lock), so a
        batch costs no parallelism and saves a thread-pool hop (~50-150 µs of CPU) and a
        future per certificate. Each request gets its own result or error."""
        out: list[_Signed | Exception] = []
        for approved, serial in items:
            try:
                out.append(self._sign_check_presign(approved, serial))
            except Exception as exc:  # delivered to that request alone
                out.append(exc)
        return out

    def _sign_check_presign(self, approved: pki_policy.Approved, serial: int) -> _Signed:
        """Blocking, in ONE worker thread (one thread-pool hop per attempt instead of three):
        build and sign in the HSM, run the structural lint (which verifies the signature with
        the issuing CA's key), then pre-sign the "good" OCSP response unless the structural
        lint already refused the certificate."""
        cert = self.key.sign_with(functools.partial(self._sign, approved, serial))
        findings = lintgate.structural_findings(
            cert,
            self.authority.certificate,
            lintgate.Expected(
                profile=approved.profile,
                public_key=approved.public_key,
                subject=approved.subject,
                sans=approved.sans,
                serial=serial,
                not_before=approved.not_before,
                not_after=approved.not_after,
            ),
        )
        ocsp = None if lintgate.blocking(findings) else self._presign(serial)
        return _Signed(
            cert,
            findings,
            ocsp,
            signature_verified=not any(f.code == lintgate.SIGNATURE for f in findings),
        )

    def _presign(self, serial: int) -> records.OcspCacheEntry | None:
        """The serial's "good" OCSP response, signed before the commit (blocking: HSM); None
        (logged) if the responder key fails: the certificate is still issued, the
        after-issue hook retries."""
        if self.presign is None:
            return None
        try:
            return self.presign(serial)
        except Exception:
            log.exception("pre-signing the OCSP response of %x failed", serial)
            return None

    async def _commit(self, item: ledger_mod.Issuance) -> ledger_mod.IssuanceOutcome:
        """Record `item` in the next group commit; LedgerUnavailable if its batch failed."""
        try:
            return await self._batched(self.committer, item)
        except errors.LedgerUnavailable as exc:
            raise errors.LedgerUnavailable(f"{exc}; nothing of its batch was committed") from None

    @staticmethod
    async def _batched(batcher: group_commit.Batcher[Any, T], item: Any) -> T:
        """`batcher.submit(item)`, with database driver errors as LedgerUnavailable."""
        try:
            return await batcher.submit(item)
        except (ledger_errors.LedgerError, ValueError, TypeError):
            raise
        except Exception as exc:  # database driver errors: connection lost, disk full, ...
            raise errors.LedgerUnavailable(f"the ledger is unavailable: {exc}") from None

    def _sign(
        self, approved: pki_policy.Approved, serial: int, issuer_key: keys_base.SigningKey
    ) -> x509.Certificate:
        return self._build(
            approved.profile,
            subject=approved.subject,
            public_key=approved.public_key,
            sans=approved.sans,
            issuer=self.authority.certificate,
            issuer_key=issuer_key,
            serial=serial,
            not_before=approved.not_before,
            not_after=approved.not_after,
            endpoints=self.authority.endpoints(serial),
        )

    async def _gate(
        self,
        signed: _Signed,
        approved: pki_policy.Approved,
        serial: int,
        request: SignRequest,
    ) -> None:
        """Refuse (audit, count, raise LintRefused) a certificate with a blocking finding of
        the structural lint (already run with the signature) or of pkilint (run here)."""
        cert = signed.certificate
        findings = list(signed.findings)
        findings += await self.lint.pkilint(cert, approved.profile)
        refused = lintgate.blocking(findings)
        if not refused:
            return
        for linter in sorted({f.linter for f in refused}):
            metrics.CA_LINT_FAILURES.labels(request.profile, linter).inc()
        pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        await self._ledger(
            self.ledger.append_audit,
            "certificate.lint_refused",
            request.requester,
            {
                "ca_id": self.authority.ca_id,
                "serial": f"{serial:x}",
                "profile": request.profile,
                "idempotency_key": request.idempotency_key,
                "findings": [f.as_dict() for f in refused],
                # Signed but never released: kept for the investigation, as CT would.
                "certificate_pem": pem,
            },
        )
        summary = "; ".join(f"{f.linter} {f.code}: {f.message}" for f in refused[:5])
        raise errors.LintRefused(
            f"the signed certificate failed the lint gate and was not released: {summary}",
            [f.as_dict() for f in refused],
        )

    def _replay(
        self,
        existing: records.CertificateRecord,
        request: SignRequest,
        public_key: Any,
        sans: Sequence[x509.GeneralName] | None,
    ) -> Issued:
        """The certificate already issued under this idempotency key, if the request matches."""
        cert = existing.certificate
        reasons = []
        if _spki_sha256(public_key) != existing.public_key_sha256:
            reasons.append("another public key")
        if existing.cert_type != self.issuable.get(request.profile):
            reasons.append(f"profile {existing.cert_type.value}, not {request.profile}")
        if sans is None or sorted(map(repr, sans)) != sorted(map(repr, _sans(cert))):
            reasons.append("other subjectAltNames")
        if reasons:
            raise errors.IdempotencyConflict(
                f"idempotency key {request.idempotency_key!r} was already used for certificate "
                f"{serials.serial_hex(existing.serial)} with {', '.join(reasons)}; use a new key "
                "for a new request"
            )
        return Issued(
            cert, existing.cert_pem, existing.serial, request.profile, existing.requester, True
        )


def _spki_sha256(key: Any) -> bytes | None:
    """SHA-256 of the DER SubjectPublicKeyInfo; None for a key `cryptography` cannot load."""
    if key is None:
        return None
    der = key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).digest()


def _sans(cert: x509.Certificate) -> list[x509.GeneralName]:
    try:
        return list(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    except x509.ExtensionNotFound:
        return []


def _csr_key(csr: x509.CertificateSigningRequest) -> Any:
    try:
        return csr.public_key()
    except (ValueError, UnsupportedAlgorithm):
        return None


def _requested_sans(csr: x509.CertificateSigningRequest) -> tuple[x509.GeneralName, ...] | None:
    """The names the CSR asks for, normalised as policy would; None if they are invalid."""
    try:
        return pki_names.validate(pki_csr.requested_names(csr)).general_names()
    except PolicyError:
        return None
