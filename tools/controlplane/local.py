"""Start, find and stop a local Kubernetes control plane made of plain processes.

One implementation for two callers: tools/up.sh and tools/down.sh run
`python -m tools.controlplane.local up|down|status` (state under the repo's .padlock/), and
tests/fixtures/controlplane.py imports start/stop/find_running (state under a temp dir, or a
running `make up` one reused). It runs etcd, kube-apiserver (RBAC, Node authorizer, client
certificates, service-account signing keys) and kube-controller-manager (deployment,
replicaset, garbage collector, service accounts and their tokens, namespace deletion) on free
loopback ports, envtest-style, from the binaries tools/controlplane/build.sh made.

Nothing runs forever: each process is started under coreutils `timeout` (default 4 h, env
PADLOCK_CONTROLPLANE_MAX_LIFETIME), in its own process group whose id is the recorded PID, and
test sessions also ask the kernel to end it when the test process dies (PR_SET_PDEATHSIG).
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import ctypes
import dataclasses
import datetime
import fcntl
import json
import os
import pathlib
import re
import shlex
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence

from tools.controlplane import pki

REPO = pathlib.Path(__file__).resolve().parents[2]
DEFAULT_BASE = REPO / ".padlock"
SERVICE_CIDR = "10.0.0.0/24"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
# kube-controller-manager's controller names (cmd/kube-controller-manager/names): rollouts,
# garbage collection, service accounts + tokens, namespace deletion, kube-root-ca.crt,
# aggregated ClusterRoles (admin/edit/view pick up charts' aggregate-to-* rules), and PVC
# protection (a deleted PVC's finalizer is removed once no pod uses it).
CONTROLLERS = ",".join(
    [
        "deployment-controller",
        "replicaset-controller",
        "garbage-collector-controller",
        "serviceaccount-controller",
        "serviceaccount-token-controller",
        "namespace-controller",
        "root-ca-certificate-publisher-controller",
        "clusterrole-aggregation-controller",
        "persistentvolumeclaim-protection-controller",
    ]
)
COMPONENTS = ("etcd", "kube-apiserver", "kube-controller-manager")
DEFAULT_MAX_LIFETIME = "4h"
START_TIMEOUT = 180.0


class ControlPlaneError(RuntimeError):
    """The control plane cannot be found, started or reached; the message says why."""


class KubectlError(subprocess.CalledProcessError):
    """kubectl exited non-zero; str() carries its stderr so a test failure shows it."""

    def __str__(self) -> str:
        return f"kubectl {shlex.join(self.cmd[1:])} exited {self.returncode}: {self.stderr}"


@dataclasses.dataclass(frozen=True)
class ControlPlane:
    """A reachable control plane: what tests and scripts need to talk to it."""

    base: pathlib.Path
    kubeconfig: pathlib.Path
    server: str
    kubectl_path: pathlib.Path

    def kubectl(
        self, *args: str, input: str | None = None, check: bool = True
    ) -> subprocess.CompletedProcess[str]:
        """Run kubectl against this control plane; raise KubectlError if check and it fails."""
        cmd = [str(self.kubectl_path), f"--kubeconfig={self.kubeconfig}", *args]
        proc = subprocess.run(cmd, input=input, capture_output=True, text=True, timeout=120)
        if check and proc.returncode != 0:
            raise KubectlError(proc.returncode, cmd, proc.stdout, proc.stderr)
        return proc


# --- where things are -------------------------------------------------------------------


def _pinned_version(go_mod: pathlib.Path, module: str) -> str:
    for line in go_mod.read_text().splitlines():
        words = line.split()
        if len(words) >= 2 and words[0] == module and words[1].startswith("v"):
            return words[1]
        if len(words) >= 3 and words[0] == "require" and words[1] == module:
            return words[2]
    raise ControlPlaneError(f"{go_mod} does not require {module}")


def binaries_dir() -> pathlib.Path:
    """KUBEBUILDER_ASSETS if set, else the build cache for the pinned Kubernetes version."""
    assets = os.environ.get("KUBEBUILDER_ASSETS")
    if assets:
        folder = pathlib.Path(assets)
        # envtest's asset bundles ship no kube-controller-manager: say so, building won't help.
        hint = (
            f"KUBEBUILDER_ASSETS={assets}; add the missing binaries there, or unset "
            "KUBEBUILDER_ASSETS and run `make controlplane` to build all three"
        )
    else:
        version = _pinned_version(
            REPO / "tools/controlplane/kubernetes/go.mod", "k8s.io/kubernetes"
        )
        cache = os.environ.get("PADLOCK_CONTROLPLANE_CACHE")
        root = pathlib.Path(cache) if cache else pathlib.Path.home() / ".cache/padlock/controlplane"
        folder = root / version
        hint = (
            "the build cache; run `make controlplane` (tools/controlplane/build.sh), "
            "or set KUBEBUILDER_ASSETS to a folder holding all three"
        )
    missing = [c for c in COMPONENTS if not os.access(folder / c, os.X_OK)]
    if missing:
        raise ControlPlaneError(f"{', '.join(missing)} not found in {folder} ({hint})")
    return folder


def kubectl_binary() -> pathlib.Path:
    """kubectl fetched by tools/fetch-kubectl-helm.sh (never the system one)."""
    cache = os.environ.get("PADLOCK_BIN_CACHE")
    path = (
        pathlib.Path(cache) if cache else pathlib.Path.home() / ".cache/padlock/bin"
    ) / "kubectl"
    if not os.access(path, os.X_OK):
        raise ControlPlaneError(
            f"{path} not found; run `make controlplane` (tools/fetch-kubectl-helm.sh)"
        )
    return path


def _state(base: pathlib.Path) -> pathlib.Path:
    return base / "controlplane"


@contextlib.contextmanager
def _locked(base: pathlib.Path) -> Iterator[None]:
    """One up/down at a time per state folder (make up, make down and tests may race)."""
    base.mkdir(parents=True, exist_ok=True)
    with (base / ".controlplane.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


# --- processes --------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _pid_file(base: pathlib.Path, name: str) -> pathlib.Path:
    return _state(base) / "pids" / f"{name}.pid"


def _alive(pid: int, name: str) -> bool:
    """True if pid is a live (not zombie) process of ours for component name: the `timeout`
    watchdog whose first arguments name the component's binary (so a recycled PID of some
    other process is never taken for ours, nor signalled)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return False
    try:
        status = pathlib.Path(f"/proc/{pid}/status").read_text()
        cmdline = pathlib.Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    if re.search(r"^State:\s+Z", status, re.MULTILINE):
        return False
    names = [pathlib.Path(os.fsdecode(a)).name for a in cmdline[:4]]
    return names[0] == "timeout" and name in names[1:]


