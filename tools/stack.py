"""`make up` / `make down` for the whole embedded padlock stack under .padlock/.

Called by tools/up.sh and tools/down.sh, and by tools/demo.sh through them. It starts, in
order: the local control plane (tools/controlplane/local.py), then on first run makes a
SoftHSM token and runs the key ceremony (offline root + HSM intermediate), then starts the CA
sidecar (`padlock ca serve`), the OCSP/CRL responder (`padlock ocsp serve`) and the operator
(`padlock operator`). Every process runs under timeout(1) in its own process group, so it stops
by itself after PADLOCK_MAX_LIFETIME (default 4h) even if nobody runs `make down`.

Endpoints go to .padlock/endpoints.env in shell syntax: KUBECONFIG, CA_SOCKET, CA_CONFIG,
METRICS_URL, OCSP_URL, SOFTHSM2_CONF. Running `up` twice is harmless.
"""

from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import re
import secrets
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

from tools.controlplane import local

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = REPO / ".venv" / "bin"
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
TOKEN_LABEL = "padlock"  # noqa: S105 - a token label, not a secret
SERVICES = ("ca", "ocsp", "operator")  # start order; stopped in reverse


class StackError(RuntimeError):
    """A step of `up` failed; the message names it and points at its log."""


def _write_private(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(text)


def set_env(base: Path, values: Mapping[str, str | None]) -> None:
    """Set (or with None drop) KEY=value lines in base/endpoints.env, keeping other lines."""
    env = base / "endpoints.env"
    lines = env.read_text().splitlines() if env.exists() else []
    pattern = re.compile(r"\s*(?:export\s+)?([A-Z_][A-Z0-9_]*)=")
    kept = [ln for ln in lines if not ((m := pattern.match(ln)) and m.group(1) in values)]
    kept += [f"{k}={shlex.quote(v)}" for k, v in values.items() if v is not None]
    tmp = env.with_name(env.name + ".tmp")
    tmp.write_text("\n".join(kept) + "\n")
    tmp.replace(env)


class Stack:
    """Paths and settings of one embedded stack under `base` (normally .padlock/)."""

    def __init__(self, base: Path) -> None:
        self.base = base
        self.softhsm_dir = base / "softhsm"
        self.softhsm_conf = self.softhsm_dir / "softhsm2.conf"
        self.root_dir = base / "root"
        self.ca_dir = base / "ca"
        self.config = self.ca_dir / "ca.yaml"
        self.socket = self.ca_dir / "ca.sock"
        self.logs = base / "logs"
        self.pids = base / "pids"
        self.settings_file = base / "stack.json"

    # -- first run: token and ceremony -----------------------------------------------

    def settings(self) -> dict[str, int]:
        """Ports fixed at the first run (the OCSP/CRL URLs are inside issued certificates)."""
        if self.settings_file.exists():
            data: dict[str, int] = json.loads(self.settings_file.read_text())
            return data
        data = {"ocsp_port": local._free_port(), "metrics_port": local._free_port()}
        self.settings_file.write_text(json.dumps(data) + "\n")
        return data

    def env(self) -> dict[str, str]:
        return {**os.environ, "SOFTHSM2_CONF": str(self.softhsm_conf)}

    def ensure_ca(self) -> None:
        """Make the SoftHSM token and run the ceremony once; later runs reuse them."""
        if self.config.exists():
            return
        ports = self.settings()
        tokens = self.softhsm_dir / "tokens"
        tokens.mkdir(parents=True, exist_ok=True)
        self.softhsm_conf.write_text(
            f"directories.tokendir = {tokens}\nobjectstore.backend = file\nlog.level = ERROR\n"
        )
        pin, so_pin = secrets.token_hex(8), secrets.token_hex(8)
        pin_file = self.ca_dir / "pin.txt"
        _write_private(pin_file, pin + "\n")
        passphrase_file = self.root_dir / "passphrase.txt"
        _write_private(passphrase_file, secrets.token_urlsafe(24) + "\n")
        print("up: making a SoftHSM token and running the key ceremony (first run)")
        self._run(
            ["softhsm2-util", "--init-token", "--free", "--label", TOKEN_LABEL,
             "--so-pin", so_pin, "--pin", pin],
            "softhsm2-util --init-token",
        )  # fmt: skip
        padlock = str(VENV_BIN / "padlock")
        self._run(
            [padlock, "ca", "init-root", "--dir", str(self.root_dir),
             "--passphrase-file", str(passphrase_file)],
            "padlock ca init-root",
        )  # fmt: skip
        url = f"http://127.0.0.1:{ports['ocsp_port']}"
        self._run(
            [padlock, "ca", "init-intermediate", "--root-dir", str(self.root_dir),
             "--passphrase-file", str(passphrase_file),
             "--pkcs11-module", SOFTHSM_MODULE, "--token-label", TOKEN_LABEL,
             "--pin-file", str(pin_file), "--out", str(self.ca_dir),
             "--ocsp-url", url + "/", "--crl-base-url", url + "/crl",
             "--ca-issuers-url", url + "/ca.der"],
            "padlock ca init-intermediate",
        )  # fmt: skip

    def _run(self, cmd: list[str], what: str) -> None:
        done = subprocess.run(cmd, env=self.env(), capture_output=True, text=True, check=False)
        if done.returncode != 0:
            raise StackError(f"{what} failed: {done.stderr.strip() or done.stdout.strip()}")

    # -- processes -------------------------------------------------------------------

    def _pid_file(self, name: str) -> Path:
        return self.pids / f"{name}.pid"

    def _alive(self, name: str) -> int | None:
        try:
            pid = int(self._pid_file(name).read_text())
        except (OSError, ValueError):
            return None
        with contextlib.suppress(ChildProcessError):
            if os.waitpid(pid, os.WNOHANG)[0] == pid:
                return None
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (OSError, IndexError):
            return None
        # Ours only if it is the timeout(1) watchdog started for this service (a recycled PID
        # of some other process is never taken for ours, nor signalled).
        ok = state != "Z" and cmdline[0].endswith(b"timeout") and name.encode() in cmdline
        return pid if ok else None

    def _spawn(self, name: str, args: Sequence[str], lifetime: str) -> subprocess.Popen[bytes]:
        self.logs.mkdir(parents=True, exist_ok=True)
        self.pids.mkdir(parents=True, exist_ok=True)
        log = (self.logs / f"{name}.log").open("ab")
        cmd = ["timeout", "--kill-after=20s", lifetime, *args]
        proc = subprocess.Popen(
            cmd,
            stdin=subprocess.DEVNULL,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env=self.env(),
        )
        log.close()
        self._pid_file(name).write_text(f"{proc.pid}\n")
        return proc

    def start(self, lifetime: str, kubeconfig: Path) -> dict[str, str]:
        """Start CA, responder and operator unless already running; returns endpoints."""
        ports = self.settings()
        padlock = str(VENV_BIN / "padlock")
        commands = {
            "ca": [padlock, "ca", "serve", "--config", str(self.config)],
            "ocsp": [padlock, "ocsp", "serve", "--config", str(self.config),
                     "--host", "127.0.0.1", "--port", str(ports["ocsp_port"])],
            "operator": [padlock, "operator", "--kubeconfig", str(kubeconfig),
                         "--ca-socket", str(self.socket), "--metrics-host", "127.0.0.1",
                         "--metrics-port", str(ports["metrics_port"])],
        }  # fmt: skip
        waits: dict[str, Callable[[], bool]] = {
            "ca": lambda: _unix_ok(self.socket, "/healthz"),
            "ocsp": lambda: _http_ok(f"http://127.0.0.1:{ports['ocsp_port']}/healthz"),
            "operator": lambda: _http_ok(f"http://127.0.0.1:{ports['metrics_port']}/healthz"),
        }
        for name in SERVICES:
            if self._alive(name):
                print(f"up: {name} already running")
                continue
            started = time.monotonic()
            proc = self._spawn(name, commands[name], lifetime)
            self._wait(name, proc, waits[name])
            print(f"up: {name} ready in {time.monotonic() - started:.1f}s")
        return {
            "CA_SOCKET": str(self.socket),
            "CA_CONFIG": str(self.config),
            "METRICS_URL": f"http://127.0.0.1:{ports['metrics_port']}/metrics",
            "OCSP_URL": f"http://127.0.0.1:{ports['ocsp_port']}/",
            "SOFTHSM2_CONF": str(self.softhsm_conf),
        }

    def _wait(
        self,
        name: str,
        proc: subprocess.Popen[bytes],
        probe: Callable[[], bool],
        timeout: float = 90.0,
    ) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if probe():
                return
            if proc.poll() is not None:
                break
            time.sleep(0.2)
        tail = "\n".join((self.logs / f"{name}.log").read_text(errors="replace").splitlines()[-20:])
        raise StackError(f"{name} did not become ready; log {self.logs / name}.log:\n{tail}")

    def stop(self) -> None:
        for name in reversed(SERVICES):
            pid = self._alive(name)
            if pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(pid, signal.SIGTERM)
                deadline = time.monotonic() + 20
                while time.monotonic() < deadline and self._alive(name):
                    time.sleep(0.1)
                if self._alive(name):
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(pid, signal.SIGKILL)
            self._pid_file(name).unlink(missing_ok=True)


class _UnixHTTPConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=3)
        self._path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(3)
        self.sock.connect(str(self._path))


