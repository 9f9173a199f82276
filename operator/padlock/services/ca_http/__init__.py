"""`padlock ca serve`: the CA sidecar's HTTP front end (the JSON contract of DESIGN.md).

Called by the CLI (`padlock ca serve --config FILE` → `run(config)`), by `python -m
padlock.services.ca_http --config FILE`, and by the tests, which build the very same app with
`init_app(config)`. The client side of the contract is `padlock.ca.client`.

- `app`: `init_app(config, options)`; resources (ledger, HSM, thread and process pools,
  pipeline) live in `cleanup_ctx` generators.
- `routes`: the URL table. `handlers`: request → pipeline → response, thin.
- `errors`: CA errors → HTTP statuses, in one table. `ratelimit`: per-requester buckets.
- `server`: listening (unix socket; loopback TCP with mTLS) and SIGTERM handling.
- `workers` > 1: `supervisor` binds the sockets (`listeners`) once and runs that many
  `worker` processes serving them; `crl_lock` orders their CRL publications.
"""

from padlock.services.ca_http.app import AppOptions, init_app
from padlock.services.ca_http.server import run, serve

__all__ = ["AppOptions", "init_app", "run", "serve"]