def _recorded_pid(base: pathlib.Path, name: str) -> int | None:
    try:
        return int(_pid_file(base, name).read_text().strip())
    except (OSError, ValueError):
        return None


def _die_with_parent() -> None:
    """preexec_fn: the kernel sends SIGTERM when the starting process dies (prctl(2))."""
    pr_set_pdeathsig = 1
    ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _spawn(
    base: pathlib.Path,
    name: str,
    args: Sequence[str],
    max_lifetime: str,
    die_with_parent: bool,
) -> int:
    """Start binary name under `timeout` in a new process group; record and return its PID."""
    binary = binaries_dir() / name
    log = (_state(base) / "logs" / f"{name}.log").open("ab")
    # timeout(1) forwards SIGTERM to the component and kills it at the deadline.
    cmd = ["timeout", "--kill-after=20s", max_lifetime, str(binary), *args]
    proc = subprocess.Popen(
        cmd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
        preexec_fn=_die_with_parent if die_with_parent else None,
    )
    log.close()
    _pid_file(base, name).write_text(f"{proc.pid}\n")
    # Until the child has exec'd timeout(1), /proc shows Python's command line and _alive()
    # would call it dead: wait for the exec (or an early exit) before anyone looks.
    deadline = time.monotonic() + 10
    while proc.poll() is None and time.monotonic() < deadline and not _alive(proc.pid, name):
        time.sleep(0.01)
    return proc.pid


def _log_tail(base: pathlib.Path, name: str, lines: int = 30) -> str:
    try:
        text = (_state(base) / "logs" / f"{name}.log").read_text(errors="replace")
    except OSError:
        return "(no log)"
    return "\n".join(text.splitlines()[-lines:])


def _group_gone(pgid: int) -> bool:
    """True if no live process is left in process group pgid (zombies awaiting reaping by
    init do not count: they hold no resources and no port)."""
    for stat in pathlib.Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        # proc(5) /proc/pid/stat after the command name: state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] != "Z":
            return False
    return True