def _unix_ok(path: Path, url: str) -> bool:
    try:
        conn = _UnixHTTPConnection(path)
        conn.request("GET", url)
        return conn.getresponse().status == 200
    except OSError:
        return False


def _http_ok(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=3) as resp:  # noqa: S310 - loopback
            return int(resp.status) == 200
    except OSError:
        return False


def up(base: Path, lifetime: str) -> None:
    cp, started = local.up(base, lifetime)
    print(f"up: control plane {'started' if started else 'already running'}: {cp.server}")
    stack = Stack(base)
    stack.ensure_ca()
    endpoints = stack.start(lifetime, cp.kubeconfig)
    set_env(base, endpoints)
    print(f"up: endpoints in {base / 'endpoints.env'}")
    for key, value in endpoints.items():
        print(f"  {key}={value}")


def down(base: Path) -> None:
    Stack(base).stop()
    set_env(base, dict.fromkeys(("CA_SOCKET", "CA_CONFIG", "METRICS_URL", "OCSP_URL"), None))
    local.down(base)
    print(f"down: everything under {base} stopped")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.stack", description=__doc__)
    parser.add_argument("verb", choices=["up", "down"])
    parser.add_argument("--dir", type=Path, default=REPO / ".padlock")
    parser.add_argument("--max-lifetime", default=os.environ.get("PADLOCK_MAX_LIFETIME", "4h"))
    opts = parser.parse_args(argv)
    base = opts.dir.resolve()
    base.mkdir(parents=True, exist_ok=True)
    try:
        if opts.verb == "up":
            up(base, opts.max_lifetime)
        else:
            down(base)
    except (StackError, local.ControlPlaneError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
