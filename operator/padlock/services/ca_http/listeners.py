"""The CA's listening sockets, bound once: the unix socket, optional TCP (+ mTLS), optional
scrape-only metrics port.

Called by `padlock.services.ca_http.server` (one process binds and serves) and by
`padlock.services.ca_http.supervisor`, which binds before it starts its workers and hands
them the file descriptors; each worker rebuilds the sockets with `Listeners.from_fds` and
serves them with aiohttp's `SockSite`, so the kernel spreads connections over the workers.
"""

from __future__ import annotations

import dataclasses
import socket
import stat
from pathlib import Path

from padlock.ca import config as ca_config

SOCKET_MODE = 0o660
"""The operator container shares the socket's directory (an emptyDir) and group."""
BACKLOG = 512
"""Connections the kernel queues per listening socket before the workers accept them."""


@dataclasses.dataclass
class Listeners:
    """Bound, listening sockets; None where the config asks for none."""

    unix: socket.socket | None = None
    tcp: socket.socket | None = None
    metrics: socket.socket | None = None
    unix_path: Path | None = None

    def sockets(self) -> list[socket.socket]:
        return [s for s in (self.unix, self.tcp, self.metrics) if s is not None]

    def fds(self) -> dict[str, int]:
        """`{"unix": fd, ...}` for the sockets there are (what a worker is given)."""
        named = {"unix": self.unix, "tcp": self.tcp, "metrics": self.metrics}
        return {name: s.fileno() for name, s in named.items() if s is not None}

    @classmethod
    def from_fds(cls, fds: dict[str, int]) -> Listeners:
        """The sockets a supervisor passed down (inherited file descriptors)."""
        unknown = sorted(set(fds) - {"unix", "tcp", "metrics"})
        if unknown:
            raise ValueError(f"unknown listener {unknown[0]!r} (known: unix, tcp, metrics)")

        def adopt(name: str) -> socket.socket | None:
            return socket.socket(fileno=fds[name]) if name in fds else None

        return cls(unix=adopt("unix"), tcp=adopt("tcp"), metrics=adopt("metrics"))

    def close(self, *, unlink: bool) -> None:
        """Close every socket; `unlink` removes the unix socket's file too (its binder)."""
        for sock in self.sockets():
            sock.close()
        if unlink and self.unix_path is not None:
            self.unix_path.unlink(missing_ok=True)


def remove_stale_socket(path: Path) -> None:
    """Remove a socket file a previous CA left behind; refuse to replace anything else."""
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        return
    if not stat.S_ISSOCK(mode):
        raise ValueError(f"{path} exists and is not a socket; refusing to replace it")
    path.unlink()


def _tcp(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=BACKLOG)


def bind(listen: ca_config.ListenConfig) -> Listeners:
    """Bind and listen on everything `listen` names (OSError/ValueError: nothing left open)."""
    bound = Listeners()
    try:
        if listen.socket is not None:
            remove_stale_socket(listen.socket)
            unix = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            bound.unix = unix
            unix.bind(str(listen.socket))
            bound.unix_path = listen.socket
            listen.socket.chmod(SOCKET_MODE)
            unix.listen(BACKLOG)
        if listen.tcp_port is not None:
            if listen.tcp_host is None:
                raise ValueError("listen.tcp_host is required with listen.tcp_port")
            bound.tcp = _tcp(listen.tcp_host, listen.tcp_port)
        if listen.metrics_port is not None:
            bound.metrics = _tcp(listen.metrics_host, listen.metrics_port)
    except BaseException:
        bound.close(unlink=True)
        raise
    return bound
