"""`padlock ocsp serve`: open the ledger read-only, load the CA's responses, listen, poll.

Called by `padlock.cli.ocsp` (`run(config, options)`, blocking) and by tests
(`open_site()` / `serve()` in their own event loop).

Processes: `workers` > 1 forks that many worker processes before anything is opened, each
listening on the same port with SO_REUSEPORT (the kernel spreads connections) and keeping its
own memory and ledger connection; the parent forwards SIGTERM/SIGINT and exits when they do.
Each worker's event loop is uvloop. `/metrics` shows the worker that answered.

Key material: by default the responder holds none and serves what the CA pre-signed (see
`responder` for what that means for nonces). `sign=True` loads the delegated responder key
(`pkcs11.ocsp_key_label`) from the token so nonces, several CertIDs, SHA-2 CertIDs and unknown
serials are answered with a fresh signature; that needs the token (and PIN) in this process.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import urllib.parse
from collections.abc import AsyncIterator, Callable

import sqlalchemy.exc
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from padlock.ca import authority as authority_mod
from padlock.ca import config as ca_config
from padlock.ca import hsm, ocsp_signing, publication
from padlock.keys import base as keys_base
from padlock.ledger import errors as ledger_errors
from padlock.ledger import ledger as ledger_mod
from padlock.pki import ocsp
from padlock.services.ocsp import http
from padlock.services.ocsp import responder as responder_mod
from padlock.services.ocsp import store as store_mod

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class ServeOptions:
    """How `padlock ocsp serve` runs; the defaults serve loopback in one process."""

    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    sign: bool = False
    """Hold the delegated responder key and sign on demand (see the module docstring)."""
    poll_interval: float = 1.0
    """Seconds between reads of new revocations (a revocation is served within this)."""
    reload_interval: float = 300.0
    """Seconds between full reloads (refreshed responses and CRLs)."""
    max_body: int = http.MAX_BODY
    wait_for_ca: float = 60.0
    """Seconds to wait at start for the CA to migrate the ledger and register itself."""


def _paths(config: ca_config.CAConfig) -> tuple[str, str]:
    """(OCSP URL path, caIssuers URL path) from the URLs the CA writes into certificates."""
    ocsp_path = urllib.parse.urlsplit(config.urls.ocsp or "http://x/").path or "/"
    ca_path = urllib.parse.urlsplit(config.urls.ca_issuers or "").path or "/ca.crt"
    return ocsp_path, ca_path


@contextlib.asynccontextmanager
async def open_site(
    config: ca_config.CAConfig,
    options: ServeOptions | None = None,
    *,
    responder_key: Callable[[], keys_base.Signer] | None = None,
) -> AsyncIterator[http.Site]:
    """Everything one worker serves, loaded; the poll task runs until the context exits."""
    opts = options or ServeOptions()
    loop = asyncio.get_running_loop()
    executor = concurrent.futures.ThreadPoolExecutor(4, thread_name_prefix="padlock-ocsp")
    ledger: ledger_mod.Ledger | None = None
    source: hsm.TokenKeySource | None = None
    try:
        _root, intermediates = authority_mod.load_chain(config.chain_file)
        issuer = intermediates[0]
        ledger, ca_id = await _open_ledger(config, issuer, executor, opts.wait_for_ca)
        store = store_mod.ResponseStore(ledger, ca_id, reload_interval=opts.reload_interval)
        await loop.run_in_executor(executor, store.poll)
        signer = None
        if opts.sign:
            loader: Callable[[], keys_base.Signer] | None = responder_key
            if loader is None:
                p11 = config.pkcs11
                source = hsm.token_opener(
                    p11.module, p11.token_label, p11.pin_file, p11.ocsp_key_label
                )
                loader = source
            cert_file = publication.responder_certificate_file(config)
            signer = ocsp_signing.ResponseSigner(
                issuer=issuer,
                responder_certificate=x509.load_pem_x509_certificate(cert_file.read_bytes()),
                key=ocsp_signing.ResponderKey(loader),
            )
        ocsp_path, ca_path = _paths(config)
        site = http.Site(
            responder=responder_mod.Responder(
                store=store, hashes=ocsp.IssuerHashes.of(issuer), signer=signer, executor=executor
            ),
            store=store,
            ocsp_path=ocsp_path,
            ca_path=ca_path,
            ca_der=issuer.public_bytes(Encoding.DER),
            max_body=opts.max_body,
        )
        task = asyncio.create_task(_poll_forever(store, executor, opts.poll_interval))
        try:
            yield site
        finally:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    finally:
        if source is not None:
            source.close()
        if ledger is not None:
            ledger.close()
        executor.shutdown(wait=False, cancel_futures=True)


async def _open_ledger(
    config: ca_config.CAConfig,
    issuer: x509.Certificate,
    executor: concurrent.futures.Executor,
    wait: float,
) -> tuple[ledger_mod.Ledger, int]:
    """The ledger (read only) and the CA's id in it. The CA migrates the ledger and registers
    itself when it starts (`padlock ca serve`); in one pod both start together, so this waits
    up to `wait` seconds for that, then raises with what is missing."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + wait
    while True:
        ledger = None
        try:
            ledger = await loop.run_in_executor(
                executor, lambda: ledger_mod.Ledger(config.ledger.url, migrate=False)
            )
            # Read only: the responder never registers anything.
            ca_id = await loop.run_in_executor(executor, ledger.find_ca, issuer)
            if ca_id is not None:
                return ledger, ca_id
            problem: Exception = ValueError(
                f"the ledger {ledger.url} has no CA {issuer.subject.rfc4514_string()}: "
                "start `padlock ca serve` with this config first"
            )
        except (ledger_errors.LedgerError, sqlalchemy.exc.SQLAlchemyError) as exc:
            problem = exc
        if ledger is not None:
            ledger.close()
        if loop.time() >= deadline:
            raise problem
        log.info("waiting for the CA to prepare the ledger: %s", problem)
        await asyncio.sleep(1.0)


