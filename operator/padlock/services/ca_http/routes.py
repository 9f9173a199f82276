"""The CA's URL table, and nothing else (handlers live in `handlers`)."""

from __future__ import annotations

from aiohttp import web

from padlock.services.ca_http import handlers


def setup_routes(app: web.Application) -> None:
    app.router.add_post("/v1/sign", handlers.sign, name="sign")
    app.router.add_post("/v1/revoke", handlers.revoke, name="revoke")
    app.router.add_post("/v1/revoke-all", handlers.revoke_all, name="revoke-all")
    app.router.add_get("/v1/ca", handlers.ca_info, name="ca-info")
    app.router.add_get("/healthz", handlers.healthz, name="healthz")
    app.router.add_get("/metrics", handlers.metrics_text, name="metrics")
