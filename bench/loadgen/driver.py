"""The Python side of the CA load generator: build the Go program once, run it, read its JSON.

Called by bench/bench_ca_http.py (and tests/integration/bench/test_loadgen.py, which runs it
against a fake CA). The program itself is main.go next to this file; its header says what it
measures. The binary is cached under ~/.cache/padlock/loadgen (or $PADLOCK_CACHE/loadgen),
named by a hash of the Go sources, so it is rebuilt only when they change. It needs nothing
but the Go standard library: it builds offline with the local toolchain.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

SOURCE = Path(__file__).resolve().parent


class LoadgenUnavailable(RuntimeError):
    """The load generator cannot be built here (no `go` on PATH, or the build failed)."""


@dataclasses.dataclass(frozen=True)
class ErrorCount:
    """Failed requests of one kind ("<HTTP status> <error code>", or "transport")."""

    count: int
    sample: str


@dataclasses.dataclass(frozen=True)
class LoadResult:
    """One run of the load generator: the answers that arrived within its measured window."""

    clients: int
    seconds: float
    requests: int
    successes: int
    errors: dict[str, ErrorCount]
    certs_per_s: float
    latency_ms: dict[str, float]
    """p50, p90, p99, max of successful requests (empty when none succeeded)."""
    cpu_seconds: float
    """The load generator's own user+system CPU over the window (getrusage)."""

    @property
    def failures(self) -> int:
        return self.requests - self.successes


def cache_dir() -> Path:
    base = os.environ.get("PADLOCK_CACHE") or str(Path.home() / ".cache" / "padlock")
    return Path(base) / "loadgen"


def _sources() -> list[Path]:
    return sorted(
        p for p in [SOURCE / "go.mod", *SOURCE.glob("*.go")] if not p.name.endswith("_test.go")
    )


def build() -> Path:
    """The load generator binary for the current sources; built now if not cached."""
    digest = hashlib.sha256()
    for path in _sources():
        digest.update(path.name.encode() + b"\0" + path.read_bytes() + b"\0")
    binary = cache_dir() / f"loadgen-{digest.hexdigest()[:16]}"
    if binary.exists():
        return binary
    go = shutil.which("go")
    if go is None:
        raise LoadgenUnavailable(
            "`go` is not on PATH: the CA load generator (bench/loadgen) is a Go program "
            "(standard library only); install Go >= 1.26"
        )
    binary.parent.mkdir(parents=True, exist_ok=True)
    env = dict(
        os.environ,
        GOTOOLCHAIN="local",  # never download a toolchain
        GOFLAGS="-mod=mod",
        GOPROXY="off",  # standard library only: nothing to fetch
        CGO_ENABLED="0",
        GOCACHE=os.environ.get("GOCACHE") or str(cache_dir().parent / "go-build"),
    )
    partial = binary.with_suffix(f".{os.getpid()}.tmp")
    proc = subprocess.run(
        [go, "build", "-trimpath", "-o", str(partial), "."],
        cwd=SOURCE,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        partial.unlink(missing_ok=True)
        raise LoadgenUnavailable(f"go build of bench/loadgen failed:\n{proc.stderr.strip()}")
    partial.replace(binary)
    for old in binary.parent.glob("loadgen-*"):
        if old != binary and not old.name.endswith(".tmp"):
            old.unlink(missing_ok=True)
    return binary


def run(
    binary: Path,
    *,
    csr_file: Path,
    clients: int,
    seconds: float,
    warmup: float,
    socket: Path | None = None,
    url: str | None = None,
    on_measuring: Callable[[], None] = lambda: None,
    on_measured: Callable[[], None] = lambda: None,
) -> LoadResult:
    """Run the load generator against a unix `socket` or a base `url` and return its result.

    `on_measuring` is called when its measured window opens (the warm-up is over) and
    `on_measured` when it closes, so the caller can read the server's CPU over the same window.
    """
    target = ["-socket", str(socket)] if socket is not None else ["-url", str(url)]
    args = [
        str(binary), *target, "-csrs", str(csr_file), "-clients", str(clients),
        "-duration", f"{seconds}s", "-warmup", f"{warmup}s",
    ]  # fmt: skip
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout is not None and proc.stderr is not None
    other: list[str] = []
    for line in proc.stderr:  # the result on stdout comes only after "measured"
        if line.strip() == "loadgen: measuring":
            on_measuring()
        elif line.strip() == "loadgen: measured":
            on_measured()
        else:
            other.append(line.rstrip())
    out = proc.stdout.read()
    if proc.wait() != 0:
        raise RuntimeError(f"loadgen exited with {proc.returncode}: {' '.join(other)}")
    return _result(json.loads(out))


def _result(raw: dict[str, Any]) -> LoadResult:
    return LoadResult(
        clients=int(raw["clients"]),
        seconds=float(raw["seconds"]),
        requests=int(raw["requests"]),
        successes=int(raw["successes"]),
        errors={
            key: ErrorCount(int(e["count"]), str(e["sample"])) for key, e in raw["errors"].items()
        },
        certs_per_s=float(raw["certs_per_s"]),
        latency_ms={key: float(v) for key, v in raw["latency_ms"].items()},
        cpu_seconds=float(raw["cpu_seconds"]),
    )