async def _poll_forever(
    store: store_mod.ResponseStore, executor: concurrent.futures.Executor, interval: float
) -> None:
    loop = asyncio.get_running_loop()
    while True:
        await asyncio.sleep(interval)
        try:
            await loop.run_in_executor(executor, store.poll)
            if store.stale:
                await loop.run_in_executor(executor, store.refresh_revoked_responses)
        except Exception:
            log.exception("reading the ledger failed; serving what is in memory")


async def serve(
    config: ca_config.CAConfig,
    options: ServeOptions | None = None,
    *,
    stop: asyncio.Event | None = None,
    started: Callable[[int], None] | None = None,
    reuse_port: bool = False,
) -> int:
    """Serve until `stop` is set (or SIGTERM/SIGINT); `started(port)` once listening."""
    opts = options or ServeOptions()
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    with contextlib.suppress(RuntimeError, ValueError):  # not the main thread (tests)
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signum, stop.set)
    try:
        async with open_site(config, opts) as site:
            server = await loop.create_server(
                lambda: http.HttpProtocol(site),
                opts.host,
                opts.port,
                reuse_port=reuse_port or None,
                backlog=1024,
            )
            port = server.sockets[0].getsockname()[1]
            log.info(
                "OCSP responder listening on http://%s:%d (pid %d)", opts.host, port, os.getpid()
            )
            if started is not None:
                started(port)
            async with server:
                await stop.wait()
                log.info("shutting down")
    except (OSError, ValueError, ledger_errors.LedgerError, sqlalchemy.exc.SQLAlchemyError) as exc:
        # Start-up failures: unreadable chain, ledger unreachable or not migrated, port taken.
        log.error("padlock ocsp serve cannot start: %s", exc)
        return 2
    return 0


def _worker(config: ca_config.CAConfig, options: ServeOptions) -> None:
    import uvloop

    raise SystemExit(uvloop.run(serve(config, options, reuse_port=True)))


def run(config: ca_config.CAConfig, options: ServeOptions | None = None) -> int:
    """Serve in `workers` processes until SIGTERM/SIGINT; the exit status."""
    opts = options or ServeOptions()
    if opts.workers <= 1:
        import uvloop

        return uvloop.run(serve(config, opts))
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_worker, args=(config, opts), name=f"padlock-ocsp-{i}")
        for i in range(opts.workers)
    ]
    for proc in workers:
        proc.start()

    def forward(signum: int, _frame: object) -> None:
        for proc in workers:
            if proc.pid is not None and proc.is_alive():
                os.kill(proc.pid, signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    running = list(workers)
    while running:
        multiprocessing.connection.wait([p.sentinel for p in running])
        for proc in [p for p in running if not p.is_alive()]:
            running.remove(proc)
            status = max(status, proc.exitcode or 0)
            if proc.exitcode:
                log.error("worker %s exited with status %s; stopping", proc.name, proc.exitcode)
                forward(signal.SIGTERM, None)
    return status
