"""Keep-alive connections pinned to each CA worker, so a test can make every worker answer.

Used by tests/integration/ca/test_workers.py. With `workers` > 1 the kernel hands a new
connection on the shared socket to whichever worker accepts first, and one worker's accept
loop may drain a whole burst of queued connections: which workers serve a burst of fresh
connections is luck, more so on a loaded machine. A keep-alive connection stays with the worker
that accepted it, so `pinned` opens fresh connections one at a time (each in a session limited
to that one connection) until every worker holds the number asked for, and a request sent
through a `Pinned` goes to its worker; the `X-Padlock-Worker: index/pid` header of every
answer is checked against it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

from padlock.services.ca_http.app import WORKER_HEADER

ATTEMPTS = 400
"""Fresh connections `pinned` opens at most before it gives up."""
KEEPALIVE_SECONDS = 300.0
"""Client side; aiohttp's server keeps an idle connection 75 s, far longer than a test needs."""

Answer = tuple[int, str, dict[str, Any]]
"""HTTP status, the X-Padlock-Worker header, the JSON body."""


@dataclasses.dataclass
class Pinned:
    """One keep-alive connection to one worker (index and pid from its first answer)."""

    index: int
    pid: int
    session: aiohttp.ClientSession

    def _check(self, resp: aiohttp.ClientResponse) -> str:
        worker = resp.headers[WORKER_HEADER]
        assert worker == f"{self.index}/{self.pid}", (
            f"a connection pinned to worker {self.index}/{self.pid} was answered by {worker} "
            "(the keep-alive connection was closed and reopened)"
        )
        return worker

    async def get(self, path: str) -> tuple[int, str, str]:
        """GET `path` on this worker: status, worker header, body text."""
        async with self.session.get(f"http://ca{path}") as resp:
            return resp.status, self._check(resp), await resp.text()

    async def post(self, path: str, body: dict[str, object]) -> Answer:
        """POST JSON to `path` on this worker: status, worker header, JSON body."""
        async with self.session.post(f"http://ca{path}", json=body) as resp:
            return resp.status, self._check(resp), await resp.json()


async def _open(socket_path: Path) -> Pinned:
    connector = aiohttp.UnixConnector(
        path=str(socket_path), limit=1, keepalive_timeout=KEEPALIVE_SECONDS
    )
    session = aiohttp.ClientSession(connector=connector)
    try:
        async with session.get("http://ca/healthz") as resp:
            await resp.read()
            index, pid = resp.headers[WORKER_HEADER].split("/")
    except BaseException:
        await session.close()
        raise
    return Pinned(int(index), int(pid), session)


@contextlib.asynccontextmanager
async def pinned(
    socket_path: Path, *, workers: int = 2, per_worker: int = 1, attempts: int = ATTEMPTS
) -> AsyncIterator[dict[int, list[Pinned]]]:
    """`{index: [per_worker connections to that worker]}` for every worker index; closed on
    exit. AssertionError, with what each worker accepted, if `attempts` fresh connections did
    not reach every worker that many times (a worker not accepting at all, or not started)."""
    by_worker: dict[int, list[Pinned]] = {index: [] for index in range(workers)}
    surplus: dict[int, int] = {}
    try:
        for _ in range(attempts):
            pin = await _open(socket_path)
            if len(by_worker.setdefault(pin.index, [])) < per_worker:
                by_worker[pin.index].append(pin)
            else:
                surplus[pin.index] = surplus.get(pin.index, 0) + 1
                await pin.session.close()
            if all(len(by_worker[i]) >= per_worker for i in range(workers)):
                break
            await asyncio.sleep(0.002)  # let every worker get back to accept()
        else:
            kept = {i: len(p) for i, p in by_worker.items()}
            raise AssertionError(
                f"{attempts} fresh connections did not reach {per_worker} per worker: "
                f"kept {kept}, further ones accepted by {surplus} (is every worker serving?)"
            )
        yield by_worker
    finally:
        for pins in by_worker.values():
            for pin in pins:
                await pin.session.close()


def spread(by_worker: dict[int, list[Pinned]]) -> list[Pinned]:
    """The pinned connections interleaved by worker (0, 1, 0, 1, ...), to deal requests over."""
    rows = list(by_worker.values())
    return [row[n] for n in range(max(map(len, rows))) for row in rows if n < len(row)]
