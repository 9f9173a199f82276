"""Emulate a rendered padlock pod on this machine: no container runtime, a mount namespace.

Used by tests/integration/chart. `unshare -m` gives a private mount table in which every
volume a container mounts is bind-mounted at its mountPath (host directories /etc, /var/lib,
/run are overlaid so no mount point is made on the host), everything else is read-only (the
chart's readOnlyRootFilesystem), and each container's args and env run as the image's UID
10001 in pod order: init containers, the native sidecar until its
startupProbe passes, then the regular containers. The processes stay up until `stop()`.
"""

from __future__ import annotations

import dataclasses
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

UID = 10001
OVERLAID = ("/etc", "/var/lib", "/run")
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"
PASSPHRASE = "test only, not a secret"


def need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is required (util-linux / softhsm2 / openssl): run `make setup`")
    return found


def need_root() -> None:
    if os.geteuid() != 0:
        pytest.fail("pod emulation needs root (unshare -m, mount, chown), as `make test` in CI")
    for tool in ("unshare", "setpriv", "openssl"):
        need(tool)


def ceremony(work: pathlib.Path) -> pathlib.Path:
    """The chart README's ceremony, steps 1-4: token, root, intermediate, token.tar."""
    (work / "tokens").mkdir(parents=True)
    conf = work / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {work}/tokens\nobjectstore.backend = file\n")
    (work / "pin.txt").write_text("123456")
    env = {**os.environ, "SOFTHSM2_CONF": str(conf), "PADLOCK_ROOT_PASSPHRASE": PASSPHRASE}
    padlock = str(pathlib.Path(sys.executable).with_name("padlock"))
    steps: list[list[str]] = [
        [
            need("softhsm2-util"),
            "--init-token",
            "--free",
            "--label",
            "padlock",
            "--pin",
            "123456",
            "--so-pin",
            "12345678",
        ],
        [padlock, "ca", "init-root", "--dir", str(work / "root")],
        [
            padlock,
            "ca",
            "init-intermediate",
            "--root-dir",
            str(work / "root"),
            "--token-label",
            "padlock",
            "--pin-file",
            str(work / "pin.txt"),
            "--out",
            str(work / "intermediate"),
            "--pkcs11-module",
            SOFTHSM_MODULE,
        ],
        ["tar", "-C", str(work / "tokens"), "-cf", str(work / "token.tar"), "."],
    ]
    for argv in steps:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{shlex.join(argv)}: {proc.stderr}"
    return work


def volumes(
    config_map: Mapping[str, str], ceremony_dir: pathlib.Path, base: pathlib.Path
) -> dict[str, pathlib.Path]:
    """One directory per pod volume, filled as the cluster would fill it."""
    contents: dict[str, dict[str, bytes]] = {
        "config": {k: v.encode() for k, v in config_map.items()},
        "chain": {
            "chain.pem": (ceremony_dir / "intermediate/chain.pem").read_bytes(),
            "ocsp.pem": (ceremony_dir / "intermediate/ocsp.pem").read_bytes(),
        },
        "hsm-pin": {"pin": (ceremony_dir / "pin.txt").read_bytes()},
        "softhsm-seed": {"token.tar": (ceremony_dir / "token.tar").read_bytes()},
        "softhsm-tokens": {},
        "ledger": {},
        "ca-socket": {},
        "tmp": {},
    }
    sources = {}
    for name, files in contents.items():
        d = base / name
        d.mkdir(parents=True)
        for fname, data in files.items():
            (d / fname).write_bytes(data)
        sources[name] = d
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(base)], check=True)
    return sources


