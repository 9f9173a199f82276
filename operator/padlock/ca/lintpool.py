"""padlock's pkilint process pool: persistent workers, one socket each, batched jobs.

Called by `padlock.ca.lintgate.LintGate.pkilint` for every signed certificate: one pool per CA
process (with `workers: N` in the CA config, each CA worker process has its own gate and
pool). It replaces a `concurrent.futures.ProcessPoolExecutor`, whose cost in the CA process
(management thread, call queue, one pickle and one wake-up per certificate) was about 1 ms of
CPU per certificate: here the event loop itself writes to and reads from each worker's socket,
and the certificates waiting for lint travel in batches.

How it works:

- `processes` workers are started with the `forkserver` method, never `fork`: the CA process
  holds a PKCS#11 session, and forking it is undefined behaviour in most modules. Each worker
  runs `warm_up` (the gate passes `padlock.pki.lint.warm_up`, with the CABF tree when
  configured) before the constructor returns, so the first request does not pay for it.
- `lint()` queues one certificate. A dispatcher, run once per event-loop turn and whenever a
  worker answers, takes whatever is queued (no timer, like `padlock.ca.group_commit.Batcher`),
  splits it among the idle workers (at most `max_batch` each) and writes one frame to each: a
  4-byte big-endian length and a pickle of `[(der, flag), ...]`. The worker answers with one
  frame holding one outcome per certificate, in order. Under no load a batch is a single
  certificate; under load batches grow by themselves.
- Fail-closed: a worker that exits while it holds a batch (crash, OOM kill, kill -9) fails
  every certificate of that batch with `LintUnavailable`, and an exception of the job fails
  its certificate with `LintFailed`. The pipeline lets either propagate, so the request fails
  and the certificate is never released unlinted. A replacement worker is started at once.
- Workers exit by themselves when the CA process is gone, even after a kill -9: the kernel
  closes the CA's end of each socket and the worker's next read returns end-of-file (each
  socket end lives in exactly one process; no watchdog thread, no polling).
- `close()`, from any thread, lets the batches in flight finish, fails what is still queued and
  joins every worker.

The pool is used from one event loop (the first `lint()` binds it); construction and `close()`
may happen in other threads, as `padlock.services.ca_http.app` does.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import multiprocessing
import pickle
import signal
import socket
import struct
import threading
import time
from collections.abc import Callable
from multiprocessing.process import BaseProcess
from typing import Any, Generic, TypeVar

from padlock.ca import errors

log = logging.getLogger(__name__)

MAX_BATCH = 16
"""Most certificates in one worker job: enough to spread the per-job cost (two pickles, two
socket writes, two wake-ups) thinly, small enough that a failed worker takes few with it."""

START_TIMEOUT = 120.0
"""Seconds a worker may take to warm up (pkilint's import and validator trees cost 1-2 s of
CPU; on a loaded 2-core machine several workers start at once)."""

STOP_TIMEOUT = 10.0
"""Seconds `close()` waits for the workers to finish their batch and exit before killing."""

RESTART_DELAY = 1.0
"""Seconds before replacing a worker that died during its warm-up."""

_HEADER = struct.Struct(">I")
_READY = "ready"
_CLOSED = "the lint pool closed before this certificate was linted"

ResultT = TypeVar("ResultT")


class LintUnavailable(errors.CAError):
    """The certificate could not be linted (worker lost, pool closed); it was not released."""

    code = "lint-unavailable"


class LintFailed(errors.CAError):
    """The lint job raised on this certificate; it was not released."""

    code = "lint-error"


# --- the worker process --------------------------------------------------------------------


def _frame(obj: object) -> bytes:
    payload = pickle.dumps(obj, protocol=pickle.HIGHEST_PROTOCOL)
    return _HEADER.pack(len(payload)) + payload


def _recv_exactly(sock: socket.socket, size: int) -> bytes | None:
    """`size` bytes from a blocking socket; None at end-of-file."""
    buf = bytearray()
    while len(buf) < size:
        chunk = sock.recv(size - len(buf))
        if not chunk:
            return None
        buf += chunk
    return bytes(buf)


def _recv_frame(sock: socket.socket) -> Any:
    """One frame's object from a blocking socket; None at end-of-file."""
    header = _recv_exactly(sock, _HEADER.size)
    if header is None:
        return None
    payload = _recv_exactly(sock, _HEADER.unpack(header)[0])
    # Only the CA process holds the other end of this socketpair: the data is ours.
    return None if payload is None else pickle.loads(payload)  # noqa: S301


