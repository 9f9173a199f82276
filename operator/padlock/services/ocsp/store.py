"""The responder's memory: pre-signed OCSP responses, revocations and CRL shards of one CA,
loaded from the ledger and kept current by polling it.

Called by `padlock.services.ocsp.responder` (lookups on the hot path, no I/O) and by the
server's poll task (`poll()`, blocking, in a worker thread). The ledger is opened read-only
(`migrate=False`) and may be SQLite beside the CA or PostgreSQL in another pod.

How fresh (RFC 6960 §2.4 / RFC 5019 §4): every `poll()` (default once a second) reads the
revocations committed since the last one (the ledger's `revocation_id` cursor never misses
one) and, for each, the re-signed response and the shard's CRL. A revocation is therefore
known within one poll interval even if the CA has not re-signed yet: the responder then
refuses to serve the stale "good" response (see `responder`), and re-reads the shard's CRL at
every poll until the regenerated one arrives. New certificates' responses are
fetched on the first request (`fetch()`), refreshed responses and CRLs by a full reload every
`reload_interval` seconds, and a response past its nextUpdate is never served.
"""

from __future__ import annotations

import dataclasses
import datetime
import email.utils
import hashlib
import logging
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

from padlock.ca import authority as authority_mod
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records

log = logging.getLogger(__name__)

MISS_TTL = 2.0
"""Seconds a serial the ledger had no response for is remembered as a miss (bounds the
ledger load of requests for random serials)."""

MAX_MISSES = 100_000

CRL_WATCH_SECONDS = 120.0
"""How long a shard with a new revocation is re-read until its regenerated CRL arrives."""


def http_date(when: datetime.datetime) -> str:
    return email.utils.format_datetime(when.astimezone(datetime.UTC), usegmt=True)


@dataclasses.dataclass(frozen=True)
class Published:
    """A signed object (OCSP response or CRL) with its HTTP caching metadata (RFC 5019 §6)."""

    der: bytes
    this_update: datetime.datetime
    next_update: datetime.datetime
    etag: str
    last_modified: str
    expires: str

    @classmethod
    def of(
        cls, der: bytes, this_update: datetime.datetime, next_update: datetime.datetime
    ) -> Published:
        return cls(
            der=der,
            this_update=this_update,
            next_update=next_update,
            etag='"' + hashlib.sha256(der).hexdigest()[:32] + '"',
            last_modified=http_date(this_update),
            expires=http_date(next_update),
        )


@dataclasses.dataclass(frozen=True)
class Response:
    """A pre-signed OCSP response from the ledger's cache."""

    serial: int
    status: records.Status
    published: Published


