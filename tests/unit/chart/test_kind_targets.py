"""The kind targets fail at once with a message naming what is missing, their scripts are
shellcheck-clean, and kind-config.yaml maps the port values-kind.yaml gives the responder."""

from __future__ import annotations

import os
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.unit.chart import render

KIND_TARGETS = ["kind-up", "image", "kind-load", "kind-install", "e2e-kind", "kind-down"]


def _bin_dir(tmp_path: pathlib.Path, *, docker: str | None, kind: bool) -> pathlib.Path:
    """A PATH holding just what make and the script need, plus optional docker/kind stubs."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in ("bash", "make", "dirname", "id", "grep", "timeout", "cat", "mkdir", "chmod"):
        found = shutil.which(tool)
        assert found, f"{tool} is needed to run this test"
        (bin_dir / tool).symlink_to(found)
    if docker is not None:
        (bin_dir / "docker").write_text(f"#!/bin/bash\n{docker}\n")
        (bin_dir / "docker").chmod(0o755)
    if kind:
        (bin_dir / "kind").write_text("#!/bin/bash\nexit 0\n")
        (bin_dir / "kind").chmod(0o755)
    return bin_dir


def _make(target: str, bin_dir: pathlib.Path) -> subprocess.CompletedProcess[str]:
    env = {"PATH": str(bin_dir), "HOME": os.environ.get("HOME", "/root")}
    return subprocess.run(
        ["make", "--no-print-directory", target],
        cwd=render.REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("target", KIND_TARGETS)
def test_target_fails_fast_without_docker(target: str, tmp_path: pathlib.Path) -> None:
    proc = _make(target, _bin_dir(tmp_path, docker=None, kind=True))
    assert proc.returncode != 0
    assert "kind: error: docker not found: install Docker" in proc.stderr


def test_target_fails_fast_when_the_docker_daemon_is_down(tmp_path: pathlib.Path) -> None:
    proc = _make("image", _bin_dir(tmp_path, docker="exit 1", kind=True))
    assert proc.returncode != 0
    assert "docker is installed but its daemon is not reachable" in proc.stderr


@pytest.mark.parametrize("target", [t for t in KIND_TARGETS if t != "image"])
def test_target_fails_fast_without_kind(target: str, tmp_path: pathlib.Path) -> None:
    proc = _make(target, _bin_dir(tmp_path, docker="exit 0", kind=False))
    assert proc.returncode != 0
    assert "kind: error: kind not found: install it" in proc.stderr


def test_kind_scripts_are_shellcheck_clean() -> None:
    shellcheck = pathlib.Path(sys.executable).with_name("shellcheck")
    scripts = sorted(str(p) for p in (render.REPO / "tools/kind").glob("*.sh"))
    proc = subprocess.run([str(shellcheck), *scripts], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout


def test_kind_config_exposes_the_responder_node_port() -> None:
    config = yaml.safe_load((render.REPO / "kind-config.yaml").read_text())
    assert config["apiVersion"] == "kind.x-k8s.io/v1alpha4"
    values = yaml.safe_load(render.KIND_VALUES.read_text())
    node_port = values["ocsp"]["service"]["nodePort"]
    mappings = [m for n in config["nodes"] for m in n.get("extraPortMappings", [])]
    assert {"containerPort": node_port, "hostPort": node_port} in [
        {"containerPort": m["containerPort"], "hostPort": m["hostPort"]} for m in mappings
    ]
    e2e = (render.REPO / "tools/kind/e2e.sh").read_text()
    assert f"http://127.0.0.1:{node_port}" in e2e
