"""The config the supervisor writes for its workers loads back as the very same CAConfig, and
never holds a PostgreSQL password that came from `ledger.url_file`."""

from __future__ import annotations

import stat
from pathlib import Path

from padlock.ca import config as ca_config
from padlock.services.ca_http import supervisor


def _load(path: Path, text: str) -> ca_config.CAConfig:
    path.write_text(text)
    return ca_config.load(path)


def test_a_tcp_only_config_round_trips_exactly(tmp_path: Path) -> None:
    original = _load(
        tmp_path / "ca.yaml",
        "workers: 2\n"
        "listen: {socket: null, tcp_host: 127.0.0.1, tcp_port: 8443, metrics_port: 9403}\n"
        "policy: {allowed_dns_suffixes: [example.test], allowed_ip_networks: [10.0.0.0/8]}\n"
        "lint: {processes: 3}\n",
    )
    written = tmp_path / "runtime" / "ca.yaml"
    written.parent.mkdir()
    supervisor.write_worker_config(original, written)
    assert ca_config.load(written) == original
    assert original.listen.socket is None  # not the default ca.sock next to the copy
    assert stat.S_IMODE(written.stat().st_mode) == 0o600


def test_a_ledger_url_from_a_file_stays_in_that_file(tmp_path: Path) -> None:
    secret = "postgresql://padlock:s3cret@db.example:5432/padlock"
    (tmp_path / "url").write_text(secret + "\n")
    original = _load(tmp_path / "ca.yaml", "ledger: {url_file: url}\n")
    assert original.ledger.url == secret
    written = tmp_path / "worker.yaml"
    supervisor.write_worker_config(original, written)
    assert "s3cret" not in written.read_text()
    assert ca_config.load(written).ledger.url == secret
