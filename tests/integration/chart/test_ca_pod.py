"""The CA pod runs from what the chart renders, in the pod's own file layout.

No container runtime here, so the pod is emulated with a private mount namespace
(`unshare -m`): every volume the rendered CA container mounts is bind-mounted at its
mountPath, filled the way the cluster would fill it (ConfigMap keys, the ceremony's chain and
PIN, the token PVC seeded by the rendered init container), and the container's args and env
run as the image's UID 10001. Proves ca.yaml, softhsm2.conf, the paths and the seeding fit
together with a real ceremony, a real SoftHSM token, the real `padlock ca serve` (a
certificate signed over the socket) and `padlock ocsp serve` (`openssl ocsp` says good).
"""

from __future__ import annotations

import json
import os
import pathlib
import shlex
import shutil
import socket
import subprocess
import sys
import tempfile
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


# Runs inside the namespace as UID 10001, like a client in the pod: the operator's request to
# the CA over the socket, then a relying party's OCSP question to the in-pod responder.
_PROBE = r"""
import http.client, json, socket, subprocess, sys, time
out, port = sys.argv[1], int(sys.argv[2])


class UnixHTTP(http.client.HTTPConnection):
    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX)
        self.sock.connect("/run/padlock/ca.sock")


def call(method, path, body=None):
    for _ in range(300):
        try:
            conn = UnixHTTP("ca")
            conn.request(method, path, body=body, headers={"Content-Type": "application/json"})
            resp = conn.getresponse()
            return resp.status, json.loads(resp.read())
        except (FileNotFoundError, ConnectionRefusedError):
            time.sleep(0.1)
    sys.exit("the CA socket never answered")


status, info = call("GET", "/v1/ca")
json.dump({"status": status, "info": info}, open(f"{out}/ca.json", "w"))
request = {
    "csr": open(f"{out}/req.csr").read(),
    "profile": "tls-server",
    "lifetime_seconds": 86400,
    "idempotency_key": "pki/web/1",
    "requester": "system:serviceaccount:pki:padlock",
}
status, issued = call("POST", "/v1/sign", json.dumps(request).encode())
json.dump({"status": status, "issued": issued}, open(f"{out}/sign.json", "w"))
open(f"{out}/leaf.pem", "w").write(issued["certificate"])
open(f"{out}/issuer.pem", "w").write(issued["chain"])
answer = ""
for _ in range(100):
    proc = subprocess.run(
        ["openssl", "ocsp", "-issuer", f"{out}/issuer.pem", "-cert", f"{out}/leaf.pem",
         "-url", f"http://127.0.0.1:{port}", "-CAfile", f"{out}/root.pem",
         "-verify_other", f"{out}/issuer.pem", "-no_nonce"],
        capture_output=True, text=True)
    answer = proc.stdout + proc.stderr
    if ": good" in answer:
        break
    time.sleep(0.2)
open(f"{out}/ocsp.txt", "w").write(answer)
"""


