"""The CA container starts from what the chart renders, in the pod's own file layout.

No container runtime here, so the pod is emulated with a private mount namespace
(`unshare -m`): every volume the rendered CA container mounts is bind-mounted at its
mountPath, filled the way the cluster would fill it (ConfigMap keys, the ceremony's chain and
PIN, the token PVC seeded by the rendered init container), and the container's args and env
run as the image's UID 10001. Proves ca.yaml, softhsm2.conf, the paths and the seeding fit
together with a real ceremony, a real SoftHSM token and the real `padlock ca serve`.
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import shutil
import subprocess
import sys
from typing import Any

import pytest

from tests.unit.chart import render

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]

UID = 10001
# Host directories overlaid (upper layer in the test's temp dir) inside the namespace, so the
# pod's mount points are made without touching the host's file system.
OVERLAID = ("/etc", "/var/lib", "/run")
SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so"


def _need(tool: str) -> str:
    found = shutil.which(tool)
    if found is None:
        pytest.fail(f"{tool} is required (util-linux / softhsm2): run `make setup`")
    return found


def _ceremony(work: pathlib.Path) -> pathlib.Path:
    """README's ceremony, steps 1-4, into work/ (token dir, root, intermediate, token.tar)."""
    (work / "tokens").mkdir(parents=True)
    conf = work / "softhsm2.conf"
    conf.write_text(f"directories.tokendir = {work}/tokens\nobjectstore.backend = file\n")
    (work / "pin.txt").write_text("123456")
    env = {
        **os.environ,
        "SOFTHSM2_CONF": str(conf),
        "PADLOCK_ROOT_PASSPHRASE": "test only, not a secret",
    }
    padlock = str(pathlib.Path(sys.executable).with_name("padlock"))

    def run(*argv: str) -> None:
        proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, f"{shlex.join(argv)}: {proc.stderr}"

    run(
        _need("softhsm2-util"),
        "--init-token",
        "--free",
        "--label",
        "padlock",
        "--pin",
        "123456",
        "--so-pin",
        "12345678",
    )
    run(padlock, "ca", "init-root", "--dir", str(work / "root"))
    run(
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
    )
    subprocess.run(
        ["tar", "-C", str(work / "tokens"), "-cf", str(work / "token.tar"), "."], check=True
    )
    return work


def _volume_sources(
    objects: list[dict[str, Any]], ceremony: pathlib.Path, vols: pathlib.Path
) -> dict[str, pathlib.Path]:
    """One directory per pod volume, holding what the cluster would put there."""
    config = render.one(objects, "ConfigMap", "padlock-config")["data"]
    contents: dict[str, dict[str, bytes]] = {
        "config": {k: v.encode() for k, v in config.items()},
        "chain": {
            "chain.pem": (ceremony / "intermediate/chain.pem").read_bytes(),
            "ocsp.pem": (ceremony / "intermediate/ocsp.pem").read_bytes(),
        },
        "hsm-pin": {"pin": (ceremony / "pin.txt").read_bytes()},
        "softhsm-seed": {"token.tar": (ceremony / "token.tar").read_bytes()},
        "softhsm-tokens": {},
        "ledger": {},
        "ca-socket": {},
        "tmp": {},
    }
    sources = {}
    for name, files in contents.items():
        d = vols / name
        d.mkdir(parents=True)
        for fname, data in files.items():
            (d / fname).write_bytes(data)
        sources[name] = d
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(vols)], check=True)
    return sources


