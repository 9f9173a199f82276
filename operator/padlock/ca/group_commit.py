"""Group commit: many concurrent issuances share one ledger write transaction (and their
idempotency-key lookups share one read).

Called by `padlock.ca.pipeline` for every certificate that passed the lint gate. Each request
queues its `ledger.Issuance` and waits; one committer task takes whatever is queued (up to
`max_batch`) and records it with `Ledger.record_issuances` in ONE transaction (one write
lock, one commit, one fsync), while the next requests queue behind it. Under no load a batch
is a single certificate, so nobody waits for a timer; under load the batch grows by itself.
The pipeline's first step, "was this idempotency key used already?", is batched the same way
(`key_lookup`), and so is its HSM step (`Pipeline.signing`, per-item outcomes).

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
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from padlock import metrics
from padlock.ledger import ledger as ledger_mod
from padlock.ledger import records

log = logging.getLogger(__name__)

MAX_BATCH = 64
"""Most certificates in one transaction (bounds the lock hold and a failure's blast radius)."""

MAX_LOOKUP_BATCH = 256
"""Most idempotency keys looked up in one read."""


ItemT = TypeVar("ItemT")
OutcomeT = TypeVar("OutcomeT")


@dataclasses.dataclass
class _Waiting(Generic[ItemT, OutcomeT]):
    item: ItemT
    future: asyncio.Future[OutcomeT]


class Batcher(Generic[ItemT, OutcomeT]):
    """Runs `run_batch(items) -> outcomes` (blocking, in `executor`) on whatever callers have
    queued, one batch at a time; each caller gets the outcome at its item's index. Used from
    one event loop."""

    def __init__(
        self,
        run_batch: Callable[[list[ItemT]], Sequence[OutcomeT]],
        executor: concurrent.futures.Executor,
        *,
        max_batch: int,
        name: str,
        observe: Callable[[int], object] | None = None,
    ) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.run_batch = run_batch
        self.executor = executor
        self.max_batch = max_batch
        self.name = name
        self._observe = observe
        self._queue: asyncio.Queue[_Waiting[ItemT, OutcomeT]] = asyncio.Queue()
        self._task: asyncio.Task[None] | None = None

    @property
    def queued(self) -> int:
        """Items waiting for the next batch (not counting the batch in flight)."""
        return self._queue.qsize()

    async def submit(self, item: ItemT) -> OutcomeT:
        """Queue `item`; its outcome once its batch ran. Raises what the batch raised."""
        loop = asyncio.get_running_loop()
        if self._task is None or self._task.done():
            self._task = loop.create_task(self._run(), name=self.name)
        waiting: _Waiting[ItemT, OutcomeT] = _Waiting(item, loop.create_future())
        self._queue.put_nowait(waiting)
        return await waiting.future

    async def _run(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self._queue.get()]
            while len(batch) < self.max_batch and not self._queue.empty():
                batch.append(self._queue.get_nowait())
            if self._observe is not None:
                self._observe(len(batch))
            job = loop.run_in_executor(self.executor, self.run_batch, [w.item for w in batch])
            try:
                await asyncio.wait([job])  # never raises the job's error; never cancels it
            except asyncio.CancelledError:
                # Shutting down: the batch in flight still finishes (in its thread); answer
                # its waiters with what it did, then stop.
                await asyncio.wait([job])
                self._deliver(batch, job)
                raise
            self._deliver(batch, job)

    async def close(self) -> None:
        """Stop after the batch in flight; items still queued are cancelled (not run)."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None
        while not self._queue.empty():
            waiting = self._queue.get_nowait()
            if not waiting.future.done():
                waiting.future.cancel()

    def _deliver(
        self, batch: list[_Waiting[ItemT, OutcomeT]], job: asyncio.Future[Sequence[OutcomeT]]
    ) -> None:
        """Resolve every waiter of a finished batch: its outcome, or the batch's error."""
        if job.cancelled():  # the thread pool shut down before the batch ran
            for waiting in batch:
                waiting.future.cancel()
            return
        exc = job.exception()
        if exc is not None:
            log.warning("%s: a batch of %d failed: %s", self.name, len(batch), exc)
        for n, waiting in enumerate(batch):
            if waiting.future.done():
                continue
            if exc is not None:
                waiting.future.set_exception(exc)
            else:
                waiting.future.set_result(job.result()[n])


def committer(
    ledger: ledger_mod.Ledger,
    executor: concurrent.futures.Executor,
    *,
    max_batch: int = MAX_BATCH,
) -> Batcher[ledger_mod.Issuance, ledger_mod.IssuanceOutcome]:
    """The group commit: issuances in, `record_issuances` outcomes out (see module doc)."""
    return Batcher(
        ledger.record_issuances,
        executor,
        max_batch=max_batch,
        name="padlock-group-commit",
        observe=metrics.CA_COMMIT_BATCH.observe,
    )


def key_lookup(
    ledger: ledger_mod.Ledger,
    ca_id: int,
    executor: concurrent.futures.Executor,
    *,
    max_batch: int = MAX_LOOKUP_BATCH,
) -> Batcher[str, records.CertificateRecord | None]:
    """Idempotency-key lookups of concurrent requests, answered by one read each batch
    (`Ledger.find_by_idempotency_keys`). Each read starts after its requests were queued, so
    it sees every commit that finished before any of them asked."""

    def find(keys: list[str]) -> list[records.CertificateRecord | None]:
        found = ledger.find_by_idempotency_keys(ca_id, keys)
        return [found.get(key) for key in keys]

    return Batcher(find, executor, max_batch=max_batch, name="padlock-key-lookup")
