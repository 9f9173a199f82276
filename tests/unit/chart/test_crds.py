"""The chart ships crds/ from its one source (a symlink), in `helm template` and `helm package`."""

from __future__ import annotations

import pathlib
import tarfile

import yaml

from tests.unit.chart import render


def _repo_crds() -> dict[str, str]:
    files = sorted((render.REPO / "crds").glob("padlock.dev_*.yaml"))
    assert files, "crds/ is empty"
    return {f.name: f.read_text() for f in files}


def test_chart_crds_directory_is_the_repository_crds_directory() -> None:
    link = render.CHART / "crds"
    assert link.is_symlink()
    assert link.resolve() == (render.REPO / "crds").resolve()


def test_helm_template_includes_every_crd() -> None:
    objects = render.template(include_crds=True)
    rendered = {o["metadata"]["name"] for o in objects if o["kind"] == "CustomResourceDefinition"}
    expected = {yaml.safe_load(t)["metadata"]["name"] for t in _repo_crds().values()}
    assert rendered == expected


def test_packaged_chart_holds_the_crd_files_not_a_link(tmp_path: pathlib.Path) -> None:
    render.helm("package", str(render.CHART), "--destination", str(tmp_path))
    (archive,) = tmp_path.glob("padlock-*.tgz")
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers() if m.name.startswith("padlock/crds/")}
        for name, text in _repo_crds().items():
            member = members[f"padlock/crds/{name}"]
            assert member.isfile()
            extracted = tar.extractfile(member)
            assert extracted is not None
            assert extracted.read().decode() == text
        assert "padlock/ci/postgres-external-hsm-values.yaml" not in tar.getnames()
        assert "padlock/values.schema.json" in tar.getnames()
