"""The Dockerfile: lint-clean (hadolint), non-root, exec-form entry point, and its build
context (.dockerignore) holds everything `pip install .` needs. No Docker engine runs here, so
the image itself is built by `make image` on a developer's machine."""

from __future__ import annotations

import fnmatch
import pathlib
import re
import shutil
import subprocess
import sys
import zipfile

import pytest

from padlock.ca import config
from tests.unit.chart import render

DOCKERFILE = render.REPO / "Dockerfile"


def _instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with line continuations joined and comments dropped."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            out.append((word.upper(), rest.strip()))
    return out


def test_hadolint_finds_nothing() -> None:
    hadolint = pathlib.Path(sys.executable).with_name("hadolint")
    proc = subprocess.run(
        [str(hadolint), "--no-color", str(DOCKERFILE)], capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_image_is_multi_stage_on_python_3_11_slim() -> None:
    froms = [args for word, args in _instructions() if word == "FROM"]
    assert len(froms) == 2
    (arg,) = [a for w, a in _instructions() if w == "ARG" and a.startswith("PYTHON_IMAGE=")]
    assert re.fullmatch(r"PYTHON_IMAGE=python:3\.11[.0-9]*-slim-\w+", arg)
    assert froms[1].startswith("${PYTHON_IMAGE}")


def test_runtime_user_is_a_fixed_numeric_non_root_uid() -> None:
    users = [args for word, args in _instructions() if word == "USER"]
    assert users[-1] == "10001:10001"
    values = (render.CHART / "values.yaml").read_text()
    assert "runAsUser: 10001" in values and "fsGroup: 10001" in values


def test_entrypoint_needs_no_shell() -> None:
    (entrypoint,) = [a for w, a in _instructions() if w == "ENTRYPOINT"]
    assert entrypoint == '["padlock"]'
    assert all(a.startswith("[") for w, a in _instructions() if w == "CMD")


def test_softhsm_module_path_matches_ca_config_default() -> None:
    """The Debian package the image installs puts the module where ca.yaml looks by default."""
    if shutil.which("dpkg") is None:
        pytest.fail("dpkg not found: this check needs a Debian machine like the image's base")
    files = subprocess.run(
        ["dpkg", "-L", "libsofthsm2"], capture_output=True, text=True, check=True
    ).stdout.split()
    assert config.DEFAULT_SOFTHSM_MODULE in files
    assert "libsofthsm2" in DOCKERFILE.read_text()


def _context_files() -> list[pathlib.Path]:
    """The files .dockerignore lets into the build context (its `*` + `!` + excludes form)."""
    rules = [
        line.strip()
        for line in (render.REPO / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert rules[0] == "*"
    included = [r[1:].rstrip("/") for r in rules[1:] if r.startswith("!")]
    excluded = [r.removeprefix("**/") for r in rules[1:] if not r.startswith("!")]
    files = []
    for top in included:
        path = render.REPO / top
        for f in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            rel = f.relative_to(render.REPO)
            if not any(fnmatch.fnmatch(part, pat) for part in rel.parts for pat in excluded):
                files.append(rel)
    return files


@pytest.mark.slow
def test_build_context_is_enough_to_build_the_padlock_wheel(tmp_path: pathlib.Path) -> None:
    context = tmp_path / "context"
    for rel in _context_files():
        (context / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(render.REPO / rel, context / rel)
    assert not (context / "tests").exists() and not (context / ".venv").exists()
    proc = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(tmp_path), "."],
        cwd=context,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    (wheel,) = tmp_path.glob("padlock-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "padlock/cli/__init__.py" in names
    assert "padlock/ca/config.py" in names
