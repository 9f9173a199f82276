"""CRL publication serialized across CA worker processes (`workers` > 1).

Called by `padlock.services.ca_http.app`, which swaps this publisher into the worker's
`padlock.ca.publication.Publication`. Publishing a shard lists its revocations, then takes
the next CRL number, signs and stores (`padlock.ca.crl_publisher`). Inside one process an
asyncio lock keeps two publications of a shard apart; two workers revoking in the same shard
at once could otherwise interleave so that the CRL with the *higher* number (RFC 5280 §5.2.3)
was listed *before* the other worker's revocation committed, and that revocation would be
missing from the current CRL until the timer's next pass. An exclusive `flock` on a file in
the supervisor's runtime directory, held from the listing to the stored CRL, restores the
order: whoever publishes later lists later.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from padlock.ca import crl_publisher
from padlock.ledger import records


class LockedCrlPublisher(crl_publisher.CrlPublisher):
    """A `CrlPublisher` whose `publish` holds `lock_file` exclusively (blocking)."""

    def __init__(self, lock_file: Path, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.lock_file = lock_file

    def publish(self, shards: Iterable[int]) -> list[records.CrlRecord]:
        # One open file description per call: flock excludes other threads of this process
        # (the timer and a revocation hook) as well as the other workers.
        fd = os.open(self.lock_file, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            return super().publish(shards)
        finally:
            os.close(fd)  # releases the lock
