"""Concurrent writers and a killed writer: the audit chain stays linear, commits stay put."""

from __future__ import annotations

import os
import pathlib
import signal
import subprocess
import sys
import threading

import pytest

from padlock.ledger import Ledger, records, verify_chain
from tests.integration.ledger import certs

REPO = pathlib.Path(__file__).resolve().parents[3]
WRITERS = 4
ROUNDS = 15


def test_concurrent_writers_keep_the_audit_chain_linear(
    ledger_url: str, software_ca: certs.SoftwareCA
) -> None:
    with Ledger(ledger_url) as setup:
        ca_id = setup.register_ca(software_ca.certificate, ca_type=records.CAType.INTERMEDIATE)
    leaves = [[software_ca.issue() for _ in range(ROUNDS)] for _ in range(WRITERS)]
    start = threading.Barrier(WRITERS)
    failures: list[BaseException] = []

    def writer(number: int) -> None:
        # Each writer has its own engine and pool, as the CA and a CLI in two processes would.
        try:
            with Ledger(ledger_url) as ledger:
                start.wait()
                for leaf in leaves[number]:
                    ledger.record_issuance(
                        ca_id, leaf, cert_type=records.CertType.TLS_CLIENT, requester=f"w{number}"
                    )
                    ledger.append_audit("note", f"w{number}", {"serial": f"{leaf.serial_number:x}"})
        except BaseException as error:  # reported below with the writer's traceback
            failures.append(error)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(WRITERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not failures, failures
    expected_rows = 1 + 2 * WRITERS * ROUNDS
    assert verify_chain(ledger_url) == records.VerifyResult(ok=True, rows_checked=expected_rows)
    with Ledger(ledger_url) as ledger:
        assert ledger.count("certificate") == WRITERS * ROUNDS


@pytest.mark.slow
def test_a_writer_killed_with_sigkill_loses_no_certificate_it_reported(ledger_url: str) -> None:
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.integration.ledger.issue_until_killed", ledger_url],
        cwd=REPO,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout is not None
        first = child.stdout.readline()
        assert first.startswith("ca "), f"child failed to start: {first!r} {child.stderr.read()}"
        ca_id = int(first.split()[1])
        reported: list[int] = []
        while len(reported) < 40:
            line = child.stdout.readline()
            assert line, f"child died early: {child.stderr.read()}"  # type: ignore[union-attr]
            reported.append(int(line, 16))
        child.send_signal(signal.SIGKILL)  # mid-loop, likely mid-transaction
        child.wait(timeout=30)
        reported += [int(line, 16) for line in child.stdout.read().split()]
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert child.returncode == -signal.SIGKILL
    with Ledger(ledger_url) as ledger:
        missing = [s for s in reported if ledger.get_certificate(ca_id, s) is None]
        assert missing == [], f"{len(missing)} reported serials lost after kill -9"
        assert ledger.count("certificate") in (len(reported), len(reported) + 1)
    assert verify_chain(ledger_url).ok


def test_processes_opening_an_empty_ledger_at_once_migrate_it_exactly_once(
    ledger_url: str,
) -> None:
    opener = "import sys; from padlock.ledger import Ledger; Ledger(sys.argv[1]).close()"
    children = [
        subprocess.Popen(
            [sys.executable, "-c", opener, ledger_url],
            cwd=REPO,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(3)
    ]
    errors = [child.communicate(timeout=120)[1] for child in children]
    assert [child.returncode for child in children] == [0, 0, 0], errors
    assert verify_chain(ledger_url).ok
