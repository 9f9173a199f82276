"""`/metrics` (Prometheus text format) and `/healthz` for the operator process.

Started by the operator's startup handler on the port given to `padlock operator
--metrics-port`; a Deployment's liveness probe calls `/healthz`.
"""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from padlock import metrics


def build_app(healthy: Callable[[], bool]) -> web.Application:
    async def metrics_view(_request: web.Request) -> web.Response:
        body = generate_latest(metrics.REGISTRY)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health_view(_request: web.Request) -> web.Response:
        if healthy():
            return web.Response(text="ok\n")
        return web.Response(status=503, text="renewal scheduler is not running\n")

    app = web.Application()
    app.router.add_get("/metrics", metrics_view)
    app.router.add_get("/healthz", health_view)
    return app


async def start(host: str, port: int, healthy: Callable[[], bool]) -> web.AppRunner:
    runner = web.AppRunner(build_app(healthy), access_log=None)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return runner