def _stop_one(base: pathlib.Path, name: str, grace: float = 15.0) -> None:
    pid = _recorded_pid(base, name)
    if pid is None:
        return
    if _alive(pid, name):
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGTERM)
        deadline = time.monotonic() + grace
        while time.monotonic() < deadline and (_alive(pid, name) or not _group_gone(pid)):
            time.sleep(0.1)
        if not _group_gone(pid):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGKILL)
            _alive(pid, name)  # reap if it is our child
    _pid_file(base, name).unlink(missing_ok=True)


# --- talking to it ----------------------------------------------------------------------


def _https_get(url: str, pki_dir: pathlib.Path, timeout: float = 3.0) -> tuple[int, str]:
    ctx = ssl.create_default_context(cafile=str(pki_dir / "ca.crt"))
    ctx.load_cert_chain(pki_dir / "admin.crt", pki_dir / "admin.key")
    try:
        with urllib.request.urlopen(url, context=ctx, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except (OSError, ssl.SSLError) as exc:
        return 0, str(exc)


def _http_get(url: str, timeout: float = 3.0) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as resp:  # noqa: S310
            return int(resp.status), resp.read().decode(errors="replace")
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode(errors="replace")
    except OSError as exc:
        return 0, str(exc)


def _wait_until(
    base: pathlib.Path,
    what: str,
    probe: Iterator[tuple[bool, str]],
    watch: Sequence[str],
    timeout: float = START_TIMEOUT,
) -> None:
    """Poll probe until it says ok; fail fast with the log tail if a watched process died."""
    deadline = time.monotonic() + timeout
    last = ""
    for ok, last in probe:
        if ok:
            return
        for name in watch:
            pid = _recorded_pid(base, name)
            if pid is None or not _alive(pid, name):
                raise ControlPlaneError(
                    f"{name} exited while waiting for {what}; last log lines:\n"
                    f"{_log_tail(base, name)}"
                )
        if time.monotonic() > deadline:
            raise ControlPlaneError(f"timed out after {timeout:.0f}s waiting for {what}: {last}")
        time.sleep(0.2)


def _probe(
    get: Callable[..., tuple[int, str]], *args: object, want: str = ""
) -> Iterator[tuple[bool, str]]:
    while True:
        status, body = get(*args)
        yield status == 200 and want in body, f"HTTP {status} {body[:300]}"


def _kubeconfig(server: str, pki_dir: pathlib.Path, user: str) -> str:
    """A kubeconfig (JSON is valid YAML) with the CA and client pair embedded."""

    def b64(name: str) -> str:
        return base64.b64encode((pki_dir / name).read_bytes()).decode()

    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "padlock-local",
                "cluster": {"server": server, "certificate-authority-data": b64("ca.crt")},
            }
        ],
        "users": [
            {
                "name": user,
                "user": {
                    "client-certificate-data": b64(f"{user}.crt"),
                    "client-key-data": b64(f"{user}.key"),
                },
            }
        ],
        "contexts": [
            {"name": "padlock-local", "context": {"cluster": "padlock-local", "user": user}}
        ],
        "current-context": "padlock-local",
        "preferences": {},
    }
    return json.dumps(doc, indent=2) + "\n"


