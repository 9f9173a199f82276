"""The init container that seeds an empty SoftHSM token PVC from the ceremony's token.tar,
run here exactly as rendered (its command line, this Python) against temporary directories."""

from __future__ import annotations

import io
import pathlib
import subprocess
import sys
import tarfile
from typing import Any

import pytest

from tests.unit.chart import render


@pytest.fixture(scope="module")
def seed_command(default_objects: list[dict[str, Any]]) -> list[str]:
    pod = render.one(default_objects, "Deployment", "padlock")["spec"]["template"]["spec"]
    init = render.container(pod, "seed-softhsm-token")
    assert init["command"][:2] == ["python", "-c"]
    return list(init["command"])


def _run(
    command: list[str], tokens: pathlib.Path, seed: pathlib.Path
) -> subprocess.CompletedProcess[str]:
    # Same program, our paths instead of the pod's mount points.
    argv = [sys.executable, *command[1:3], str(tokens), str(seed)]
    return subprocess.run(argv, capture_output=True, text=True, timeout=30)


def _token_tar(path: pathlib.Path, members: dict[str, bytes]) -> None:
    with tarfile.open(path, "w") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))


def test_empty_pvc_is_seeded_from_the_token_tar(
    seed_command: list[str], tmp_path: pathlib.Path
) -> None:
    tokens, seed = tmp_path / "tokens", tmp_path / "token.tar"
    tokens.mkdir()
    (tokens / "lost+found").mkdir()  # what a fresh ext4 volume holds
    _token_tar(seed, {"./a1b2/token.object": b"token", "./a1b2/key.object": b"key"})
    proc = _run(seed_command, tokens, seed)
    assert proc.returncode == 0, proc.stderr
    assert (tokens / "a1b2/token.object").read_bytes() == b"token"
    assert (tokens / "a1b2/key.object").read_bytes() == b"key"


def test_existing_token_is_never_overwritten(
    seed_command: list[str], tmp_path: pathlib.Path
) -> None:
    tokens, seed = tmp_path / "tokens", tmp_path / "token.tar"
    (tokens / "live").mkdir(parents=True)
    (tokens / "live/token.object").write_bytes(b"live token with newer objects")
    _token_tar(seed, {"./live/token.object": b"old ceremony copy"})
    proc = _run(seed_command, tokens, seed)
    assert proc.returncode == 0, proc.stderr
    assert "nothing to seed" in proc.stdout
    assert (tokens / "live/token.object").read_bytes() == b"live token with newer objects"


def test_no_token_and_no_seed_fails_naming_the_ceremony(
    seed_command: list[str], tmp_path: pathlib.Path
) -> None:
    tokens = tmp_path / "tokens"
    tokens.mkdir()
    proc = _run(seed_command, tokens, tmp_path / "absent.tar")
    assert proc.returncode != 0
    assert "no SoftHSM token in" in proc.stderr
    assert "key ceremony" in proc.stderr


def test_a_tar_escaping_the_token_directory_is_refused(
    seed_command: list[str], tmp_path: pathlib.Path
) -> None:
    tokens, seed = tmp_path / "tokens", tmp_path / "token.tar"
    tokens.mkdir()
    _token_tar(seed, {"../escaped": b"x"})
    proc = _run(seed_command, tokens, seed)
    assert proc.returncode != 0
    assert not (tmp_path / "escaped").exists()
