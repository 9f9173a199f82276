"""One CA worker process: `python -m padlock.services.ca_http.worker ...`, started only by
`padlock.services.ca_http.supervisor` (config `workers` > 1), never by hand.

A fresh interpreter (no fork of a process that holds a PKCS#11 session or a database
connection): it loads the config the supervisor wrote, adopts the listening sockets it
inherited (`--listen unix=FD`), opens its own ledger connection, HSM session, thread pool,
pipeline and pkilint processes through the very same `init_app` as a single CA, and serves
with `server.serve(bound=...)`.

The control socket (`--control-fd`) is how the two sides talk: the worker writes `ready` once
it accepts connections; the supervisor writes `stop` just before it sends SIGTERM for a
graceful stop, and nothing else, so end-of-file means the supervisor is gone, and the worker
then shuts down gracefully. PR_SET_PDEATHSIG (Linux) sends SIGTERM too, should the event loop
be busy. Exit status: 0 after SIGTERM, 2 when it cannot start.

A killed supervisor cannot remove its runtime directory, so worker 0 does, once the
supervisor's lock on it is free (`LOCK_FILE`: released only when the supervisor
process is entirely gone). Two details of Linux make "the supervisor is gone" tricky, and are
why neither `getppid()` nor the first SIGTERM is trusted: PR_SET_PDEATHSIG fires when the
parent *thread* exits, and the supervisor has several threads (asyncio's child watchers), so a
worker is first re-parented to a surviving thread of the same process (`getppid()` unchanged)
and may get one SIGTERM per thread that dies. The worker therefore clears PR_SET_PDEATHSIG as
soon as it starts stopping (a later SIGTERM, after the event loop's handler is gone, would
kill it before the clean-up).

pkilint's pool processes re-import this module's package (so, the CA and `padlock.metrics`);
with `PROMETHEUS_MULTIPROC_DIR` set they would each add a `padlock_ca_hsm_up` of 0 to the
workers' totals. So the worker starts the multiprocessing forkserver, parent of every pool
process, before anything else and without that variable (`_start_forkserver`).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ctypes
import fcntl
import logging
import os
import shutil
import signal
import socket
import sys
import time
from multiprocessing import forkserver
from pathlib import Path

from padlock import metrics
from padlock.ca import config as ca_config
from padlock.services.ca_http import listeners, server
from padlock.services.ca_http.app import AppOptions, WorkerRole

log = logging.getLogger(__name__)

READY = b"ready\n"
"""What a worker writes on its control socket once every listener accepts."""
STOP = b"stop\n"
"""What the supervisor writes on a worker's control socket just before a graceful SIGTERM."""
LOCK_FILE = "supervisor.lock"
"""Held (flock) by the supervisor for its whole life, in its runtime directory."""
GONE_SECONDS = 5.0
"""How long worker 0 waits for a vanishing supervisor's lock before it gives up the clean-up
(the next supervisor then removes the directory: `supervisor._remove_stale_runtimes`)."""
_PR_SET_PDEATHSIG = 1


def _listen_arg(value: str) -> tuple[str, int]:
    name, _, fd = value.partition("=")
    if not fd.isdigit():
        raise argparse.ArgumentTypeError(f"--listen wants NAME=FD, got {value!r}")
    return name, int(fd)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m padlock.services.ca_http.worker")
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--index", type=int, required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--runtime-dir", type=Path, required=True)
    parser.add_argument("--control-fd", type=int, required=True)
    parser.add_argument("--parent-pid", type=int, required=True)
    parser.add_argument("--listen", type=_listen_arg, action="append", default=[])
    parser.add_argument("-v", "--verbose", action="store_true")
    return parser.parse_args(argv)


def _parent_death_signal(signum: int) -> None:
    """PR_SET_PDEATHSIG (Linux): `signum` when the supervisor's thread that started this
    process exits; 0 clears it."""
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signum, 0, 0, 0)


def _die_with_parent(parent_pid: int) -> None:
    """SIGTERM this process when the supervisor dies (Linux); exit now if it already did."""
    _parent_death_signal(signal.SIGTERM)
    if os.getppid() != parent_pid:
        raise SystemExit(f"CA worker: supervisor {parent_pid} is gone before start-up")


