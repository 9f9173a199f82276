"""What the responder answers to one DER OCSP request (RFC 6960 §2.2, §4.2), apart from HTTP.

Called by `padlock.services.ocsp.http` for every GET and POST. `decide()` answers from memory
with no I/O when it can (the common case: one SHA-1 CertID, a pre-signed response, no nonce);
otherwise it returns the parsed request and `answer_slow()` reads the ledger and, when this
process holds the delegated responder key, signs on demand.

Rules:
- bytes that are not an OCSP request (bad DER, unsupported CertID hash, over-long nonce, too
  many CertIDs) → malformedRequest (§4.2.1); never an exception.
- a CertID naming another issuer → unauthorized (§2.3).
- one SHA-1 CertID with a pre-signed response → that response (RFC 5019 §2.2), unless it is
  past nextUpdate or says good for a serial the ledger has revoked (then it is stale).
- with the key: a nonce is echoed (§4.4.1), several CertIDs and SHA-2 CertIDs are answered in
  one signed response, serials this CA never issued are answered unknown (§2.2).
- without the key (the default: the responder holds no key material): a nonce request gets the
  pre-signed response without a nonce (§4.4.1 makes echoing optional; RFC 8954 §3 lets
  clients accept that), anything needing a fresh signature gets unauthorized (RFC 5019 §2.2.3:
  "no pre-produced response"), and a stale response gets tryLater until the CA's re-signed one
  arrives (within a poll interval of the revocation).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
import functools
import logging
from collections.abc import Callable
from typing import TypeVar

from padlock.ca import errors as ca_errors
from padlock.ca import ocsp_signing
from padlock.ledger import records
from padlock.pki import ocsp
from padlock.services.ocsp import store as store_mod

log = logging.getLogger(__name__)

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Answer:
    """The DER OCSPResponse to send, the metrics label, and for a pre-signed response the
    HTTP caching metadata (None: the answer must not be cached)."""

    der: bytes
    label: str
    published: store_mod.Published | None = None


_ERRORS = {
    status: Answer(ocsp.error_response(status), label)
    for status, label in (
        (ocsp.ResponseStatus.MALFORMED_REQUEST, "malformedRequest"),
        (ocsp.ResponseStatus.INTERNAL_ERROR, "internalError"),
        (ocsp.ResponseStatus.TRY_LATER, "tryLater"),
        (ocsp.ResponseStatus.UNAUTHORIZED, "unauthorized"),
    )
}
MALFORMED = _ERRORS[ocsp.ResponseStatus.MALFORMED_REQUEST]
INTERNAL_ERROR = _ERRORS[ocsp.ResponseStatus.INTERNAL_ERROR]
TRY_LATER = _ERRORS[ocsp.ResponseStatus.TRY_LATER]
UNAUTHORIZED = _ERRORS[ocsp.ResponseStatus.UNAUTHORIZED]


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class Responder:
    """Answers OCSP requests about one CA's certificates."""

    def __init__(
        self,
        *,
        store: store_mod.ResponseStore,
        hashes: ocsp.IssuerHashes,
        signer: ocsp_signing.ResponseSigner | None,
        executor: concurrent.futures.Executor,
        now: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self.store = store
        self.hashes = hashes
        self.signer = signer
        self.executor = executor
        self._now = now

    def _usable(self, response: store_mod.Response | None) -> bool:
        if response is None or response.published.next_update <= self._now():
            return False
        return (
            response.status is records.Status.REVOKED or response.serial not in self.store.revoked
        )

    def _presigned(self, response: store_mod.Response) -> Answer:
        # The HTTP layer counts it and observes its age (padlock_ocsp_response_age_seconds).
        published = response.published
        return Answer(published.der, response.status.value, published)

    def decide(self, der: bytes) -> Answer | ocsp.Request:
        """An answer from memory, or the parsed request when the slow path must run."""
        try:
            request = ocsp.parse_request(der)
        except ocsp.MalformedRequest as exc:
            log.debug("malformed OCSP request: %s", exc.message)
            return MALFORMED
        for cert_id in request.cert_ids:
            if not self.hashes.matches(cert_id):
                return UNAUTHORIZED
        if (
            len(request.cert_ids) == 1
            and request.cert_ids[0].hash_algorithm == "sha1"
            and (request.nonce is None or self.signer is None)
        ):
            response = self.store.response(request.cert_ids[0].serial)
            if self._usable(response):
                assert response is not None
                return self._presigned(response)
        return request

    async def answer(self, der: bytes) -> Answer:
        """The full answer for one request (fast path first); never raises."""
        decided = self.decide(der)
        if isinstance(decided, Answer):
            return decided
        try:
            return await self.answer_slow(decided)
        except ca_errors.HsmUnavailable as exc:
            log.warning("cannot sign an OCSP response on demand: %s", exc)
            return TRY_LATER
        except Exception:
            log.exception("answering an OCSP request failed")
            return INTERNAL_ERROR

    async def _run(self, func: Callable[..., T], *args: object) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(func, *args))

    async def answer_slow(self, request: ocsp.Request) -> Answer:
        cert_ids = request.cert_ids
        single_sha1 = len(cert_ids) == 1 and cert_ids[0].hash_algorithm == "sha1"
        if single_sha1 and (request.nonce is None or self.signer is None):
            serial = cert_ids[0].serial
            response = self.store.response(serial)
            if response is None and not self.store.recently_missed(serial):
                response = await self._run(self.store.fetch, serial)
            if self._usable(response):
                assert response is not None
                return self._presigned(response)
            if self.signer is None:
                # A response that exists but is stale (past nextUpdate, or good for a revoked
                # serial the CA has not re-signed yet) is worth retrying; a missing one is not.
                return TRY_LATER if response is not None else UNAUTHORIZED
        if self.signer is None:
            return UNAUTHORIZED
        signer = self.signer
        statuses = [await self._run(self.store.status, c.serial) for c in cert_ids]
        singles = [signer.single(c, s) for c, s in zip(cert_ids, statuses, strict=True)]
        why = (
            "multi"
            if len(cert_ids) > 1
            else "nonce"
            if request.nonce is not None
            else "hash"
            if not single_sha1
            else statuses[0].status.value
        )
        der = await self._run(signer.sign, singles, request.nonce, why)
        label = statuses[0].status.value if len(statuses) == 1 else "multi"
        return Answer(der, label)
