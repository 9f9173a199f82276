"""`init_app(config)`: the CA's aiohttp application, the same in production and in tests.

Called by `server.serve()` and by the integration tests. Every resource is opened in a
`cleanup_ctx` generator, in order, and closed in reverse on shutdown:

1. the thread pool for HSM signing and ledger calls (`signing_threads`);
2. the ledger (migrated to the current schema on open);
3. the lint gate's pkilint process pool (`lint.processes`);
4. the issuing key in the HSM, plus the background task that reconnects after a loss — the
   CA starts (and answers 503) even when the token is not reachable yet;
5. the issuing CA (chain file, registered in the ledger), the pipeline, the revoker and the
   rate limiter, published to the handlers as `state.CA`;
6. revocation status publication (`padlock.ca.publication`): OCSP pre-signing and CRL shards,
   hooked into the pipeline and the revoker, plus its timer task.

`AppOptions` holds the seams tests use (a clock, a faulty certificate builder for the lint
gate, another key opener); production passes none, except `worker` in a worker process of a
CA with `workers` > 1 (`padlock.services.ca_http.worker`): then the rate-limit buckets live
in a file all workers share, CRL publication holds a lock file all workers share, only
worker 0 runs the publication timer, pkilint gets this worker's share of `lint.processes`,
and every answer names the worker in the `X-Padlock-Worker` header (`index/pid`).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import dataclasses
import datetime
import functools
import logging
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from pathlib import Path

from aiohttp import web

from padlock import metrics
from padlock.ca import authority as authority_mod
from padlock.ca import config as ca_config
from padlock.ca import errors, hsm, lintgate, lintpool, pipeline, publication, revocation
from padlock.keys import base as keys_base
from padlock.ledger import ledger as ledger_mod
from padlock.pki import profiles, serials
from padlock.services.ca_http import crl_lock, handlers, ratelimit, routes, state
from padlock.services.ca_http import errors as http_errors

log = logging.getLogger(__name__)


@dataclasses.dataclass(frozen=True)
class WorkerRole:
    """One of `count` CA worker processes (`workers` > 1), set up by the supervisor."""

    index: int
    count: int
    runtime_dir: Path
    """The supervisor's private directory (metrics files, shared rate limit, CRL lock)."""

    @property
    def runs_timers(self) -> bool:
        """Only worker 0 runs the publication timer (a replacement keeps the index)."""
        return self.index == 0

    @property
    def rate_limit_file(self) -> Path:
        return self.runtime_dir / "ratelimit.bin"

    @property
    def crl_lock_file(self) -> Path:
        return self.runtime_dir / "crl.lock"


@dataclasses.dataclass(frozen=True)
class AppOptions:
    """Seams for tests and benchmarks; the defaults are production."""

    opener: hsm.SignerOpener | None = None
    """Opens the issuing key; default: the config's PKCS#11 token and key label."""
    build: pipeline.Builder = profiles.build_certificate
    """The certificate builder (tests pass a faulty one to prove the lint gate)."""
    now: Callable[[], datetime.datetime] = pipeline.utc_now
    clock: Callable[[], float] = time.monotonic
    """Monotonic seconds for the rate limiter."""
    hsm_retry_seconds: float = 1.0
    """How often the background task retries a lost token."""
    hsm_probe_seconds: float = 5.0
    """How often it checks a healthy token is still there."""
    after_issue: Sequence[pipeline.AfterIssue] = ()
    ocsp_key: Callable[[], keys_base.Signer] | None = None
    """Loads the delegated OCSP responder key; default: `pkcs11.ocsp_key_label` in the token."""
    publication_interval: float = 60.0
    """Seconds between passes of the OCSP/CRL refresh timer."""
    new_serial: Callable[[], int] = serials.new_serial
    """Serial source (tests force a collision with it)."""
    worker: WorkerRole | None = None
    """This process's place among several CA workers; None: the only CA process."""


_EXECUTOR = web.AppKey("padlock_executor", concurrent.futures.ThreadPoolExecutor)
_LEDGER = web.AppKey("padlock_ledger", ledger_mod.Ledger)
_LINT = web.AppKey("padlock_lint", lintgate.LintGate)
_KEY = web.AppKey("padlock_key", hsm.IssuingKey)
_TOKEN = web.AppKey("padlock_token_source", hsm.TokenKeySource)


def init_app(config: ca_config.CAConfig, options: AppOptions | None = None) -> web.Application:
    """Build the CA application for `config`; resources open when the app starts."""
    opts = options or AppOptions()
    app = web.Application(client_max_size=handlers.MAX_BODY, middlewares=[_error_middleware])
    routes.setup_routes(app)
    if opts.worker is not None:
        app.on_response_prepare.append(_worker_header(opts.worker))
    app.cleanup_ctx.append(_executor_ctx(config))
    app.cleanup_ctx.append(_ledger_ctx(config))
    app.cleanup_ctx.append(_lint_ctx(config, opts))
    app.cleanup_ctx.append(_key_ctx(config, opts))
    app.cleanup_ctx.append(_ca_ctx(config, opts))
    app.cleanup_ctx.append(_publication_ctx(config, opts))
    return app


Ctx = Callable[[web.Application], AsyncIterator[None]]


def _executor_ctx(config: ca_config.CAConfig) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        executor = concurrent.futures.ThreadPoolExecutor(
            max_workers=config.signing_threads, thread_name_prefix="padlock-ca"
        )
        app[_EXECUTOR] = executor
        yield
        executor.shutdown(wait=True, cancel_futures=True)

    return ctx


