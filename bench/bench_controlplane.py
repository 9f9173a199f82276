"""Benchmark: local control plane build and start/stop times.

Run by bench/run_all.py (or by hand: `.venv/bin/python bench/bench_controlplane.py`); prints a
Markdown section. The cold build time is not re-measured (it takes many minutes): it is read
from the build-seconds record tools/controlplane/build.sh writes into its cache folder. Warm
start (process spawn -> kube-apiserver /readyz ok -> controllers running) and stop are
measured on a fresh control plane under a temp dir, never touching a running `make up` one.
"""

from __future__ import annotations

import json
import pathlib
import statistics
import sys
import tempfile
import time

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))

from tools.controlplane import local

ROUNDS = 3


def main() -> int:
    print("### Local control plane (etcd + kube-apiserver + kube-controller-manager)\n")
    print("`.venv/bin/python bench/bench_controlplane.py`\n")
    try:
        binaries = local.binaries_dir()
    except local.ControlPlaneError as exc:
        print(f"not measured: {exc}\n")
        return 0
    build_seconds = binaries / "build-seconds"
    versions = binaries / "versions"
    cold = build_seconds.read_text().strip() + " s" if build_seconds.exists() else "not recorded"
    pinned = ", ".join(versions.read_text().split("\n")).strip(", ") if versions.exists() else "?"

    starts: list[float] = []
    readyz: list[float] = []
    ready: list[float] = []
    stops: list[float] = []
    for _ in range(ROUNDS):
        with tempfile.TemporaryDirectory(prefix="padlock-bench-cp-") as tmp:
            base = pathlib.Path(tmp)
            t0 = time.monotonic()
            cp = local.start(base, die_with_parent=True)
            starts.append(time.monotonic() - t0)
            state = json.loads((base / "controlplane/state.json").read_text())
            readyz.append(float(state["readyz_seconds"]))
            t1 = time.monotonic()
            cp.kubectl("get", "--raw", "/readyz")
            ready.append(time.monotonic() - t1)
            t2 = time.monotonic()
            local.stop(base)
            stops.append(time.monotonic() - t2)

    print(f"Versions: {pinned}. Binaries: `{binaries}`.\n")
    print("| figure | value |")
    print("|---|---|")
    print(f"| cold build (build.sh, from the Go module proxy, 2 cores) | {cold} |")
    print(
        f"| warm start: fresh PKI + etcd + kube-apiserver -> /readyz ok (median of {ROUNDS}) "
        f"| {statistics.median(readyz):.1f} s (min {min(readyz):.1f}, max {max(readyz):.1f}) |"
    )
    print(
        f"| warm start: ... + kube-controller-manager -> default ServiceAccount made "
        f"(median of {ROUNDS}) | {statistics.median(starts):.1f} s "
        f"(min {min(starts):.1f}, max {max(starts):.1f}) |"
    )
    print(f"| one `kubectl get --raw /readyz` | {statistics.median(ready) * 1000:.0f} ms |")
    print(f"| stop (SIGTERM to each process group, all gone) | {statistics.median(stops):.1f} s |")
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
