"""`verify_chain(url)`: check a ledger's audit chain without changing anything.

Called by `padlock ledger verify --config FILE` (wired in padlock.cli) and by operators'
cron jobs; exits non-zero there when the result is not ok.
"""

from __future__ import annotations

import typing

from padlock.ledger import ledger, records


def verify_chain(
    url: str, checkpoints: typing.Iterable[records.AuditCheckpoint] = ()
) -> records.VerifyResult:
    """Walk the audit chain of the ledger at `url`; the schema must be current (no migration).

    `checkpoints`: earlier `Ledger.audit_checkpoint()` values kept outside the database.
    """
    with ledger.Ledger(url, migrate=False) as opened:
        return opened.verify_audit_chain(checkpoints)
