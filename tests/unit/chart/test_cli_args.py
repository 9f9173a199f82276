"""Every container command line the chart renders is accepted by the real `padlock` parser."""

from __future__ import annotations

from typing import Any

import pytest

from padlock import cli
from tests.unit.chart import render


def _containers(objects: list[dict[str, Any]]) -> dict[str, list[str]]:
    out = {}
    for o in render.find(objects, "Deployment"):
        pod = o["spec"]["template"]["spec"]
        for c in [*pod.get("initContainers", []), *pod["containers"]]:
            if "args" in c:
                out[c["name"]] = c["args"]
    return out


def _parse(args: list[str]) -> Any:
    try:
        return cli.build_parser().parse_args(args)
    except SystemExit as exc:  # argparse reports to stderr and exits 2
        pytest.fail(f"padlock rejects the chart's args {args}: exit {exc.code}")


@pytest.mark.parametrize("verbose", [False, True])
def test_operator_args_parse(verbose: bool) -> None:
    objects = render.template(sets=[f"operator.verbose={str(verbose).lower()}"])
    ns = _parse(_containers(objects)["operator"])
    assert str(ns.ca_socket) == "/run/padlock/ca.sock"
    assert ns.metrics_port == 9402
    assert ns.verbose is verbose


def test_ca_serve_args_parse(default_objects: list[dict[str, Any]]) -> None:
    ns = _parse(_containers(default_objects)["ca"])
    assert str(ns.config) == "/etc/padlock/config/ca.yaml"


def test_ocsp_serve_args_parse(default_objects: list[dict[str, Any]]) -> None:
    ns = _parse(_containers(default_objects)["ocsp"])
    assert str(ns.config) == "/etc/padlock/config/ca.yaml"
    assert (ns.host, ns.port, ns.workers, ns.sign) == ("0.0.0.0", 8080, 1, False)


def test_signing_responder_args_parse(production_objects: list[dict[str, Any]]) -> None:
    ns = _parse(_containers(production_objects)["ocsp"])
    assert (ns.workers, ns.sign) == (2, True)
