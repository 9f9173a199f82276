"""Group commit: many concurrent issuances share one ledger write transaction.

Called by `padlock.ca.pipeline` for every certificate that passed the lint gate. Each request
queues its `ledger.Issuance` and waits; one committer task takes whatever is queued (up to
`max_batch`) and records it with `Ledger.record_issuances` in ONE transaction (one write
lock, one commit, one fsync), while the next requests queue behind it. Under no load a batch
is a single certificate, so nobody waits for a timer; under load the batch grows by itself.

Guarantees the pipeline relies on:
- A waiter is answered only after `record_issuances` returned, i.e. after the transaction
  committed: a certificate is never released before it is durable in the ledger.
- Per-item refusals (serial collision, idempotency key reused) come back as that waiter's
  outcome; the rest of the batch is committed.
- A failure of the transaction itself (database gone, disk full) commits nothing of the batch
  and every waiter of that batch gets the same error; later batches try again.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging

from padlock import metrics
from padlock.ledger import ledger as ledger_mod

log = logging.getLogger(__name__)

MAX_BATCH = 64
"""Most certificates in one transaction (bounds the lock hold and a failure's blast radius)."""


@dataclasses.dataclass
class _Waiting:
    item: ledger_mod.Issuance
    future: asyncio.Future[ledger_mod.IssuanceOutcome]


class GroupCommitter:
    """Commits queued issuances in batches; one per pipeline, used from one event loop."""

    def __init__(
        self,
        ledger: ledger_mod.Ledger,
        executor: concurrent.futures.Executor,
        *,
        max_batch: int = MAX_BATCH,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.ledger = ledger
        self.executor = executor
        self.max_batch = max_batch
        self._queue: asyncio.Queue[_Waiting] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Issuances waiting for the next batch (not counting the batch in flight)."""
        return self._queue.qsize()

    async def commit(self, item: ledger_mod.Issuance) -> ledger_mod.IssuanceOutcome:
        """Queue `item`; its outcome once the batch holding it committed. Raises what the
        batch's transaction raised (nothing of that batch was committed)."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name="padlock-group-commit")
        waiting = _Waiting(item, loop.create_future())
        self._queue.put_nowait(waiting)
        return await waiting.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            metrics.CA_COMMIT_BATCH.observe(len(batch))
            job = loop.run_in_executor(
                self.executor, self.ledger.record_issuances, [w.item for w in batch]
            )
            try:
                await asyncio.wait([job])  # never raises the job's error; never cancels it
            except asyncio.CancelledError:
                # Shutting down: the transaction in flight still finishes (in its thread);
                # answer its waiters with what it did, then stop.
                await asyncio.wait([job])
                _deliver(batch, job)
                raise
            _deliver(batch, job)

    async def close(self) -> None:
        """Stop the committer after the batch in flight; requests still queued are
        cancelled (nothing of theirs was written)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            waiting = self._queue.get_nowait()
            if not waiting.future.done():
                waiting.future.cancel()


def _deliver(batch: list[_Waiting], job: asyncio.Future[list[ledger_mod.IssuanceOutcome]]) -> None:
    """Resolve every waiter of a finished batch: its outcome, or the batch's error."""
    if job.cancelled():  # the thread pool shut down before the batch ran: nothing written
        for waiting in batch:
            waiting.future.cancel()
        return
    exc = job.exception()
    if exc is not None:
        log.warning("group commit of %d certificates failed: %s", len(batch), exc)
    for n, waiting in enumerate(batch):
        if waiting.future.done():
            continue
        if exc is not None:
            waiting.future.set_exception(exc)
        else:
            waiting.future.set_result(job.result()[n])