class ResponseStore:
    """Everything the responder serves for one CA, in memory. Lookups are lock-free reads of
    dicts that the poll thread replaces or updates one key at a time."""

    def __init__(
        self,
        ledger: ledger_mod.Ledger,
        ca_id: int,
        *,
        shards: int = authority_mod.CRL_SHARDS,
        reload_interval: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ledger = ledger
        self.ca_id = ca_id
        self.shards = shards
        self.reload_interval = reload_interval
        self._clock = clock
        self.responses: dict[int, Response] = {}
        self.revoked: set[int] = set()
        """Every revoked serial of the CA (a response saying good for one is stale)."""
        self.stale: set[int] = set()
        """Revoked serials whose response in memory does not say revoked yet."""
        self.crls: dict[int, Published] = {}
        self._crl_numbers: dict[int, int] = {}
        self._cursor = 0
        self._last_reload = float("-inf")
        self._misses: OrderedDict[int, float] = OrderedDict()
        self._crl_watch: dict[int, tuple[int, float]] = {}
        self._lock = threading.Lock()
        self.generation = 0
        """Grows whenever anything changes (lets the HTTP layer drop cached answers)."""

    # -- lookups (event loop, no I/O) ----------------------------------------------------------

    def response(self, serial: int) -> Response | None:
        return self.responses.get(serial)

    def recently_missed(self, serial: int) -> bool:
        seen = self._misses.get(serial)
        return seen is not None and self._clock() - seen < MISS_TTL

    # -- refresh (worker thread, blocking) ------------------------------------------------------

    def poll(self) -> bool:
        """Read what changed in the ledger; a full reload every `reload_interval`. True if
        anything the responder serves changed."""
        with self._lock:
            if self._clock() - self._last_reload >= self.reload_interval:
                self._reload()
                return True
            changed = self._poll_revocations()
            if self._crl_watch and not changed:
                changed = self._poll_crl_watch()
                self.generation += int(changed)
            # A CA that just started publishes its first CRLs after we loaded: pick them up.
            for shard in range(self.shards):
                if shard not in self.crls:
                    changed |= self._load_crl(shard)
            return changed

    def _reload(self) -> None:
        started = time.perf_counter()
        revocations = self.ledger.revoked_since(self.ca_id, 0)
        now = datetime.datetime.now(datetime.UTC)
        # Responses past nextUpdate are never served (the CA stops refreshing them once the
        # certificate expires); leaving them out bounds memory to the unexpired certificates.
        responses = {
            e.serial: _response(e)
            for e in self.ledger.ocsp_responses(self.ca_id)
            if e.next_update > now
        }
        self.revoked = {r.serial for r in revocations}
        self.stale = {s for s in self.revoked if s in responses and _not_revoked(responses[s])}
        if revocations:
            self._cursor = max(self._cursor, revocations[-1].revocation_id)
        self.responses = responses
        for shard in range(self.shards):
            self._load_crl(shard)
        self._misses.clear()
        self._last_reload = self._clock()
        self.generation += 1
        log.info(
            "loaded %d OCSP responses, %d revocations, %d CRL shards in %.2f s",
            len(responses),
            len(self.revoked),
            len(self.crls),
            time.perf_counter() - started,
        )

    def _poll_revocations(self) -> bool:
        fresh = self.ledger.revoked_since(self.ca_id, self._cursor)
        if not fresh:
            return False
        shards: set[int] = set()
        for revoked in fresh:
            self.revoked.add(revoked.serial)
            self._cursor = revoked.revocation_id
            entry = self.ledger.get_ocsp_response(self.ca_id, revoked.serial)
            if entry is not None:
                self._keep(_response(entry))
            self._misses.pop(revoked.serial, None)
            shards.add(authority_mod.crl_shard(revoked.serial))
        deadline = self._clock() + CRL_WATCH_SECONDS
        for shard in shards:
            # The CA regenerates the shard right after its commit, maybe after this read:
            # watch it until a newer CRL than the one we hold arrives.
            self._crl_watch[shard] = (self._crl_numbers.get(shard, 0), deadline)
        self._poll_crl_watch()
        self.generation += 1
        return True

    def _poll_crl_watch(self) -> bool:
        changed = False
        now = self._clock()
        for shard, (seen, deadline) in list(self._crl_watch.items()):
            changed |= self._load_crl(shard)
            if self._crl_numbers.get(shard, 0) > seen or now > deadline:
                del self._crl_watch[shard]
        return changed

    def refresh_revoked_responses(self) -> bool:
        """Re-read responses of revoked certificates that still say good (the CA re-signs
        right after its commit, possibly after our poll saw the revocation)."""
        changed = False
        for serial in list(self.stale):
            entry = self.ledger.get_ocsp_response(self.ca_id, serial)
            if entry is not None and entry.status is records.Status.REVOKED:
                self._keep(_response(entry))
                changed = True
        if changed:
            self.generation += 1
        return changed

    def _load_crl(self, shard: int) -> bool:
        record = self.ledger.get_crl(self.ca_id, shard)
        if record is None or record.crl_number <= self._crl_numbers.get(shard, 0):
            return False
        self.crls[shard] = Published.of(record.crl_der, record.this_update, record.next_update)
        self._crl_numbers[shard] = record.crl_number
        return True

    def fetch(self, serial: int) -> Response | None:
        """The ledger's response for a serial not in memory (a certificate issued since the
        last reload); remembered, or remembered as a miss for `MISS_TTL` seconds."""
        try:
            entry = self.ledger.get_ocsp_response(self.ca_id, serial)
        except ValueError:  # not a serial the ledger can store (<= 0, > 20 octets)
            entry = None
        if entry is None:
            self._misses[serial] = self._clock()
            self._misses.move_to_end(serial)
            while len(self._misses) > MAX_MISSES:
                self._misses.popitem(last=False)
            return None
        response = _response(entry)
        self._keep(response)
        return response

    def _keep(self, response: Response) -> None:
        self.responses[response.serial] = response
        if response.serial in self.revoked and _not_revoked(response):
            self.stale.add(response.serial)
        else:
            self.stale.discard(response.serial)

    def status(self, serial: int) -> records.CertificateStatus:
        """The ledger's status of `serial` (for answers signed on demand)."""
        try:
            return self.ledger.certificate_status(self.ca_id, serial)
        except ValueError:
            return records.CertificateStatus(records.Status.UNKNOWN)


def _not_revoked(response: Response) -> bool:
    return response.status is not records.Status.REVOKED


def _response(entry: records.OcspCacheEntry) -> Response:
    return Response(
        serial=entry.serial,
        status=entry.status,
        published=Published.of(entry.response_der, entry.this_update, entry.next_update),
    )
