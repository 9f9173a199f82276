"""Listening and lifecycle of `padlock ca serve`: unix socket, optional loopback TCP + mTLS.

Called by the CLI (`run(config)`, blocking), by `python -m padlock.services.ca_http`, and by
each worker process (`padlock.services.ca_http.worker`, through `serve(listeners=...)`).
With `workers: 1` this process binds and serves; with more, `run` hands over to
`padlock.services.ca_http.supervisor`, which binds once and starts the workers.
SIGTERM and SIGINT stop accepting, let in-flight requests finish (up to `SHUTDOWN_SECONDS`),
then close the resources of `init_app` in reverse order; the exit status is 0. A start-up
failure (unreadable chain, unreachable ledger) is logged in one line; the status is 2.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
from collections.abc import Callable

from aiohttp import log as aiohttp_log
from aiohttp import web

from padlock.ca import config as ca_config
from padlock.services.ca_http import handlers, listeners
from padlock.services.ca_http.app import AppOptions, init_app

log = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 10.0
SOCKET_MODE = listeners.SOCKET_MODE
STARTUP_FAILED = 2
"""Exit status of a CA that could not start (bad chain file, unreachable ledger, ...)."""


def run(config: ca_config.CAConfig, options: AppOptions | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the process exit status."""
    if config.workers > 1:
        if options is not None:
            raise ValueError("AppOptions seams need workers: 1 (workers are fresh processes)")
        from padlock.services.ca_http import supervisor

        return supervisor.run(config)
    return asyncio.run(serve(config, options))


def mtls_context(listen: ca_config.ListenConfig) -> ssl.SSLContext:
    """Server TLS context that requires a client certificate from `tls_client_ca_file`."""
    if listen.tls_cert_file is None or listen.tls_key_file is None:
        raise ValueError("listen: TCP with TLS needs tls_cert_file and tls_key_file")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(listen.tls_cert_file, listen.tls_key_file)
    if listen.tls_client_ca_file is not None:
        context.load_verify_locations(cafile=str(listen.tls_client_ca_file))
        context.verify_mode = ssl.CERT_REQUIRED
    return context


def _access_log(listen: ca_config.ListenConfig) -> logging.Logger | None:
    """aiohttp's access logger when `listen.access_log` asks for it, else None (off)."""
    return aiohttp_log.access_logger if listen.access_log else None


async def _start_metrics(
    listen: ca_config.ListenConfig, bound: listeners.Listeners | None
) -> web.AppRunner | None:
    """A separate scrape-only listener, so Prometheus never reaches the signing API."""
    if listen.metrics_port is None:
        return None
    app = web.Application()
    app.router.add_get("/metrics", handlers.metrics_text)
    runner = web.AppRunner(app, handle_signals=False, access_log=_access_log(listen))
    await runner.setup()
    if bound is not None and bound.metrics is not None:
        await web.SockSite(runner, bound.metrics).start()
    else:
        await web.TCPSite(runner, listen.metrics_host, listen.metrics_port).start()
    log.info("CA metrics on http://%s:%s/metrics", listen.metrics_host, listen.metrics_port)
    return runner


async def _start_api(
    runner: web.AppRunner, listen: ca_config.ListenConfig, bound: listeners.Listeners | None
) -> None:
    tls = mtls_context(listen) if listen.tls_cert_file is not None else None
    if bound is not None:
        # A worker: the supervisor bound (and chmod-ed) the sockets.
        if bound.unix is not None:
            await web.SockSite(runner, bound.unix).start()
        if bound.tcp is not None:
            await web.SockSite(runner, bound.tcp, ssl_context=tls).start()
        return
    if listen.socket is not None:
        listeners.remove_stale_socket(listen.socket)
        site = web.UnixSite(runner, listen.socket)
        await site.start()
        listen.socket.chmod(SOCKET_MODE)
        log.info("CA listening on unix socket %s", listen.socket)
    if listen.tcp_port is not None:
        tcp = web.TCPSite(runner, listen.tcp_host, listen.tcp_port, ssl_context=tls)
        await tcp.start()
        log.info(
            "CA listening on %s://%s:%s",
            "https" if tls else "http",
            listen.tcp_host,
            listen.tcp_port,
        )


async def serve(
    config: ca_config.CAConfig,
    options: AppOptions | None = None,
    *,
    stop: asyncio.Event | None = None,
    bound: listeners.Listeners | None = None,
    ready: Callable[[], None] | None = None,
) -> int:
    """Start the app, listen, wait for `stop` (or a signal), shut down cleanly.

    `bound`: serve these already listening sockets (a worker) instead of binding `listen`.
    `ready`: called once every listener accepts (a worker tells its supervisor).
    """
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(
        init_app(config, options),
        handle_signals=False,
        shutdown_timeout=SHUTDOWN_SECONDS,
        access_log=_access_log(config.listen),
    )
    try:
        await runner.setup()
    except (OSError, ValueError) as exc:
        log.error("padlock ca serve cannot start: %s", exc)
        await runner.cleanup()
        return STARTUP_FAILED
    metrics_runner: web.AppRunner | None = None
    try:
        await _start_api(runner, config.listen, bound)
        metrics_runner = await _start_metrics(config.listen, bound)
        if ready is not None:
            ready()
        await stop.wait()
        log.info("shutting down")
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0