def _ledger_ctx(config: ca_config.CAConfig) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        ledger = await loop.run_in_executor(
            app[_EXECUTOR], lambda: ledger_mod.Ledger(config.ledger.url, migrate=True)
        )
        app[_LEDGER] = ledger
        yield
        ledger.close()

    return ctx


def _lint_ctx(config: ca_config.CAConfig, opts: AppOptions) -> Ctx:
    processes = config.per_worker_lint_processes() if opts.worker else config.lint.processes

    async def ctx(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        gate = await loop.run_in_executor(
            app[_EXECUTOR],
            lambda: lintgate.LintGate(
                enabled=config.lint.enabled,
                cabf_serverauth=config.lint.cabf_serverauth,
                processes=processes,
            ),
        )
        app[_LINT] = gate
        yield
        await loop.run_in_executor(None, gate.close)

    return ctx


def _key_ctx(config: ca_config.CAConfig, opts: AppOptions) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        p11 = config.pkcs11
        opener = opts.opener or hsm.token_opener(
            p11.module, p11.token_label, p11.pin_file, p11.key_label
        )
        key = hsm.IssuingKey(
            opener,
            retry_interval=opts.hsm_retry_seconds,
            probe_interval=opts.hsm_probe_seconds,
        )
        if isinstance(opener, hsm.TokenKeySource):
            app[_TOKEN] = opener
        metrics.CA_HSM_UP.set(0)
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(app[_EXECUTOR], key.open)
        except keys_base.KeyBackendError as exc:
            # Start anyway: /healthz says 503 and the background task keeps trying.
            log.error("cannot open the issuing key yet: %s", exc)
        app[_KEY] = key
        task = asyncio.create_task(key.reconnect_forever(), name="padlock-hsm-reconnect")
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await loop.run_in_executor(None, key.close)

    return ctx


def _ca_ctx(config: ca_config.CAConfig, opts: AppOptions) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        loop = asyncio.get_running_loop()
        executor, ledger = app[_EXECUTOR], app[_LEDGER]
        authority = await loop.run_in_executor(executor, authority_mod.load, config, ledger)
        ca_pipeline = pipeline.Pipeline(
            authority=authority,
            key=app[_KEY],
            ledger=ledger,
            lint=app[_LINT],
            policy=pipeline.issuance_policy(config.policy),
            executor=executor,
            build=opts.build,
            after_issue=opts.after_issue,
            now=opts.now,
            new_serial=opts.new_serial,
        )
        app[state.CA] = state.CAState(
            authority=authority,
            key=app[_KEY],
            pipeline=ca_pipeline,
            revoker=revocation.Revoker(ledger=ledger, ca_id=authority.ca_id, executor=executor),
            limiter=_limiter(config, opts),
        )
        yield
        await ca_pipeline.close()
        app[state.CA].limiter.close()

    return ctx


def _limiter(config: ca_config.CAConfig, opts: AppOptions) -> ratelimit.RateLimiter:
    rate, burst = config.rate_limit.requests_per_second, config.rate_limit.burst
    if opts.worker is None:
        return ratelimit.RateLimiter(rate, burst, opts.clock)
    return ratelimit.SharedRateLimiter(opts.worker.rate_limit_file, rate, burst, opts.clock)


def _publication_ctx(config: ca_config.CAConfig, opts: AppOptions) -> Ctx:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        ca = app[state.CA]
        responder_key = opts.ocsp_key
        source = app.get(_TOKEN)
        if responder_key is None and source is not None:
            responder_key = functools.partial(source.load_key, config.pkcs11.ocsp_key_label)
        pub = await asyncio.get_running_loop().run_in_executor(
            app[_EXECUTOR],
            functools.partial(
                publication.create,
                config,
                authority=ca.authority,
                ledger=app[_LEDGER],
                issuing_key=app[_KEY],
                responder_key=responder_key,
                executor=app[_EXECUTOR],
                interval=opts.publication_interval,
                now=opts.now,
            ),
        )
        if opts.worker is not None:
            # Another worker may publish the same shard at the same moment: see crl_lock.
            pub.crls = crl_lock.LockedCrlPublisher(
                opts.worker.crl_lock_file,
                ledger=app[_LEDGER],
                authority=ca.authority,
                key=app[_KEY],
                now=opts.now,
            )
        ca.pipeline.presign = pub.presign_issued
        ca.pipeline.after_issue.append(pub.after_issue)
        ca.revoker.after_revoke.append(pub.after_revoke)
        task = None
        if opts.worker is None or opts.worker.runs_timers:
            task = asyncio.create_task(pub.run_forever(), name="padlock-publication")
        yield
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    return ctx


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WORKER_HEADER = "X-Padlock-Worker"


def _worker_header(
    worker: WorkerRole,
) -> Callable[[web.Request, web.StreamResponse], Awaitable[None]]:
    value = f"{worker.index}/{os.getpid()}"

    async def add(_request: web.Request, response: web.StreamResponse) -> None:
        response.headers[WORKER_HEADER] = value

    return add


@web.middleware
async def _error_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    endpoint = request.match_info.route.name or "other"
    try:
        response = await handler(request)
    except errors.CAError as exc:
        metrics.CA_REQUESTS.labels(endpoint, exc.code).inc()
        if isinstance(
            exc, errors.HsmUnavailable | errors.LedgerUnavailable | lintpool.LintUnavailable
        ):
            log.warning("%s %s: %s", request.method, request.path, exc)
        return http_errors.error_response(exc)
    except web.HTTPException:
        raise
    except Exception:
        log.exception("%s %s failed", request.method, request.path)
        metrics.CA_REQUESTS.labels(endpoint, "internal-error").inc()
        return web.json_response(
            {"error": "internal-error", "message": "internal error; see the CA log"}, status=500
        )
    return response
