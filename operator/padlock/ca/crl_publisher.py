"""CRL shards of one CA: generated from the ledger, signed by the intermediate key in the HSM,
stored in the ledger (table `crl`), where the responder serves them as `/crl/<shard>.crl`.

Called by `padlock.ca.publication`: one shard at once after a revocation in it, and every
shard whose CRL has passed two thirds of its validity (default 24 h, so every 16 h) on a
timer, plus every shard that has no CRL yet when the CA starts.

Sharding (DESIGN.md, Revocation responder): a certificate lives in shard
`padlock.ca.authority.crl_shard(serial)` and its CDP names `<crl_base>/<shard>.crl`; each shard
CRL names that same URL in its issuingDistributionPoint (RFC 5280 §5.2.5). Expired
certificates leave the CRL (RFC 5280 §3.3), which keeps each shard under 10 MB up to about
three million unexpired revocations per CA (`padlock.pki.crl.MAX_CRL_BYTES`).
"""

from __future__ import annotations

import datetime
import logging
from collections.abc import Callable, Iterable, Sequence

from padlock import metrics
from padlock.ca import authority as authority_mod
from padlock.ca import hsm
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from padlock.pki import crl

log = logging.getLogger(__name__)

VALIDITY = datetime.timedelta(hours=24)
"""thisUpdate to nextUpdate of a CRL."""

REFRESH_AT = 2 / 3
"""A CRL is regenerated once this fraction of its validity has passed."""

BACKDATE = datetime.timedelta(minutes=1)


def utc_now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


class CrlPublisher:
    """Publishes the CRL shards of one CA (blocking methods: call them from a worker thread)."""

    def __init__(
        self,
        *,
        ledger: ledger_mod.Ledger,
        authority: authority_mod.Authority,
        key: hsm.IssuingKey,
        validity: datetime.timedelta = VALIDITY,
        shards: int = authority_mod.CRL_SHARDS,
        now: Callable[[], datetime.datetime] = utc_now,
    ) -> None:
        self.ledger = ledger
        self.authority = authority
        self.key = key
        self.validity = validity
        self.shards = shards
        self._now = now
        self._revocation_cursor = 0

    def shard_url(self, shard: int) -> str | None:
        base = self.authority.urls.crl_base
        return f"{base.rstrip('/')}/{shard}.crl" if base else None

    def publish(self, shards: Iterable[int]) -> list[records.CrlRecord]:
        """Generate, sign and store the CRLs of `shards` from one listing of the ledger."""
        wanted = sorted(set(shards))
        for shard in wanted:
            if not 0 <= shard < self.shards:
                raise ValueError(f"CRL shard {shard} is outside 0..{self.shards - 1}")
        this_update = self._now().replace(microsecond=0) - BACKDATE
        entries: dict[int, list[crl.Entry]] = {shard: [] for shard in wanted}
        for revoked in self.ledger.list_revoked(self.authority.ca_id, unexpired_at=this_update):
            bucket = entries.get(authority_mod.crl_shard(revoked.serial))
            if bucket is not None:
                bucket.append(crl.Entry(revoked.serial, revoked.revoked_at, revoked.reason_code))
        return [self._publish_one(shard, entries[shard], this_update) for shard in wanted]

    def _publish_one(
        self, shard: int, entries: Sequence[crl.Entry], this_update: datetime.datetime
    ) -> records.CrlRecord:
        number = self.ledger.next_crl_number(self.authority.ca_id, shard)
        next_update = this_update + self.validity
        der = self.key.sign_with(
            lambda key: crl.build_crl(
                issuer=self.authority.certificate,
                key=key,
                entries=entries,
                crl_number=number,
                this_update=this_update,
                next_update=next_update,
                distribution_point=self.shard_url(shard),
            )
        )
        if len(der) > crl.MAX_CRL_BYTES:
            log.error(
                "CRL shard %d is %d bytes, over the %d-byte limit: raise authority.CRL_SHARDS",
                shard,
                len(der),
                crl.MAX_CRL_BYTES,
            )
        record = records.CrlRecord(
            ca_id=self.authority.ca_id,
            shard=shard,
            crl_number=number,
            this_update=this_update,
            next_update=next_update,
            crl_der=der,
        )
        if self.ledger.put_crl(record):
            metrics.CRL_NEXT_UPDATE.labels(str(shard)).set(next_update.timestamp())
            metrics.CRL_BYTES.labels(str(shard)).set(len(der))
            log.info("published CRL shard %d number %d (%d entries)", shard, number, len(entries))
        return record

    def publish_new_revocations(self) -> list[records.CrlRecord]:
        """Regenerate the shards that gained revocations since the last call. The revoke hook
        already did so at once; this catches what it missed (a failed hook, a CA stopped
        between the commit and the CRL, an issuer-wide `revoke_all`). The first call covers
        every revocation, so a restarted CA republishes each shard that has any."""
        fresh = self.ledger.revoked_since(self.authority.ca_id, self._revocation_cursor)
        if not fresh:
            return []
        published = self.publish({authority_mod.crl_shard(r.serial) for r in fresh})
        self._revocation_cursor = fresh[-1].revocation_id
        return published

    def publish_due(self, now: datetime.datetime) -> list[records.CrlRecord]:
        """Publish every shard `due(now)` names; the CRLs published."""
        due = self.due(now)
        return self.publish(due) if due else []

    def due(self, now: datetime.datetime) -> list[int]:
        """Shards with no CRL yet, or whose CRL has passed `REFRESH_AT` of its validity."""
        due = []
        for shard in range(self.shards):
            current = self.ledger.get_crl(self.authority.ca_id, shard)
            if current is None:
                due.append(shard)
                continue
            lifetime = current.next_update - current.this_update
            if now >= current.this_update + lifetime * REFRESH_AT:
                due.append(shard)
            else:
                metrics.CRL_NEXT_UPDATE.labels(str(shard)).set(current.next_update.timestamp())
        return due
