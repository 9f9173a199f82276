"""`run()`: start the operator (kopf) until SIGINT/SIGTERM. Called by `padlock operator`.

Standalone (no kopf peering): padlock runs one replica with `strategy: Recreate` (a second
instance during a rolling update would freeze the watch through peering, kopf #734).

kopf imports the official `kubernetes` package, when installed, only to recognise its model
classes (`kopf._cogs.helpers.thirdparty`); padlock never passes such objects, and the package
costs ~20 MB of resident memory (kopf `docs/critiques.rst`). `run()` therefore hides it from
the operator process before kopf is first imported. kopf is imported lazily here so that
importing this module (e.g. from the CLI) does not load it.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from padlock.controllers.settings import RunConfig


def hide_kubernetes_client() -> bool:
    """Make `import kubernetes` fail in this process unless it is loaded already; True if
    hidden. Only for the operator's own process: other code sharing the process may need it."""
    if "kubernetes" in sys.modules or "kopf" in sys.modules:
        return False
    sys.modules["kubernetes"] = None  # type: ignore[assignment]
    return True


async def run_async(
    config: RunConfig,
    *,
    stop_flag: asyncio.Event | None = None,
    ready_flag: asyncio.Event | None = None,
    ca_override: object = None,
) -> None:
    """Run the operator in the current event loop (tests pass flags and a test CA)."""
    import kopf

    import padlock.controllers.main_revocations  # noqa: F401 - registers its handlers
    from padlock.controllers import main  # registers the handlers
    from padlock.controllers import settings as settings_mod

    settings = kopf.OperatorSettings()
    settings_mod.configure(settings)
    runtime = main.Runtime(config=config, ca_override=ca_override)
    await kopf.operator(
        settings=settings,
        standalone=True,
        clusterwide=not config.namespaces,
        namespaces=config.namespaces,
        memo=kopf.Memo(runtime=runtime),
        stop_flag=stop_flag,
        ready_flag=ready_flag,
    )


def run(
    *,
    kubeconfig: Path | None = None,
    namespaces: Sequence[str] = (),
    ca_socket: Path | None = None,
    ca_url: str | None = None,
    metrics_port: int | None = 9402,
    metrics_host: str = "0.0.0.0",  # noqa: S104 - scraped from other pods
) -> int:
    """Run `padlock operator` until stopped; the exit status."""
    if (ca_socket is None) == (ca_url is None):
        raise ValueError("give exactly one of ca_socket and ca_url")
    hide_kubernetes_client()
    from padlock.controllers.settings import RunConfig

    config = RunConfig(
        kubeconfig=kubeconfig,
        namespaces=tuple(namespaces),
        ca_socket=ca_socket,
        ca_url=ca_url,
        metrics_host=metrics_host,
        metrics_port=metrics_port,
    )
    asyncio.run(run_async(config))
    return 0
