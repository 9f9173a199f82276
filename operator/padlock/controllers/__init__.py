"""kopf handlers, thin: decode spec, call padlock.ca.client / padlock.kube, return status.

Loaded by `padlock operator` through `run()`. Module map: `main` (kopf wiring only),
`issuing` (certificates), `issuers`, `secretwatch` + `reloads` (Secrets and pod rolls),
`scheduler` + `renewal` (when to renew), `crypto` (keys, CSRs, checks), `observe` (metrics).
"""

from padlock.controllers.runner import run

__all__ = ["run"]
