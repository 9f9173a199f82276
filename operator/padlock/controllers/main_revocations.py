"""kopf wiring for RevocationRequests only: which events reach `revocations.handle_*`.

Imported (for its decorators) next to `padlock.controllers.main` by
`padlock.controllers.runner`, so kopf's default registry holds these handlers too. Kept apart
from `main` so the revocation controller plugs in with one import line.
"""

from __future__ import annotations

from typing import Any

import kopf

from padlock.api import group
from padlock.controllers import revocations
from padlock.controllers.context import Deps

G, V = group.GROUP, group.VERSION
REVOCATION_REQUESTS = group.REVOCATION_REQUEST.plural


def _deps(memo: Any) -> Deps:
    deps = memo.runtime.deps
    assert deps is not None, "the startup handler builds Deps before any handler runs"
    return deps  # type: ignore[no-any-return]


# RevocationRequests: revoke the target at the CA once, record it, re-issue if asked. The spec
# is immutable, so there is no update handler; resume re-checks requests left unfinished.
@kopf.on.resume(G, V, REVOCATION_REQUESTS)
@kopf.on.create(G, V, REVOCATION_REQUESTS)
async def revocation_request_created(body: kopf.Body, retry: int, memo: Any, **_: Any) -> None:
    await revocations.handle_revocation_request(_deps(memo), body, retry)