def _remove_when_unlocked(runtime_dir: Path, timeout: float) -> bool:
    """Remove the runtime directory of a supervisor that is gone, once its lock is free
    (flock: released when the supervisor process has fully exited); False if it stayed held."""
    try:
        fd = os.open(runtime_dir / LOCK_FILE, os.O_RDWR)
    except FileNotFoundError:
        return True  # already removed
    try:
        deadline = time.monotonic() + timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    return False
                time.sleep(0.05)
        shutil.rmtree(runtime_dir, ignore_errors=True)
        return True
    finally:
        os.close(fd)


def _start_forkserver() -> None:
    """Start the forkserver of pkilint's pool (`padlock.ca.lintgate`) now, while this process
    is single-threaded, with an environment that keeps its children out of the metrics."""
    directory = os.environ.pop(metrics.MULTIPROCESS_ENV, None)
    try:
        forkserver.ensure_running()
    finally:
        if directory is not None:
            os.environ[metrics.MULTIPROCESS_ENV] = directory


class _Supervisor:
    """What this worker heard from its supervisor on the control socket."""

    def __init__(self) -> None:
        self.said_stop = False
        self.gone = False


async def _watch_supervisor(
    reader: asyncio.StreamReader, stop: asyncio.Event, heard: _Supervisor
) -> None:
    while line := await reader.readline():
        if line == STOP:
            heard.said_stop = True
    heard.gone = True  # end-of-file: the supervisor process has exited
    if not stop.is_set():
        log.error("the supervisor is gone; shutting down")
        stop.set()


async def _clear_parent_death_signal(stop: asyncio.Event) -> None:
    """Once stopping, no further SIGTERM from the supervisor's dying threads (see above)."""
    await stop.wait()
    _parent_death_signal(0)


async def serve_worker(
    config: ca_config.CAConfig,
    role: WorkerRole,
    bound: listeners.Listeners,
    control_fd: int,
    heard: _Supervisor | None = None,
) -> int:
    """Serve `bound` as worker `role` until SIGTERM or the supervisor's end; exit status.
    `heard` records whether the supervisor asked for the stop."""
    heard = heard if heard is not None else _Supervisor()
    stop = asyncio.Event()
    control = socket.socket(fileno=control_fd)
    reader, writer = await asyncio.open_unix_connection(sock=control)
    watch = asyncio.create_task(
        _watch_supervisor(reader, stop, heard), name="padlock-supervisor-watch"
    )
    clear = asyncio.create_task(_clear_parent_death_signal(stop), name="padlock-pdeathsig")

    def ready() -> None:
        writer.write(READY)
        log.info("CA worker %d/%d ready (pid %d)", role.index, role.count, os.getpid())

    try:
        return await server.serve(
            config, AppOptions(worker=role), stop=stop, bound=bound, ready=ready
        )
    finally:
        for task in (watch, clear):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        writer.close()


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format=f"%(asctime)s %(levelname)s worker-{args.index} %(name)s: %(message)s",
    )
    _die_with_parent(args.parent_pid)
    try:
        config = ca_config.load(args.config)
    except ca_config.ConfigError as exc:
        log.error("padlock ca serve cannot start: %s", exc)
        return server.STARTUP_FAILED
    if config.lint.enabled and config.per_worker_lint_processes() > 0:
        _start_forkserver()
    role = WorkerRole(index=args.index, count=args.count, runtime_dir=args.runtime_dir)
    bound = listeners.Listeners.from_fds(dict(args.listen))
    heard = _Supervisor()
    status = asyncio.run(serve_worker(config, role, bound, args.control_fd, heard))
    # Not a graceful stop: the supervisor was killed and cannot remove its runtime directory
    # (metrics files, rate-limit table); worker 0 does, so restarts do not pile them up.
    orphaned = role.index == 0 and not heard.said_stop
    if orphaned and not _remove_when_unlocked(role.runtime_dir, GONE_SECONDS):
        log.warning("the supervisor still holds %s; not removing it", role.runtime_dir)
    return status


if __name__ == "__main__":
    sys.exit(main())
