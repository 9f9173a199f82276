"""What the handlers reach through the app: one typed `CAState`, under the `CA` app key.

Filled in by the cleanup context in `padlock.services.ca_http.app` once every resource is open.
"""

from __future__ import annotations

import dataclasses

from aiohttp import web

from padlock.ca import authority, hsm, pipeline, revocation
from padlock.services.ca_http import ratelimit


@dataclasses.dataclass(frozen=True)
class CAState:
    authority: authority.Authority
    key: hsm.IssuingKey
    pipeline: pipeline.Pipeline
    revoker: revocation.Revoker
    limiter: ratelimit.RateLimiter


CA = web.AppKey("padlock_ca", CAState)
