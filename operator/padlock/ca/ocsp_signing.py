"""Pre-signed OCSP responses: one per certificate, signed by the delegated responder key in the
HSM and stored in the ledger's `ocsp_response_cache`, where the responder reads them.

Called by `padlock.ca.publication` (after every issuance, at once after a revocation, and on a
timer before responses go stale) and by `padlock.services.ocsp` (the same `ResponseSigner`
signs nonce, multi-certificate and SHA-2 CertID answers on demand when that process has the
key).

Timing (RFC 5019 §2.2.4, RFC 6960 §4.2.2.1): thisUpdate is backdated by one minute for clients
with a slow clock, nextUpdate is `VALIDITY` later, and the CA re-signs a good response once
less than half its validity remains, so a cached response is never older than half a day
when a revocation is not involved.
"""

from __future__ import annotations

import datetime
import logging
import threading
from collections.abc import Callable, Sequence

from cryptography import x509

from padlock import metrics
from padlock.ca import errors
from padlock.keys import base as keys_base
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from padlock.pki import ocsp

log = logging.getLogger(__name__)

VALIDITY = datetime.timedelta(hours=24)
"""thisUpdate to nextUpdate of a response."""

BACKDATE = datetime.timedelta(minutes=1)

_STATUS = {
    records.Status.GOOD: ocsp.CertStatus.GOOD,
    records.Status.REVOKED: ocsp.CertStatus.REVOKED,
    records.Status.UNKNOWN: ocsp.CertStatus.UNKNOWN,
}


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class ResponderKey:
    """The delegated responder's HSM key, loaded on first use and again after a lost session.

    `loader` returns the signer (e.g. `hsm.TokenKeySource.load_key` bound to the OCSP key
    label); the token's reconnection is left to whoever owns the token session.
    """

    def __init__(self, loader: Callable[[], keys_base.Signer]) -> None:
        self._loader = loader
        self._lock = threading.Lock()
        self._signer: keys_base.Signer | None = None

    def sign_with(self, work: Callable[[keys_base.SigningKey], bytes]) -> bytes:
        """Run `work(private_key)`; a key backend failure raises `HsmUnavailable`."""
        try:
            with self._lock:
                if self._signer is None:
                    self._signer = self._loader()
                signer = self._signer
            return work(signer.private_key())
        except keys_base.UnsupportedSigningError:
            raise
        except (keys_base.KeyBackendError, errors.HsmUnavailable) as exc:
            with self._lock:
                self._signer = None
            raise errors.HsmUnavailable(f"the OCSP responder key is unavailable: {exc}") from None


class ResponseSigner:
    """Signs OCSP responses about one CA's certificates with the delegated responder key."""

    def __init__(
        self,
        *,
        issuer: x509.Certificate,
        responder_certificate: x509.Certificate,
        key: ResponderKey,
        validity: datetime.timedelta = VALIDITY,
        now: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        if responder_certificate.issuer != issuer.subject:
            raise ValueError(
                "the OCSP responder certificate was not issued by this CA "
                f"({responder_certificate.issuer.rfc4514_string()} is not "
                f"{issuer.subject.rfc4514_string()}); RFC 6960 §4.2.2.2 requires it"
            )
        self.issuer = issuer
        self.hashes = ocsp.IssuerHashes.of(issuer)
        self.responder_certificate = responder_certificate
        self.key = key
        self.validity = validity
        self._now = now

    def window(self) -> tuple[datetime.datetime, datetime.datetime]:
        """(thisUpdate, nextUpdate) for a response signed now."""
        this_update = self._now().replace(microsecond=0) - BACKDATE
        return this_update, this_update + self.validity

    def single(
        self, cert_id: ocsp.CertId, status: records.CertificateStatus
    ) -> ocsp.SingleResponse:
        this_update, next_update = self.window()
        if status.revoked_at is not None and status.revoked_at > this_update:
            # RFC 6960 §4.2.1: thisUpdate is when the status was known to be correct; a
            # revoked answer must not claim to predate its own revocation.
            this_update = status.revoked_at.replace(microsecond=0)
            next_update = this_update + self.validity
        return ocsp.SingleResponse(
            cert_id=cert_id,
            status=_STATUS[status.status],
            this_update=this_update,
            next_update=next_update,
            revoked_at=status.revoked_at,
            reason=status.reason_code,
        )

    def sign(
        self, responses: Sequence[ocsp.SingleResponse], nonce: bytes | None, why: str
    ) -> bytes:
        """A signed OCSPResponse (blocking: the signature goes to the HSM)."""
        produced_at = self._now().replace(microsecond=0)
        der = self.key.sign_with(
            lambda key: ocsp.build_response(
                responses,
                ocsp.Signer(self.responder_certificate, key),
                produced_at=produced_at,
                nonce=nonce,
            )
        )
        metrics.OCSP_SIGNATURES.labels(why).inc()
        return der

    def presign(
        self, ca_id: int, serial: int, status: records.CertificateStatus, why: str
    ) -> records.OcspCacheEntry:
        """The response for `serial` with a SHA-1 CertID (RFC 5019 §2.1.1), as a cache entry."""
        single = self.single(self.hashes.cert_id(serial, "sha1"), status)
        assert single.next_update is not None
        return records.OcspCacheEntry(
            ca_id=ca_id,
            serial=serial,
            status=status.status,
            this_update=single.this_update,
            next_update=single.next_update,
            response_der=self.sign([single], None, why),
        )


class PreSigner:
    """Keeps the ledger's OCSP cache of one CA current (blocking methods: call them from a
    worker thread)."""

    def __init__(self, *, ledger: ledger_mod.Ledger, ca_id: int, signer: ResponseSigner) -> None:
        self.ledger = ledger
        self.ca_id = ca_id
        self.signer = signer
        self._revocation_cursor = 0

    def update(self, serial: int, why: str) -> records.OcspCacheEntry:
        """Sign the ledger's current status of `serial` and store it."""
        status = self.ledger.certificate_status(self.ca_id, serial)
        entry = self.signer.presign(self.ca_id, serial, status, why)
        self.ledger.put_ocsp_response(entry)
        return entry

    def refresh_due(self, now: datetime.datetime) -> int:
        """Re-sign every cached response with less than half its validity left, except for
        certificates that expired before now (RFC 6960 §2.2 leaves those to the CRL); the
        number re-signed."""
        horizon = now + self.signer.validity / 2
        count = 0
        for entry in self.ledger.ocsp_responses(self.ca_id, expiring_before=horizon):
            record = self.ledger.get_certificate(self.ca_id, entry.serial)
            if record is None or record.valid_until < now:
                continue
            self.update(entry.serial, "refresh")
            count += 1
        return count

    def repair_revoked(self) -> int:
        """Re-sign cached responses that still say good for a revoked certificate (a CA that
        stopped between the ledger commit and the re-signing); the number repaired."""
        count = 0
        for revoked in self.ledger.revoked_since(self.ca_id, self._revocation_cursor):
            cached = self.ledger.get_ocsp_response(self.ca_id, revoked.serial)
            if cached is None or cached.status is not records.Status.REVOKED:
                self.update(revoked.serial, "revoked")
                count += 1
            self._revocation_cursor = revoked.revocation_id
        return count
