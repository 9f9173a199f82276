"""Listening and lifecycle of `padlock ca serve`: unix socket, optional loopback TCP + mTLS.

Called by the CLI (`run(config)`, blocking) and by `python -m padlock.services.ca_http`.
SIGTERM and SIGINT stop accepting, let in-flight requests finish (up to `SHUTDOWN_SECONDS`),
then close the resources of `init_app` in reverse order; the exit status is 0. A start-up
failure (unreadable chain, unreachable ledger) is logged in one line; the status is 2.
"""

from __future__ import annotations

import asyncio
import logging
import signal
import ssl
import stat
from pathlib import Path

from aiohttp import web

from padlock.ca import config as ca_config
from padlock.services.ca_http import handlers
from padlock.services.ca_http.app import AppOptions, init_app

log = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 10.0
SOCKET_MODE = 0o660
"""The operator container shares the socket's directory (an emptyDir) and group."""


def run(config: ca_config.CAConfig, options: AppOptions | None = None) -> int:
    """Serve until SIGTERM/SIGINT; the process exit status."""
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


def _remove_stale_socket(path: Path) -> None:
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ValueError(f"{path} exists and is not a socket; refusing to replace it")
    path.unlink()


async def _start_metrics(listen: ca_config.ListenConfig) -> web.AppRunner | None:
    """A separate scrape-only listener, so Prometheus never reaches the signing API."""
    if listen.metrics_port is None:
        return None
    app = web.Application()
    app.router.add_get("/metrics", handlers.metrics_text)
    runner = web.AppRunner(app, handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, listen.metrics_host, listen.metrics_port).start()
    log.info("CA metrics on http://%s:%s/metrics", listen.metrics_host, listen.metrics_port)
    return runner


async def serve(
    config: ca_config.CAConfig,
    options: AppOptions | None = None,
    *,
    stop: asyncio.Event | None = None,
) -> int:
    """Start the app, listen, wait for `stop` (or a signal), shut down cleanly."""
    stop = stop or asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    runner = web.AppRunner(
        init_app(config, options), handle_signals=False, shutdown_timeout=SHUTDOWN_SECONDS
    )
    try:
        await runner.setup()
    except (OSError, ValueError) as exc:
        log.error("padlock ca serve cannot start: %s", exc)
        await runner.cleanup()
        return 2
    metrics_runner: web.AppRunner | None = None
    try:
        listen = config.listen
        if listen.socket is not None:
            _remove_stale_socket(listen.socket)
            site = web.UnixSite(runner, listen.socket)
            await site.start()
            listen.socket.chmod(SOCKET_MODE)
            log.info("CA listening on unix socket %s", listen.socket)
        if listen.tcp_port is not None:
            tls = mtls_context(listen) if listen.tls_cert_file is not None else None
            tcp = web.TCPSite(
                runner,
                listen.tcp_host,
                listen.tcp_port,
                ssl_context=tls,
            )
            await tcp.start()
            log.info(
                "CA listening on %s://%s:%s",
                "https" if tls else "http",
                listen.tcp_host,
                listen.tcp_port,
            )
        metrics_runner = await _start_metrics(listen)
        await stop.wait()
        log.info("shutting down")
    finally:
        if metrics_runner is not None:
            await metrics_runner.cleanup()
        await runner.cleanup()
        for signum in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(signum)
    return 0