def _script(
    pod: dict[str, Any], sources: dict[str, pathlib.Path], out: pathlib.Path, layers: pathlib.Path
) -> str:
    """A bash script for `unshare -m`: mounts, the init container, then the CA container."""
    (init,) = pod["initContainers"]
    (ca,) = [c for c in pod["containers"] if c["name"] == "ca"]
    lines = ["set -euo pipefail", "mount --make-rprivate /"]
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
    mounted: set[str] = set()
    for c in (init, ca):
        for m in c["volumeMounts"]:
            # /tmp stays the host's (writable, and it holds this test's own files).
            if m["mountPath"] in mounted or m["mountPath"] == "/tmp":
                continue
            mounted.add(m["mountPath"])
            src, dst = shlex.quote(str(sources[m["name"]])), shlex.quote(m["mountPath"])
            lines += [f"mkdir -p {dst}", f"mount --bind {src} {dst}"]
    as_uid = (
        f"setpriv --reuid={UID} --regid={UID} --clear-groups env -i HOME=/tmp PATH=/usr/bin:/bin"
    )
    python = shlex.quote(sys.executable)
    init_argv = [python, *map(shlex.quote, init["command"][1:])]
    lines.append(f"{as_uid} {' '.join(init_argv)}")
    env = " ".join(shlex.quote(f"{e['name']}={e['value']}") for e in ca.get("env", []))
    padlock = shlex.quote(str(pathlib.Path(sys.executable).with_name("padlock")))
    ca_argv = " ".join(shlex.quote(a) for a in ca["args"])
    lines.append(f"{as_uid} {env} {padlock} {ca_argv} > {out}/ca.log 2>&1 &")
    lines.append("CA=$!")
    probe = (
        "import json, socket, sys, time\n"
        "for _ in range(300):\n"
        "    try:\n"
        "        s = socket.socket(socket.AF_UNIX); s.connect('/run/padlock/ca.sock'); break\n"
        "    except OSError: time.sleep(0.1)\n"
        "else: sys.exit('no socket')\n"
        "s.sendall(b'GET /v1/ca HTTP/1.0\\r\\nHost: ca\\r\\n\\r\\n')\n"
        "data = b''\n"
        "while chunk := s.recv(65536): data += chunk\n"
        "sys.stdout.write(data.decode())\n"
    )
    lines.append(f"{as_uid} {python} -c {shlex.quote(probe)} > {out}/probe.txt || true")
    lines.append(
        f"ls -ln /run/padlock /var/lib/padlock/ledger /var/lib/padlock/tokens > {out}/files.txt"
    )
    lines.append("kill -TERM $CA; wait $CA || true")
    return "\n".join(lines) + "\n"


def test_ca_container_serves_from_the_rendered_pod_layout(tmp_path: pathlib.Path) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (unshare -m, mount, chown), as `make test` runs in CI")
    _need("unshare")
    _need("setpriv")
    tmp_path.chmod(0o755)
    ceremony = _ceremony(tmp_path / "ceremony")
    objects = render.template()
    pod = render.one(objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    sources = _volume_sources(objects, ceremony, tmp_path / "volumes")
    out = tmp_path / "out"
    out.mkdir()
    out.chmod(0o777)
    proc = subprocess.run(
        ["unshare", "-m", "bash", "-c", _script(pod, sources, out, tmp_path / "layers")],
        capture_output=True,
        text=True,
        timeout=180,
    )
    log = (out / "ca.log").read_text() if (out / "ca.log").exists() else ""
    assert proc.returncode == 0, f"{proc.stderr}\nCA log:\n{log}"
    # The init container seeded the token PVC from token.tar.
    assert list((sources["softhsm-tokens"]).glob("*/token.object")), proc.stderr
    # The CA answered on the socket the operator is given, as UID 10001.
    head, _, body = (out / "probe.txt").read_bytes().decode().partition("\r\n\r\n")
    assert head.startswith("HTTP/1.") and " 200 " in head.splitlines()[0], f"{head}\n{log}"
    info = json.loads(body)
    assert info["name"] == "padlock"
    # The chain it serves is the ceremony's intermediate, read from the chain ConfigMap mount.
    assert (ceremony / "intermediate/intermediate.pem").read_text().strip() in info["chain"]
    assert info["ocsp_url"] == "http://padlock-ocsp.pki.svc"
    # The SQLite ledger was created on the ledger PVC, owned by the image's user.
    ledger = sources["ledger"] / "ledger.db"
    assert ledger.exists(), (out / "files.txt").read_text()
    assert ledger.stat().st_uid == UID
    operator = next(c for c in pod["containers"] if c["name"] == "operator")
    assert "/run/padlock/ca.sock" in operator["args"]