def shared_dir(request: pytest.FixtureRequest) -> pathlib.Path:
    """A directory UID 10001 can reach (pytest's base temp dir is 0700), removed afterwards."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="padlock-pod-", dir="/tmp"))
    path.chmod(0o755)
    request.addfinalizer(lambda: shutil.rmtree(path, ignore_errors=True))
    return path


@dataclasses.dataclass
class Pod:
    """A running emulated pod: `out` holds one <container>.log per container."""

    process: subprocess.Popen[str]
    out: pathlib.Path

    def logs(self) -> str:
        return "".join(
            f"\n--- {p.name}\n{p.read_text(errors='replace')[-4000:]}"
            for p in sorted(self.out.glob("*.log"))
        )

    def stop(self, timeout: float = 60) -> None:
        (self.out / "stop").touch()
        try:
            self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start(
    pod: Mapping[str, Any],
    sources: Mapping[str, pathlib.Path],
    out: pathlib.Path,
    layers: pathlib.Path,
    *,
    run: Sequence[str],
    extra_env: Mapping[str, Mapping[str, str]] | None = None,
    extra_mounts: Mapping[str, pathlib.Path] | None = None,
    fields: Mapping[str, str] | None = None,
) -> Pod:
    """Start the containers named in `run` (pod order) and keep them up until `stop()`.
    `fields` answers env fieldRefs (metadata.name, metadata.namespace)."""
    fields = {"metadata.name": "padlock-0", "metadata.namespace": "default", **(fields or {})}
    containers = [
        c for c in [*pod.get("initContainers", []), *pod["containers"]] if c["name"] in run
    ]
    # /tmp is its own (writable) mount, as the pod's emptyDir; the tests' files live there.
    lines = ["set -euo pipefail", "mount --make-rprivate /", "mount --bind /tmp /tmp"]
    # UID 10001 must reach this Python (e.g. a pyenv under a 0700 /root): overlay the closed
    # top-level directory and open it for traversal inside the namespace only.
    closed = [
        d
        for d in pathlib.Path(os.path.realpath(sys.executable)).parents
        if d != d.parent and not d.stat().st_mode & 0o001
    ]
    tops = sorted({"/" + d.parts[1] for d in closed})
    for i, lower in enumerate((*OVERLAID, *tops)):
        upper, work = layers / f"{i}-upper", layers / f"{i}-work"
        lines += [
            f"mkdir -p {upper} {work}",
            f"mount -t overlay overlay -o lowerdir={lower},upperdir={upper},workdir={work} {lower}",
        ]
    lines += [f"chmod o+x {shlex.quote(str(d))}" for d in closed]
    # The image's user (Dockerfile useradd), in the overlaid /etc only.
    lines.append(
        f"grep -q '^padlock:' /etc/passwd || "
        f"echo 'padlock:x:{UID}:{UID}::/var/lib/padlock:/usr/sbin/nologin' >> /etc/passwd"
    )
    mounts: dict[str, pathlib.Path] = dict(extra_mounts or {})
    for c in containers:
        for m in c["volumeMounts"]:
            # /tmp stays the host's: writable, and it holds the tests' own files.
            if m["mountPath"] != "/tmp":
                mounts.setdefault(m["mountPath"], sources[m["name"]])
    for dst, src in mounts.items():
        lines += [f"mkdir -p {shlex.quote(dst)}", f"mount --bind {shlex.quote(str(src))} {dst}"]
    # readOnlyRootFilesystem: everything but the volumes (and /tmp) is read-only from here on.
    # A bind remount changes this namespace's mount only, never the host's file system.
    lines += [f"mount -o remount,bind,ro {m}" for m in ("/", *OVERLAID, *tops)]
    lines.append(
        "if touch /etc/.padlock-rw-probe 2>/dev/null; then echo 'root is writable'; exit 4; fi"
    )
    as_uid = (
        f"setpriv --reuid={UID} --regid={UID} --clear-groups env -i HOME=/tmp PATH=/usr/bin:/bin"
    )
    python = shlex.quote(sys.executable)
    padlock = shlex.quote(str(pathlib.Path(sys.executable).with_name("padlock")))
    for c in containers:
        env = {
            e["name"]: e["value"]
            if "value" in e
            else fields[e["valueFrom"]["fieldRef"]["fieldPath"]]
            for e in c.get("env", [])
        }
        env.update((extra_env or {}).get(c["name"], {}))
        env_words = " ".join(shlex.quote(f"{k}={v}") for k, v in env.items())
        log = f"{out}/{c['name']}.log"
        if "command" in c:  # python -c ...: the image's python is this one
            argv = " ".join([python, *map(shlex.quote, c["command"][1:])])
        else:
            argv = " ".join([padlock, *map(shlex.quote, c["args"])])
        is_init = c in pod.get("initContainers", []) and c.get("restartPolicy") != "Always"
        if is_init:
            lines.append(f"{as_uid} {env_words} {argv} > {log} 2>&1 || exit 3")
            continue
        lines.append(f"{as_uid} {env_words} {argv} > {log} 2>&1 &")
        lines.append('PIDS="${PIDS:-} $!"')
        if "startupProbe" in c:
            probe = c["startupProbe"]
            cmd = " ".join([python, *map(shlex.quote, probe["exec"]["command"][1:])])
            tries = probe["failureThreshold"] * probe["periodSeconds"] * 10
            lines.append(
                f"for _ in $(seq {tries}); do {as_uid} {cmd} 2>/dev/null && break; sleep 0.1; done"
            )
    lines.append(f"touch {out}/started")
    lines.append(f"while [ ! -e {out}/stop ]; do sleep 0.2; done")
    lines.append("kill -TERM $PIDS; wait")
    process = subprocess.Popen(
        ["unshare", "-m", "bash", "-c", "\n".join(lines) + "\n"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    emulated = Pod(process, out)
    deadline = time.monotonic() + 120
    while not (out / "started").exists():
        if process.poll() is not None or time.monotonic() > deadline:
            emulated.stop(timeout=5)
            output = process.stdout.read() if process.stdout else ""
            pytest.fail(f"the emulated pod did not start: {output}{emulated.logs()}")
        time.sleep(0.1)
    return emulated
