"""`padlock ca serve` start-up: a broken chain file is one log line and exit status 2."""

from __future__ import annotations

import dataclasses
import logging
from pathlib import Path

import pytest

from padlock.services import ca_http
from tests.fixtures.ca import MakeCA

pytestmark = pytest.mark.softhsm


async def test_missing_chain_file_fails_start_up_with_status_2_and_the_file_name(
    make_ca: MakeCA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    setup = make_ca()
    config = dataclasses.replace(setup.config, chain_file=tmp_path / "no-such-chain.pem")
    with caplog.at_level(logging.ERROR):
        status = await ca_http.serve(config)
    assert status == 2
    assert "no-such-chain.pem" in caplog.text
    assert config.listen.socket is not None
    assert not config.listen.socket.exists()