def _write_private(path: pathlib.Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.chmod(0o600)
    tmp.replace(path)


def write_endpoints_env(base: pathlib.Path, kubeconfig: pathlib.Path | None) -> pathlib.Path:
    """Set (or, given None, drop) KUBECONFIG=... in base/endpoints.env, keeping every other
    line: later tools add their own endpoints to the same file."""
    env = base / "endpoints.env"
    keep = []
    if env.exists():
        keep = [
            line
            for line in env.read_text().splitlines()
            if not re.match(r"\s*(export\s+)?KUBECONFIG=", line)
        ]
    if kubeconfig is not None:
        keep.append(f"KUBECONFIG={shlex.quote(str(kubeconfig.resolve()))}")
    tmp = env.with_name(env.name + ".tmp")
    tmp.write_text("\n".join(keep) + "\n")
    tmp.replace(env)
    return env


# --- the public verbs -------------------------------------------------------------------


def find_running(base: pathlib.Path = DEFAULT_BASE) -> ControlPlane | None:
    """The control plane recorded under base if all its processes live and /readyz is ok."""
    state_file = _state(base) / "state.json"
    if not state_file.exists():
        return None
    for name in COMPONENTS:
        pid = _recorded_pid(base, name)
        if pid is None or not _alive(pid, name):
            return None
    state = json.loads(state_file.read_text())
    status, _ = _https_get(f"{state['server']}/readyz", _state(base) / "pki")
    if status != 200:
        return None
    return ControlPlane(base, base / "kubeconfig", state["server"], kubectl_binary())


def start(
    base: pathlib.Path,
    *,
    max_lifetime: str | None = None,
    die_with_parent: bool = False,
    now: datetime.datetime | None = None,
) -> ControlPlane:
    """Start a fresh control plane with its state under base/controlplane; wait until ready.

    Any processes recorded under base are stopped first, and the old state is removed.
    """
    lifetime = max_lifetime or os.environ.get(
        "PADLOCK_CONTROLPLANE_MAX_LIFETIME", DEFAULT_MAX_LIFETIME
    )
    if not re.fullmatch(r"\d+(\.\d+)?[smhd]?", lifetime):
        raise ControlPlaneError(f"max lifetime {lifetime!r} is not a duration like 4h or 90m")
    binaries_dir()  # fail before touching anything if the binaries are missing
    t_start = time.monotonic()
    kubectl = kubectl_binary()
    for name in reversed(COMPONENTS):
        _stop_one(base, name)
    state = _state(base)
    shutil.rmtree(state, ignore_errors=True)
    for sub in ("pids", "logs", "pki", "etcd"):
        (state / sub).mkdir(parents=True, exist_ok=True)
    pki_dir = state / "pki"
    pki.write_pki(pki_dir, now or datetime.datetime.now(datetime.UTC))

    etcd_port, peer_port, api_port = _free_port(), _free_port(), _free_port()
    etcd_url = f"http://127.0.0.1:{etcd_port}"
    peer_url = f"http://127.0.0.1:{peer_port}"
    server = f"https://127.0.0.1:{api_port}"
    try:
        _spawn(
            base,
            "etcd",
            [
                f"--data-dir={state / 'etcd'}",
                "--name=padlock",
                f"--listen-client-urls={etcd_url}",
                f"--advertise-client-urls={etcd_url}",
                f"--listen-peer-urls={peer_url}",
                f"--initial-advertise-peer-urls={peer_url}",
                f"--initial-cluster=padlock={peer_url}",
                "--unsafe-no-fsync",  # throw-away data: no fsync, much faster on a shared disk
                "--log-level=warn",
            ],
            lifetime,
            die_with_parent,
        )
        _wait_until(
            base, "etcd /health", _probe(_http_get, f"{etcd_url}/health", want="true"), ["etcd"]
        )

        _spawn(
            base,
            "kube-apiserver",
            [
                "--bind-address=127.0.0.1",
                "--advertise-address=127.0.0.1",
                f"--secure-port={api_port}",
                f"--etcd-servers={etcd_url}",
                f"--cert-dir={state / 'pki'}",
                f"--tls-cert-file={pki_dir / 'apiserver.crt'}",
                f"--tls-private-key-file={pki_dir / 'apiserver.key'}",
                f"--client-ca-file={pki_dir / 'ca.crt'}",
                "--authorization-mode=Node,RBAC",
                f"--service-account-issuer={SA_ISSUER}",
                f"--service-account-key-file={pki_dir / 'sa.pub'}",
                f"--service-account-signing-key-file={pki_dir / 'sa.key'}",
                f"--service-cluster-ip-range={SERVICE_CIDR}",
                "--allow-privileged=true",
                # Endpoints may not hold a loopback address: keep the `kubernetes` Service
                # endpoint-less instead of logging a validation error every 10 s.
                "--endpoint-reconciler-type=none",
                "--profiling=false",
            ],
            lifetime,
            die_with_parent,
        )
        _wait_until(
            base,
            "kube-apiserver /readyz",
            _probe(_https_get, f"{server}/readyz", pki_dir),
            ["etcd", "kube-apiserver"],
        )
        readyz_seconds = time.monotonic() - t_start
        _write_private(
            state / "controller-manager.kubeconfig",
            _kubeconfig(server, pki_dir, "controller-manager"),
        )
        _write_private(base / "kubeconfig", _kubeconfig(server, pki_dir, "admin"))

        _spawn(
            base,
            "kube-controller-manager",
            [
                f"--kubeconfig={state / 'controller-manager.kubeconfig'}",
                f"--controllers={CONTROLLERS}",
                f"--service-account-private-key-file={pki_dir / 'sa.key'}",
                f"--root-ca-file={pki_dir / 'ca.crt'}",
                f"--cluster-signing-cert-file={pki_dir / 'ca.crt'}",
                f"--cluster-signing-key-file={pki_dir / 'ca.key'}",
                "--leader-elect=false",
                "--secure-port=0",
                "--profiling=false",
            ],
            lifetime,
            die_with_parent,
        )
        # The serviceaccount controller making `default` proves the controllers run.
        _wait_until(
            base,
            "kube-controller-manager (the default ServiceAccount)",
            _probe(
                _https_get, f"{server}/api/v1/namespaces/default/serviceaccounts/default", pki_dir
            ),
            COMPONENTS,
        )
    except BaseException:
        for name in reversed(COMPONENTS):
            _stop_one(base, name)
        raise
    (state / "state.json").write_text(
        json.dumps(
            {
                "server": server,
                "etcd": etcd_url,
                "max_lifetime": lifetime,
                # measured by bench/bench_controlplane.py: start -> /readyz ok -> controllers
                "readyz_seconds": round(readyz_seconds, 2),
                "ready_seconds": round(time.monotonic() - t_start, 2),
            }
        )
        + "\n"
    )
    return ControlPlane(base, base / "kubeconfig", server, kubectl)


def stop(base: pathlib.Path) -> None:
    """Stop every process recorded under base (by PID / process group) and drop its state."""
    for name in reversed(COMPONENTS):
        _stop_one(base, name)
    state = _state(base)
    # Keep the logs for a post-mortem; the rest is throw-away.
    for sub in ("pki", "etcd", "pids"):
        shutil.rmtree(state / sub, ignore_errors=True)
    for name in ("state.json", "controller-manager.kubeconfig"):
        (state / name).unlink(missing_ok=True)
    (base / "kubeconfig").unlink(missing_ok=True)


def apply_crds(cp: ControlPlane, crds_dir: pathlib.Path = REPO / "crds") -> list[pathlib.Path]:
    """kubectl apply every crds/*.yaml (if any) and wait until each CRD is Established."""
    files = sorted(crds_dir.glob("*.yaml")) if crds_dir.is_dir() else []
    if not files:
        return []
    args = [a for f in files for a in ("-f", str(f))]
    cp.kubectl("apply", "--server-side", "--force-conflicts", *args)
    cp.kubectl("wait", "--for=condition=Established", "--timeout=60s", *args)
    return files


def up(base: pathlib.Path, max_lifetime: str | None = None) -> tuple[ControlPlane, bool]:
    """Reuse the running control plane under base or start one; apply CRDs; write env file."""
    with _locked(base):
        cp = find_running(base)
        started = cp is None
        if cp is None:
            cp = start(base, max_lifetime=max_lifetime)
        apply_crds(cp)
        write_endpoints_env(base, cp.kubeconfig)
        return cp, started


def down(base: pathlib.Path) -> None:
    """Stop what `up` started under base."""
    with _locked(base):
        stop(base)
        if (base / "endpoints.env").exists():
            write_endpoints_env(base, None)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.controlplane.local", description=__doc__)
    parser.add_argument("verb", choices=["up", "down", "status"])
    parser.add_argument("--dir", type=pathlib.Path, default=DEFAULT_BASE, help="state folder")
    parser.add_argument("--max-lifetime", help="stop by itself after this long (default 4h)")
    opts = parser.parse_args(argv)
    base = opts.dir.resolve()
    try:
        if opts.verb == "up":
            t0 = time.monotonic()
            cp, started = up(base, opts.max_lifetime)
            verb = f"started in {time.monotonic() - t0:.1f}s" if started else "already running"
            print(f"control plane {verb}: {cp.server}")
            env = base / "endpoints.env"
            print(f"  export KUBECONFIG={shlex.quote(str(cp.kubeconfig))}  (also in {env})")
            print(f"  kubectl: {cp.kubectl_path}; logs: {_state(base) / 'logs'}")
        elif opts.verb == "down":
            down(base)
            print(f"control plane under {base} stopped")
        else:
            found = find_running(base)
            print(f"running: {found.server}" if found else "not running")
            return 0 if found else 3
    except ControlPlaneError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
