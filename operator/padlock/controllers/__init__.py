"""kopf handlers, thin: decode spec, call padlock.ca.client / padlock.kube, return status.

Loaded by `padlock operator` through `run()` (`runner`, with `settings`). Module map: `main` +
`main_revocations` (kopf wiring only), `context` (what handlers share), `issuing` +
`assessment` (certificates), `issuers`, `conditions` (status conditions), `secretwatch` + `reloads`
(Secrets and pod rolls), `scheduler` + `renewal` (when to renew), `crypto` (keys, CSRs,
checks), `revocations` + `revocation_targets` (RevocationRequests), `reissue` and
`revoked_state` (what a revocation does to a Certificate), `observe` + `httpd` (metrics,
health).
"""

from padlock.controllers.runner import run

__all__ = ["run"]