def _outcome(job: Callable[[bytes, bool], object], der: bytes, flag: bool) -> tuple[bool, object]:
    try:
        return True, job(der, flag)
    except Exception as exc:  # reported to the CA for this certificate alone
        return False, f"{type(exc).__name__}: {exc}"


def _serve(
    sock: socket.socket,
    job: Callable[[bytes, bool], object],
    warm_up: Callable[[], object],
) -> None:
    """A worker's main: warm up, say ready, then answer batches until the CA's end closes."""
    # Ctrl-C in a terminal reaches the whole process group; the CA decides when we stop.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    warm_up()
    try:
        sock.sendall(_frame(_READY))
        while (batch := _recv_frame(sock)) is not None:
            sock.sendall(_frame([_outcome(job, der, flag) for der, flag in batch]))
    except (BrokenPipeError, ConnectionResetError):
        pass  # the CA process is gone
    # End-of-file: the CA closed the pool or died. Either way there is nobody to answer.


# --- the CA side ---------------------------------------------------------------------------


@dataclasses.dataclass
class _Job(Generic[ResultT]):
    der: bytes
    flag: bool
    future: asyncio.Future[ResultT]


class _Worker(asyncio.Protocol, Generic[ResultT]):
    """One worker process and the CA's end of its socket (an asyncio protocol once bound)."""

    def __init__(self, pool: LintPool[ResultT], process: BaseProcess, sock: socket.socket):
        self.pool = pool
        self.process = process
        self.sock = sock
        self.transport: asyncio.Transport | None = None
        self.ready = False
        """The worker finished its warm-up (its first frame said so)."""
        self.batch: list[_Job[ResultT]] | None = None
        """The certificates it holds, in the order it will answer."""
        self._buffer = bytearray()

    @property
    def pid(self) -> int | None:
        return self.process.pid

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        self._buffer += data
        while len(self._buffer) >= _HEADER.size:
            (size,) = _HEADER.unpack_from(self._buffer)
            if len(self._buffer) < _HEADER.size + size:
                return
            payload = bytes(self._buffer[_HEADER.size : _HEADER.size + size])
            del self._buffer[: _HEADER.size + size]
            self.pool._answered(self, payload)

    def connection_lost(self, exc: Exception | None) -> None:
        self.pool._lost(self)

    def send(self, batch: list[_Job[ResultT]]) -> None:
        assert self.transport is not None
        self.batch = batch
        self.transport.write(_frame([(job.der, job.flag) for job in batch]))


