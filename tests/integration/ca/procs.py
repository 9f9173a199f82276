"""A CA in its own process tree: private SoftHSM directory, real `padlock ca` CLI ceremony, and
`padlock ca serve` as a subprocess that tests can SIGKILL or starve of its token.

Used by the crash and token-removal tests. The SoftHSM token directory is private to the
subprocesses (its own SOFTHSM2_CONF), so pulling the token away never disturbs the SoftHSM
state of the pytest process or of other tests.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import yaml

from padlock.ca import client
from padlock.ca import config as ca_config

PADLOCK = str(Path(sys.executable).with_name("padlock"))


@dataclasses.dataclass
class IsolatedCA:
    """Files and environment of a CA that only subprocesses touch."""

    directory: Path
    env: dict[str, str]
    config_path: Path
    tokendir: Path
    log: Path

    @property
    def config(self) -> ca_config.CAConfig:
        return ca_config.load(self.config_path)

    @property
    def socket(self) -> Path:
        socket = self.config.listen.socket
        assert socket is not None
        return socket

    @property
    def root_file(self) -> Path:
        return self.directory / "root" / "root.pem"

    def token_dirs(self) -> list[Path]:
        return [p for p in self.tokendir.iterdir() if p.is_dir()]


def _run(args: list[str], env: dict[str, str]) -> None:
    result = subprocess.run(args, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, f"{args[:3]} failed: {result.stdout}{result.stderr}"


def make_isolated_ca(
    directory: Path, ledger_url: str | None = None, **config: object
) -> IsolatedCA:
    """Private SoftHSM token + `padlock ca init-root` + `init-intermediate` under `directory`;
    `config` entries override top-level sections of the written ca.yaml."""
    hsm = directory / "hsm"
    tokendir = hsm / "tokens"
    tokendir.mkdir(parents=True)
    conf = hsm / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {tokendir}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "PADLOCK_ROOT_PASSPHRASE": ""}
    pin = secrets.token_hex(8)
    pin_file = hsm / "pin.txt"
    pin_file.write_text(pin + "\n")
    _run(
        [
            "softhsm2-util", "--init-token", "--free", "--label", "crash",
            "--so-pin", secrets.token_hex(8), "--pin", pin,
        ],
        env,
    )  # fmt: skip
    passphrase = hsm / "passphrase.txt"
    passphrase.write_text(secrets.token_hex(16))
    _run([PADLOCK, "ca", "init-root", "--dir", str(directory / "root"),
          "--passphrase-file", str(passphrase)], env)  # fmt: skip
    args = [
        PADLOCK, "ca", "init-intermediate", "--root-dir", str(directory / "root"),
        "--passphrase-file", str(passphrase), "--token-label", "crash",
        "--pin-file", str(pin_file), "--out", str(directory / "ca"),
    ]  # fmt: skip
    if ledger_url:
        args += ["--ledger-url", ledger_url]
    _run(args, env)
    config_path = directory / "ca" / "ca.yaml"
    raw = yaml.safe_load(config_path.read_text())
    raw["listen"] = {"socket": str(directory / "ca.sock")}
    raw.update(config)
    config_path.write_text(yaml.safe_dump(raw))
    return IsolatedCA(directory, env, config_path, tokendir, directory / "ca.log")


class CAProcess:
    """`padlock ca serve --config ...` in a subprocess."""

    def __init__(self, ca: IsolatedCA) -> None:
        self.ca = ca
        with ca.log.open("ab") as log:
            self.proc = subprocess.Popen(
                [PADLOCK, "ca", "serve", "--config", str(ca.config_path)],
                env=ca.env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )

    async def wait_healthy(self, seconds: float = 60) -> None:
        deadline = time.monotonic() + seconds
        async with client.CAClient(socket_path=self.ca.socket, timeout=2) as ca:
            while time.monotonic() < deadline:
                if self.proc.poll() is not None:
                    raise AssertionError(f"CA exited: {self.ca.log.read_text()[-2000:]}")
                if self.ca.socket.exists() and await ca.healthy():
                    return
                await asyncio.sleep(0.1)
        raise AssertionError(f"CA not healthy in {seconds}s: {self.ca.log.read_text()[-2000:]}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(timeout=30)

    def terminate(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                return self.proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


def move_away(path: Path) -> Path:
    """Move a directory aside (as if the token were pulled out); returns where it went."""
    aside = path.with_name(path.name + ".removed")
    shutil.move(path, aside)
    return aside