def _script(
    pod: dict[str, Any],
    sources: dict[str, pathlib.Path],
    out: pathlib.Path,
    layers: pathlib.Path,
    port: int,
) -> str:
    """A bash script for `unshare -m`: mounts, the init container, the CA and responder
    containers, the probe, then SIGTERM to both servers."""
    init, ca, ocsp = (render.container(pod, n) for n in ("seed-softhsm-token", "ca", "ocsp"))
    assert [c["name"] for c in pod["initContainers"]] == ["seed-softhsm-token", "ca"]
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
    for c in (init, ca, ocsp):
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
    padlock = shlex.quote(str(pathlib.Path(sys.executable).with_name("padlock")))
    # Pod start order: the init container, then the CA sidecar until its startupProbe passes,
    # then the regular containers (the operator needs an API server: not run here).
    lines.append(f"{as_uid} {python} {' '.join(map(shlex.quote, init['command'][1:]))}")
    for c in (ca, ocsp):
        env = " ".join(shlex.quote(f"{e['name']}={e['value']}") for e in c.get("env", []))
        argv = " ".join(shlex.quote(a) for a in c["args"])
        lines.append(f"{as_uid} {env} {padlock} {argv} > {out}/{c['name']}.log 2>&1 &")
        lines.append(f"PID_{c['name'].upper()}=$!")
        if "startupProbe" in c:
            probe = c["startupProbe"]
            command = [python, *map(shlex.quote, probe["exec"]["command"][1:])]
            tries = probe["failureThreshold"] * probe["periodSeconds"] * 10
            lines.append(
                f"for _ in $(seq {tries}); do {as_uid} {' '.join(command)} 2>/dev/null && break;"
                " sleep 0.1; done"
            )
    lines.append(
        f"{as_uid} {python} -c {shlex.quote(_PROBE)} {out} {port} 2> {out}/probe.log || true"
    )
    lines.append(
        f"ls -ln /run/padlock /var/lib/padlock/ledger /var/lib/padlock/tokens > {out}/files.txt"
    )
    lines.append("kill -TERM $PID_CA $PID_OCSP; wait $PID_CA $PID_OCSP || true")
    return "\n".join(lines) + "\n"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_ca_pod_issues_and_its_responder_answers_good(
    tmp_path: pathlib.Path, request: pytest.FixtureRequest
) -> None:
    if os.geteuid() != 0:
        pytest.fail("this test needs root (unshare -m, mount, chown), as `make test` runs in CI")
    _need("unshare")
    _need("setpriv")
    _need("openssl")
    tmp_path.chmod(0o755)
    ceremony = _ceremony(tmp_path / "ceremony")
    port = _free_port()
    objects = render.template(sets=[f"ocsp.port={port}"])
    pod = render.one(objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    sources = _volume_sources(objects, ceremony, tmp_path / "volumes")
    # The probe's files: a directory UID 10001 can reach (pytest's base temp dir is 0700).
    out = pathlib.Path(tempfile.mkdtemp(prefix="padlock-ca-pod-", dir="/tmp"))
    request.addfinalizer(lambda: shutil.rmtree(out, ignore_errors=True))
    shutil.copy(ceremony / "intermediate/root.pem", out / "root.pem")
    subprocess.run(
        [
            "openssl",
            "req",
            "-new",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-nodes",
            "-keyout",
            str(out / "req.key"),
            "-out",
            str(out / "req.csr"),
            "-subj",
            "/CN=web.pki.svc",
            "-addext",
            "subjectAltName=DNS:web.pki.svc",
        ],
        check=True,
        capture_output=True,
    )
    subprocess.run(["chown", "-R", f"{UID}:{UID}", str(out)], check=True)
    proc = subprocess.run(
        ["unshare", "-m", "bash", "-c", _script(pod, sources, out, tmp_path / "layers", port)],
        capture_output=True,
        text=True,
        timeout=240,
    )
    logs = "".join(f"\n--- {p.name}\n{p.read_text()[-3000:]}" for p in sorted(out.glob("*.log")))
    assert proc.returncode == 0, f"{proc.stderr}{logs}"
    # The init container seeded the token PVC from token.tar.
    assert list(sources["softhsm-tokens"].glob("*/token.object")), logs
    # The CA answered on the socket the operator is given, as UID 10001, with the ceremony's
    # chain (read from the chain ConfigMap mount) and the chart's URLs.
    ca = json.loads((out / "ca.json").read_text())
    assert ca["status"] == 200, logs
    assert (ceremony / "intermediate/intermediate.pem").read_text().strip() in ca["info"]["chain"]
    assert ca["info"]["ocsp_url"] == "http://padlock-ocsp.pki.svc"
    # It signed through the HSM token the init container unpacked ...
    sign = json.loads((out / "sign.json").read_text())
    assert sign["status"] == 200, f"{sign}{logs}"
    # ... and the keyless responder in the same pod found it in the SQLite ledger on the PVC.
    answer = (out / "ocsp.txt").read_text()
    assert "leaf.pem: good" in answer, f"{answer}{logs}"
    assert "Response verify OK" in answer, answer
    ledger = sources["ledger"] / "ledger.db"
    assert ledger.stat().st_uid == UID, (out / "files.txt").read_text()
    assert "/run/padlock/ca.sock" in render.container(pod, "operator")["args"]