class LintPool(Generic[ResultT]):
    """Runs `job(der, flag)` in `processes` persistent worker processes, in batches (see the
    module doc). `job` and `warm_up` must be picklable (module-level functions or partials of
    them): the workers import them by name."""

    def __init__(
        self,
        job: Callable[[bytes, bool], ResultT],
        processes: int,
        *,
        warm_up: Callable[[], object],
        max_batch: int = MAX_BATCH,
        start_timeout: float = START_TIMEOUT,
    ) -> None:
        if processes < 1:
            raise ValueError(f"processes must be at least 1, got {processes}")
        if max_batch < 1:
            raise ValueError(f"max_batch must be at least 1, got {max_batch}")
        self.job = job
        self.warm_up = warm_up
        self.processes = processes
        self.max_batch = max_batch
        self.start_timeout = start_timeout
        self.batch_sizes: collections.Counter[int] = collections.Counter()
        """How many batches of each size were sent (proof and metric of the batching)."""
        self.replaced = 0
        """Workers started to replace one that exited."""
        self._context = multiprocessing.get_context("forkserver")
        self._lock = threading.Lock()  # guards _closed and _started (close() may run anywhere)
        self._closed = False
        self._started: dict[BaseProcess, socket.socket] = {}
        self._workers: list[_Worker[ResultT]] = []
        self._idle: list[_Worker[ResultT]] = []
        self._queue: collections.deque[_Job[ResultT]] = collections.deque()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._dispatch_scheduled = False
        self._tasks: set[asyncio.Future[Any]] = set()
        try:
            # Start them all first, so they warm up in parallel.
            self._workers = [self._start() for _ in range(processes)]
            for worker in self._workers:
                self._await_ready(worker, start_timeout)
        except BaseException:
            self.close()
            raise

    # -- public ------------------------------------------------------------------------------

    async def lint(self, der: bytes, flag: bool) -> ResultT:
        """`job(der, flag)` as run in a worker. Raises `LintUnavailable` when the worker
        holding it exits or the pool closes first, `LintFailed` when the job raised."""
        if self._closed:
            raise LintUnavailable("the lint pool is closed; the certificate was not linted")
        loop = self._bind()
        job: _Job[ResultT] = _Job(der, flag, loop.create_future())
        self._queue.append(job)
        if not self._dispatch_scheduled:
            # Next loop turn: every certificate queued in this turn goes out together.
            self._dispatch_scheduled = True
            loop.call_soon(self._dispatch)
        return await job.future

    def pids(self) -> list[int]:
        """Process ids of the live workers (tests and benchmarks)."""
        return [w.pid for w in list(self._workers) if w.pid is not None and w.process.is_alive()]

    def busy(self) -> dict[int, int]:
        """{pid: certificates held} of the workers linting right now (tests)."""
        return {w.pid: len(w.batch) for w in list(self._workers) if w.batch and w.pid is not None}

    def close(self) -> None:
        """Stop every worker (after its batch in flight) and fail what is still queued. Safe
        from any thread, and more than once."""
        with self._lock:
            if self._closed:
                return
            self._closed = True
            started = dict(self._started)
        for sock in started.values():
            # End-of-file for the worker once it has answered its batch in flight.
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_WR)
        deadline = time.monotonic() + STOP_TIMEOUT
        for process in started:
            process.join(max(0.0, deadline - time.monotonic()))
        for process in started:
            if process.exitcode is None:
                log.warning("pkilint worker pid %s did not stop in time; killing it", process.pid)
                process.kill()
                process.join()
        loop = self._loop
        if loop is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._release)
                return
        for sock in started.values():
            sock.close()

    # -- starting workers ---------------------------------------------------------------------

    def _start(self) -> _Worker[ResultT]:
        """Start one worker process (blocking: a few ms; it warms up on its own)."""
        ours, theirs = socket.socketpair()
        process = self._context.Process(
            target=_serve,
            args=(theirs, self.job, self.warm_up),
            name="padlock-pkilint",
            daemon=True,
        )
        with self._lock:
            if self._closed:
                ours.close()
                theirs.close()
                raise LintUnavailable("the lint pool is closed")
            process.start()
            self._started[process] = ours
        # The worker's end must live in the worker alone: its exit then reads as end-of-file.
        theirs.close()
        return _Worker(self, process, ours)

    def _await_ready(self, worker: _Worker[ResultT], timeout: float) -> None:
        worker.sock.settimeout(timeout)
        try:
            message = _recv_frame(worker.sock)
        except TimeoutError:
            raise LintUnavailable(
                f"pkilint worker pid {worker.pid} did not warm up within {timeout:.0f} s"
            ) from None
        if message != _READY:
            worker.process.join(STOP_TIMEOUT)
            raise LintUnavailable(
                f"pkilint worker pid {worker.pid} exited during its warm-up (exit code "
                f"{worker.process.exitcode}); its traceback is on the CA's stderr"
            )
        worker.ready = True

    async def _replace(self, *, delay: float) -> None:
        """Start a worker in place of one that exited; it joins the idle ones once warm."""
        loop = asyncio.get_running_loop()
        if delay:
            await asyncio.sleep(delay)
        try:
            worker = await loop.run_in_executor(None, self._start)
        except LintUnavailable:
            return  # closed meanwhile
        except Exception:
            log.exception("could not start a replacement pkilint worker")
            self._fail_queued_if_no_worker("no pkilint worker could be started")
            return
        self.replaced += 1
        self._workers.append(worker)
        loop.call_later(self.start_timeout, self._check_warm, worker)
        await self._attach(worker)

    def _check_warm(self, worker: _Worker[ResultT]) -> None:
        """A replacement still not warm after `start_timeout` is killed (and replaced)."""
        if not worker.ready and worker in self._workers and not self._closed:
            log.warning(
                "pkilint worker pid %s did not warm up within %.0f s; killing it",
                worker.pid,
                self.start_timeout,
            )
            worker.process.kill()

    def _bind(self) -> asyncio.AbstractEventLoop:
        """The running loop, bound to the pool on first use (the sockets join it)."""
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return loop
        if self._loop is not None:
            raise RuntimeError("this LintPool already serves another event loop")
        self._loop = loop
        for worker in self._workers:
            self._spawn(self._attach(worker))
        return loop

    async def _attach(self, worker: _Worker[ResultT]) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.connect_accepted_socket(lambda: worker, worker.sock)
        except OSError as exc:
            log.warning("pkilint worker pid %s: cannot watch its socket: %s", worker.pid, exc)
            worker.process.kill()
            self._lost(worker)
            return
        if worker.ready and worker.transport is not None and not worker.transport.is_closing():
            self._idle.append(worker)
            self._dispatch()

    def _spawn(self, coro: Any) -> None:
        assert self._loop is not None
        task = self._loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    # -- batches ------------------------------------------------------------------------------

    def _dispatch(self) -> None:
        """Send what is queued to the idle workers, split evenly, at most `max_batch` each."""
        self._dispatch_scheduled = False
        if self._closed:
            self._fail(self._drain_queue(), _CLOSED)
            return
        while self._queue and self._idle:
            size = min(self.max_batch, -(-len(self._queue) // len(self._idle)))
            batch: list[_Job[ResultT]] = []
            while self._queue and len(batch) < size:
                job = self._queue.popleft()
                if not job.future.done():  # its caller may have been cancelled
                    batch.append(job)
            if batch:
                worker = self._idle.pop()
                self.batch_sizes[len(batch)] += 1
                worker.send(batch)

    def _answered(self, worker: _Worker[ResultT], payload: bytes) -> None:
        """A frame from `worker`: its warm-up is done, or the outcomes of its batch."""
        message = pickle.loads(payload)  # noqa: S301 (our own worker, over a socketpair)
        if not worker.ready:
            if message != _READY:
                self._protocol_error(worker, f"expected {_READY!r}, got {message!r}")
                return
            worker.ready = True
            self._idle.append(worker)
        else:
            batch, worker.batch = worker.batch, None
            if batch is None or not isinstance(message, list) or len(message) != len(batch):
                self._protocol_error(worker, "an answer that does not match its batch")
                worker.batch = batch  # failed as the worker's batch when it is gone
                return
            for job, (ok, value) in zip(batch, message, strict=True):
                if job.future.done():
                    continue
                if ok:
                    job.future.set_result(value)
                else:
                    log.warning("pkilint raised in worker pid %s: %s", worker.pid, value)
                    job.future.set_exception(
                        LintFailed(
                            f"pkilint failed on this certificate (worker pid {worker.pid}): "
                            f"{value}; the certificate was not released"
                        )
                    )
            self._idle.append(worker)
        self._dispatch()

    def _protocol_error(self, worker: _Worker[ResultT], what: str) -> None:
        log.error("pkilint worker pid %s sent %s; replacing it", worker.pid, what)
        worker.process.kill()  # its socket then closes: _lost() fails its batch and replaces it

    def _lost(self, worker: _Worker[ResultT]) -> None:
        """`worker`'s socket closed: it exited (or the pool is closing)."""
        if worker in self._idle:
            self._idle.remove(worker)
        if worker in self._workers:
            self._workers.remove(worker)
        else:
            return  # already handled
        if worker.transport is not None:
            worker.transport.close()
        batch, worker.batch = worker.batch or [], None
        if self._closed:
            self._fail(batch, _CLOSED)
            return
        self._fail(
            batch,
            f"pkilint worker pid {worker.pid} exited while linting this certificate (one of "
            f"{len(batch)}); the certificate was not released",
        )
        log.warning(
            "pkilint worker pid %s exited%s; starting a replacement",
            worker.pid,
            f" holding {len(batch)} certificates" if batch else "",
        )
        self._spawn(self._reap(worker))
        if not worker.ready:
            self._fail_queued_if_no_worker(f"pkilint worker pid {worker.pid} failed to warm up")
        # A worker that cannot even warm up would otherwise be restarted in a tight loop.
        self._spawn(self._replace(delay=0.0 if worker.ready else RESTART_DELAY))

    async def _reap(self, worker: _Worker[ResultT]) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, worker.process.join, STOP_TIMEOUT)
        log.warning("pkilint worker pid %s exit code: %s", worker.pid, worker.process.exitcode)
        with self._lock:
            sock = self._started.pop(worker.process, None)
        if sock is not None:
            sock.close()

    def _fail_queued_if_no_worker(self, why: str) -> None:
        if not any(w.ready for w in self._workers):
            self._fail(self._drain_queue(), f"{why}; the certificate was not linted")

    def _drain_queue(self) -> list[_Job[ResultT]]:
        drained = list(self._queue)
        self._queue.clear()
        return drained

    @staticmethod
    def _fail(jobs: list[_Job[ResultT]], message: str) -> None:
        for job in jobs:
            if not job.future.done():
                job.future.set_exception(LintUnavailable(message))

    def _release(self) -> None:
        """In the loop, after close(): fail what is queued or in flight, drop the sockets."""
        self._fail(self._drain_queue(), _CLOSED)
        for worker in list(self._workers):
            batch, worker.batch = worker.batch or [], None
            self._fail(batch, _CLOSED)
            if worker.transport is not None:
                worker.transport.close()
        self._workers.clear()
        self._idle.clear()
        with self._lock:
            socks = list(self._started.values())
            self._started.clear()
        for sock in socks:
            sock.close()
