"""Revocation, minimal for now: record one revocation in the ledger, with its audit event.

Called by `padlock.services.ca_http` for `POST /v1/revoke` and `POST /v1/revoke-all` (the
operator's RevocationRequest controller). The ledger writes the revocation and its audit row
in one transaction; revoking twice returns the first record. After the commit, `after_revoke`
hooks run (the CA service registers `padlock.ca.publication`: re-sign the OCSP response,
regenerate the CRL shard); a hook failure is logged, never undoes the revocation.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import dataclasses
import datetime
import functools
import logging
from collections.abc import Awaitable, Callable, Sequence

from padlock.api.reasons import RevocationReason
from padlock.ca import errors
from padlock.ledger import errors as ledger_errors
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records
from padlock.pki import serials

log = logging.getLogger(__name__)

#: Runs after a revocation is committed, with the serial (e.g. re-signing its OCSP response).
AfterRevoke = Callable[[int], Awaitable[None]]


@dataclasses.dataclass(frozen=True)
class Revoked:
    """A recorded revocation."""

    serial: int
    reason: RevocationReason
    revoked_at: datetime.datetime


def parse_serial(text: str) -> int:
    """A serial from hex (`0A1B...`, `0a:1b:...` or `0x0a1b`); BadRequest otherwise."""
    cleaned = text.strip().lower().removeprefix("0x").replace(":", "")
    try:
        serial = int(cleaned, 16)
        serials.check_serial(serial)
    except ValueError:
        raise errors.BadRequest(
            f"serial {text!r} is not a hex certificate serial number (RFC 5280 §4.1.2.2)",
            code="invalid-serial",
        ) from None
    return serial


def parse_reason(text: str) -> RevocationReason:
    """An RFC 5280 §5.3.1 reason name that padlock records; BadRequest otherwise."""
    try:
        reason = RevocationReason(text)
    except ValueError:
        reason = None
    if reason is None or reason.code not in records.REASON_CODES:
        allowed = ", ".join(records.REASON_CODES.values())
        raise errors.BadRequest(
            f"revocation reason {text!r} is not accepted; use one of {allowed} "
            "(RFC 5280 §5.3.1; certificateHold and removeFromCRL are not used)",
            code="invalid-reason",
        )
    return reason


class Revoker:
    """Revokes certificates of one CA through the ledger."""

    def __init__(
        self,
        *,
        ledger: ledger_mod.Ledger,
        ca_id: int,
        executor: concurrent.futures.Executor,
        after_revoke: Sequence[AfterRevoke] = (),
    ) -> None:
        self.ledger = ledger
        self.ca_id = ca_id
        self.executor = executor
        self.after_revoke = list(after_revoke)

    async def revoke(self, serial: int, reason: RevocationReason, requester: str) -> Revoked:
        """Record the revocation; `UnknownSerial` if this CA never issued `serial`."""
        if not requester:
            raise errors.BadRequest("a revocation needs the requester", code="missing-field")
        loop = asyncio.get_running_loop()
        call = functools.partial(self.ledger.revoke, self.ca_id, serial, reason.code, requester)
        try:
            record = await loop.run_in_executor(self.executor, call)
        except ledger_errors.UnknownCertificate:
            raise errors.UnknownSerial(
                f"this CA has no certificate with serial {serials.serial_hex(serial)}"
            ) from None
        except ledger_errors.LedgerError:
            raise
        except (ValueError, TypeError):
            raise
        except Exception as exc:  # driver errors: connection lost, disk full
            raise errors.LedgerUnavailable(f"the ledger is unavailable: {exc}") from None
        await self._after_revoke(serial)
        return Revoked(
            serial=serial,
            reason=RevocationReason.from_code(record.reason_code),
            revoked_at=record.revoked_at,
        )

    async def _after_revoke(self, serial: int) -> None:
        for hook in self.after_revoke:
            try:
                await hook(serial)
            except Exception:
                log.exception("after-revoke hook %r failed for %x", hook, serial)

    async def revoke_all(self, reason: RevocationReason, requester: str) -> list[Revoked]:
        """Revoke every certificate of this CA not yet revoked (the issuer-wide drill), in one
        ledger transaction; the after-revoke hooks then run for each new revocation.

        Answers every revocation recorded for `requester`, in serial order, the earlier ones
        included: a repeated request (a retry after a timeout) gets the same list back and
        revokes nothing new, except what the CA issued in between."""
        if not requester:
            raise errors.BadRequest("a revocation needs the requester", code="missing-field")
        loop = asyncio.get_running_loop()
        call = functools.partial(self.ledger.revoke_all, self.ca_id, reason.code, requester)
        try:
            new = await loop.run_in_executor(self.executor, call)
            every = await loop.run_in_executor(
                self.executor, self.ledger.revoked_since, self.ca_id, 0
            )
        except ledger_errors.LedgerError:
            raise
        except Exception as exc:  # driver errors: connection lost, disk full
            raise errors.LedgerUnavailable(f"the ledger is unavailable: {exc}") from None
        # Concurrently: the publication hook then regenerates each CRL shard once for many
        # revocations instead of once per revocation.
        await asyncio.gather(*(self._after_revoke(record.serial) for record in new))
        mine = sorted((r for r in every if r.requested_by == requester), key=lambda r: r.serial)
        return [
            Revoked(
                serial=r.serial,
                reason=RevocationReason.from_code(r.reason_code),
                revoked_at=r.revoked_at,
            )
            for r in mine
        ]
