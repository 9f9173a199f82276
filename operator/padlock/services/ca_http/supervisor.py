"""The parent of several CA worker processes (`padlock ca serve` with `workers` > 1).

Called by `padlock.services.ca_http.server.run`. One CPython process signs at most about one
core's worth of certificates (the GIL; docs/design/20261127.group-commit.md), so this process
binds the listening sockets once (`listeners.bind`) and starts `workers` fresh interpreters
(`padlock.services.ca_http.worker`, inheriting the sockets' file descriptors) that all accept
on them; the kernel hands each connection to one of them. It never signs, never opens the
ledger or the HSM, and stays small:

- start-up: every worker must say `ready`; if one exits first (bad chain file, unreachable
  ledger), the others are stopped and the exit status is 2, as for a single CA process;
- SIGTERM/SIGINT: forwarded to every worker, which finishes its in-flight requests; the
  status is 0 once all have exited (stragglers are killed after `STOP_SECONDS`);
- a worker that dies unexpectedly is replaced under the same index (so worker 0 keeps the
  publication timer), after a back-off that grows while replacements keep failing;
- a private runtime directory (0700, removed at exit; after a SIGKILL by worker 0 or by the
  next supervisor) holds the config the workers load, the
  prometheus-client files of every worker (`PROMETHEUS_MULTIPROC_DIR`, see
  `padlock.metrics`), the shared rate-limit table and the CRL publication lock;
- the workers end with the supervisor: each holds a control socket whose other end only the
  supervisor has (end-of-file when it dies, even by SIGKILL), and PR_SET_PDEATHSIG.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import fcntl
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from pathlib import Path

import yaml

from padlock import metrics
from padlock.ca import config as ca_config
from padlock.services.ca_http import listeners, server, worker

log = logging.getLogger(__name__)

STOP_SECONDS = server.SHUTDOWN_SECONDS + 10.0
"""How long workers get to finish after SIGTERM before they are killed."""
BACKOFF_SECONDS = (1.0, 2.0, 4.0, 8.0, 16.0, 30.0)
"""Wait before the 1st, 2nd, ... replacement in a row of a worker that keeps dying."""
STABLE_SECONDS = 60.0
"""A worker that served this long before dying is replaced after the shortest wait."""
RUNTIME_PREFIX = "padlock-ca-"
LOCK_FILE = worker.LOCK_FILE
"""Held (flock) by the supervisor for its whole life: a runtime directory whose lock is free
belongs to a supervisor that was killed, and the next one removes it."""


@dataclasses.dataclass
class _Worker:
    index: int
    process: asyncio.subprocess.Process
    control: asyncio.StreamWriter
    reader: asyncio.StreamReader
    started: float
    ready: bool = False


def run(config: ca_config.CAConfig) -> int:
    """Supervise `config.workers` workers until SIGTERM/SIGINT; the exit status."""
    return asyncio.run(Supervisor(config).run())


def _remove_stale_runtimes(base: Path) -> None:
    """Remove runtime directories of killed supervisors (in a pod, /tmp outlives a container
    that was OOM-killed; its metrics files would pile up). Live ones hold their lock."""
    for directory in base.glob(f"{RUNTIME_PREFIX}*"):
        try:
            fd = os.open(directory / LOCK_FILE, os.O_RDWR)
        except OSError:
            continue  # not ours, or being created right now
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a running supervisor
        finally:
            os.close(fd)
        log.info("removing %s, left by a CA supervisor that was killed", directory)
        shutil.rmtree(directory, ignore_errors=True)


def write_worker_config(config: ca_config.CAConfig, path: Path) -> None:
    """The config every worker loads: an exact copy (None fields written as null), except
    that with `ledger.url_file` the URL, which may hold a password, is left in that file."""
    if config.ledger.url_file is not None:
        config = dataclasses.replace(
            config, ledger=ca_config.LedgerSettings(url_file=config.ledger.url_file)
        )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        yaml.safe_dump(config.to_dict(omit_none=False), out, sort_keys=False)


class Supervisor:
    """Binds, starts, replaces and stops the workers of one `padlock ca serve` (see above)."""

    def __init__(self, config: ca_config.CAConfig) -> None:
        self.config = config
        self.workers: dict[int, _Worker] = {}
        self._stop = asyncio.Event()
        self._runtime: Path | None = None
        self._bound: listeners.Listeners | None = None
        self._failures: dict[int, int] = {}
        self._lock_fd: int | None = None

    # -- lifecycle -------------------------------------------------------------------------

    def stop(self) -> None:
        """What SIGTERM does: stop every worker gracefully, then `run` returns 0."""
        self._stop.set()

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, self.stop)
        try:
            try:
                self._bound = listeners.bind(self.config.listen)
            except (OSError, ValueError) as exc:
                log.error("padlock ca serve cannot start: %s", exc)
                return server.STARTUP_FAILED
            self._runtime = self._make_runtime()
            return await self._supervise()
        finally:
            if self._bound is not None:
                self._bound.close(unlink=True)
            if self._runtime is not None:
                shutil.rmtree(self._runtime, ignore_errors=True)
            if self._lock_fd is not None:
                os.close(self._lock_fd)
            for signum in (signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(signum)

    async def _supervise(self) -> int:
        count = self.config.workers
        started = await asyncio.gather(*(self._spawn(i) for i in range(count)))
        if not all(w.ready for w in started):
            failed = [w for w in started if not w.ready]
            log.error(
                "padlock ca serve cannot start: worker %d exited with status %s (see its log)",
                failed[0].index,
                failed[0].process.returncode,
            )
            await self._stop_all()
            return server.STARTUP_FAILED
        log.info(
            "CA serving with %d workers (pids %s)",
            count,
            ", ".join(str(w.process.pid) for w in started),
        )
        keepers = [
            asyncio.create_task(self._keep(i), name=f"padlock-keep-{i}") for i in range(count)
        ]
        await self._stop.wait()
        log.info("stopping %d workers", len(self.workers))
        for keeper in keepers:
            keeper.cancel()
        await asyncio.gather(*keepers, return_exceptions=True)
        await self._stop_all()
        return 0

    def _make_runtime(self) -> Path:
        _remove_stale_runtimes(Path(tempfile.gettempdir()))
        runtime = Path(tempfile.mkdtemp(prefix=RUNTIME_PREFIX))
        # Lock under another name, then rename: nobody can find the lock file unlocked.
        self._lock_fd = os.open(runtime / f".{LOCK_FILE}", os.O_RDWR | os.O_CREAT, 0o600)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        (runtime / f".{LOCK_FILE}").rename(runtime / LOCK_FILE)
        (runtime / "metrics").mkdir()
        write_worker_config(self.config, runtime / "ca.yaml")
        return runtime

    def _metrics_dir(self) -> str:
        assert self._runtime is not None
        return str(self._runtime / "metrics")

    # -- workers ---------------------------------------------------------------------------

    def _command(self, index: int, control_fd: int) -> list[str]:
        assert self._runtime is not None and self._bound is not None
        command = [
            sys.executable, "-m", worker.__name__,
            "--config", str(self._runtime / "ca.yaml"),
            "--index", str(index),
            "--count", str(self.config.workers),
            "--runtime-dir", str(self._runtime),
            "--control-fd", str(control_fd),
            "--parent-pid", str(os.getpid()),
        ]  # fmt: skip
        for name, fd in self._bound.fds().items():
            command += ["--listen", f"{name}={fd}"]
        if logging.getLogger().isEnabledFor(logging.DEBUG):
            command.append("--verbose")
        return command

    async def _spawn(self, index: int) -> _Worker:
        """Start worker `index` and wait until it is ready or has exited."""
        assert self._runtime is not None and self._bound is not None
        ours, theirs = socket.socketpair()
        env = {**os.environ, metrics.MULTIPROCESS_ENV: self._metrics_dir()}
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        try:
            process = await asyncio.create_subprocess_exec(
                *self._command(index, theirs.fileno()),
                pass_fds=[*self._bound.fds().values(), theirs.fileno()],
                env=env,
            )
        except BaseException:
            writer.close()
            raise
        finally:
            theirs.close()
        started = _Worker(index, process, writer, reader, time.monotonic())
        self.workers[index] = started
        started.ready = await reader.readline() == worker.READY
        if not started.ready:
            await process.wait()
        return started

    async def _keep(self, index: int) -> None:
        """Replace worker `index` whenever it exits, until the supervisor stops."""
        while True:
            current = self.workers[index]
            status = await current.process.wait()
            current.control.close()
            metrics.mark_process_dead(current.process.pid, self._metrics_dir())
            lived = time.monotonic() - current.started
            failures = (
                0 if current.ready and lived >= STABLE_SECONDS else self._failures.get(index, 0)
            )
            delay = BACKOFF_SECONDS[min(failures, len(BACKOFF_SECONDS) - 1)]
            self._failures[index] = failures + 1
            log.error(
                "CA worker %d (pid %d) exited with status %s after %.0f s; replacing it in %.0f s",
                index, current.process.pid, status, lived, delay,
            )  # fmt: skip
            await asyncio.sleep(delay)
            replacement = await self._spawn(index)
            if replacement.ready:
                log.info("CA worker %d replaced (pid %d)", index, replacement.process.pid)

    async def _stop_all(self) -> None:
        """SIGTERM every worker; wait for them (killing stragglers after STOP_SECONDS)."""
        running = [w for w in self.workers.values() if w.process.returncode is None]
        for w in running:
            # Said first, so the worker knows this SIGTERM is ours, not its parent-death
            # signal (worker 0 then leaves the runtime directory to us).
            with contextlib.suppress(OSError):
                w.control.write(worker.STOP)
                await w.control.drain()
        for w in running:
            with contextlib.suppress(ProcessLookupError):
                w.process.send_signal(signal.SIGTERM)
        waits = [asyncio.create_task(w.process.wait()) for w in running]
        if waits:
            _done, pending = await asyncio.wait(waits, timeout=STOP_SECONDS)
            for w in running:
                if w.process.returncode is None:
                    log.error(
                        "CA worker %d (pid %d) did not stop; killing it", w.index, w.process.pid
                    )
                    with contextlib.suppress(ProcessLookupError):
                        w.process.kill()
            if pending:
                await asyncio.wait(pending)
        for w in self.workers.values():
            w.control.close()
            metrics.mark_process_dead(w.process.pid, self._metrics_dir())
