"""padlock.ca.lintpool: the CA's pkilint worker processes, fed in batches over a socket each.

Real worker processes (forkserver), real pkilint where the findings matter; the cheap jobs of
tests/unit/ca/lintpool_jobs.py where the pool's own behaviour is under test (crash, close,
parent death), so those pools start in milliseconds.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import functools
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from padlock.ca import lintgate, lintpool
from padlock.pki import lint as pki_lint
from padlock.pki import profiles, serials
from tests.unit.ca import lintpool_jobs as jobs

NOW = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
CA_KEY = ec.generate_private_key(ec.SECP256R1())


def _alive(pid: int) -> bool:
    """`pid` runs (a zombie, exited but not reaped by a parent that is itself gone, does not)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rsplit(")", 1)[-1].split()[0] != "Z"


async def _until(condition: Callable[[], bool], what: str, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.01)


def _leaf(profile: profiles.Profile) -> x509.Certificate:
    ca = profiles.build_certificate(
        profiles.ROOT_CA,
        subject=x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lint pool test CA")]),
        public_key=CA_KEY.public_key(),
        sans=(),
        issuer=None,
        issuer_key=CA_KEY,
        serial=serials.new_serial(),
        not_before=NOW,
        not_after=NOW + datetime.timedelta(days=30),
    )
    return profiles.build_certificate(
        profile,
        subject=x509.Name([]),
        public_key=ec.generate_private_key(ec.SECP256R1()).public_key(),
        sans=(x509.DNSName("app.example.test"),),
        issuer=ca,
        issuer_key=CA_KEY,
        serial=serials.new_serial(),
        not_before=NOW,
        not_after=NOW + datetime.timedelta(days=1),
    )


async def test_pool_findings_equal_in_thread_findings_for_good_and_defective_certs() -> None:
    """Through the gate with one worker, concurrently (so they share batches), each
    certificate gets exactly the findings in-thread linting gives it, in its own slot."""
    good = _leaf(profiles.TLS_SERVER)
    bad = _leaf(dataclasses.replace(profiles.TLS_SERVER, key_usages=frozenset()))
    in_thread = lintgate.LintGate(enabled=True, cabf_serverauth=True, processes=0)
    pooled = lintgate.LintGate(enabled=True, cabf_serverauth=True, processes=1)
    try:
        cases = [(good, profiles.TLS_SERVER), (bad, profiles.TLS_SERVER)] * 3
        cases.append((good, profiles.TLS_CLIENT))  # CABF off for this one (not tls-server)
        expected = [await in_thread.pkilint(c, p) for c, p in cases]
        got = await asyncio.gather(*(pooled.pkilint(c, p) for c, p in cases))
        assert in_thread.pool is None
        assert pooled.pool is not None
        batches = pooled.pool.batch_sizes
        # Each worker warmed up the CABF tree too, since the gate applies it.
        warm_up = pooled.pool.warm_up
        assert isinstance(warm_up, functools.partial)
        assert (warm_up.func, warm_up.keywords) == (pki_lint.warm_up, {"cabf_serverauth": True})
    finally:
        pooled.close()
        in_thread.close()
    assert got == expected
    assert lintgate.blocking(expected[0]) != []  # CABF: no AIA (see test_lintgate)
    assert "pkix.no_ku_bits_set" in {f.code for f in lintgate.blocking(expected[1])}
    assert lintgate.blocking(expected[-1]) == []
    assert expected[0] != expected[1]
    assert max(batches) > 1, batches


async def test_certificates_queued_together_go_out_in_batches_of_at_most_max_batch() -> None:
    pool = lintpool.LintPool(jobs.echo, 1, warm_up=jobs.nothing, max_batch=16)
    try:
        ders = [f"cert-{n}".encode() for n in range(20)]
        got = await asyncio.gather(*(pool.lint(der, n % 2 == 0) for n, der in enumerate(ders)))
    finally:
        pool.close()
    assert [(der, flag) for der, flag, _pid in got] == [
        (der, n % 2 == 0) for n, der in enumerate(ders)
    ]
    assert pool.batch_sizes == {16: 1, 4: 1}


async def test_one_certificate_alone_is_sent_at_once_as_a_batch_of_one() -> None:
    pool = lintpool.LintPool(jobs.echo, 2, warm_up=jobs.nothing)
    try:
        for n in range(3):
            await pool.lint(b"cert-%d" % n, False)
    finally:
        pool.close()
    assert pool.batch_sizes == {1: 3}


async def test_warm_up_runs_in_every_worker_before_its_first_job() -> None:
    pool = lintpool.LintPool(jobs.warmed, 2, warm_up=jobs.warm_up)
    try:
        pids = set(pool.pids())
        seen = await asyncio.gather(*(pool.lint(b"x", False) for _ in range(8)))
    finally:
        pool.close()
    assert len(pids) == 2
    for warmed in seen:
        assert len(warmed) == 1 and warmed[0] in pids
    assert jobs.WARMED == []  # it ran in the workers, not here


def test_a_worker_that_cannot_warm_up_fails_the_constructor_with_a_clear_error() -> None:
    with pytest.raises(lintpool.LintUnavailable, match="exited during its warm-up"):
        lintpool.LintPool(jobs.echo, 1, warm_up=jobs.fail_warm_up)


async def test_worker_killed_mid_batch_fails_its_certificates_and_is_replaced() -> None:
    pool = lintpool.LintPool(jobs.echo, 1, warm_up=jobs.nothing)
    try:
        (first,) = pool.pids()
        held = [asyncio.ensure_future(pool.lint(b"hang", False)) for _ in range(3)]
        await _until(lambda: pool.busy() == {first: 3}, "the batch to be sent")
        os.kill(first, signal.SIGKILL)
        outcomes = await asyncio.gather(*held, return_exceptions=True)
        for outcome in outcomes:
            assert isinstance(outcome, lintpool.LintUnavailable), outcome
            assert f"pkilint worker pid {first} exited while linting" in str(outcome)
            assert "not released" in str(outcome)
        der, _flag, pid = await asyncio.wait_for(pool.lint(b"after", True), 60)
    finally:
        pool.close()
    assert (der, pid != first, pool.replaced) == (b"after", True, 1)


async def test_a_worker_killed_while_idle_is_replaced_and_nobody_gets_an_error() -> None:
    pool = lintpool.LintPool(jobs.echo, 1, warm_up=jobs.nothing)
    try:
        await pool.lint(b"bind", False)  # the pool now watches the worker's socket
        (first,) = pool.pids()
        os.kill(first, signal.SIGKILL)
        await _until(lambda: pool.replaced == 1 and len(pool.pids()) == 1, "a replacement")
        _der, _flag, pid = await pool.lint(b"after", False)
    finally:
        pool.close()
    assert pid not in (first, None)


async def test_replacement_stuck_in_warm_up_is_killed_and_the_waiting_cert_fails() -> None:
    pool = lintpool.LintPool(jobs.echo, 1, warm_up=jobs.nothing, start_timeout=0.5)
    try:
        await pool.lint(b"bind", False)
        pool.warm_up = jobs.hang_warm_up  # what the next worker will run
        os.kill(pool.pids()[0], signal.SIGKILL)
        await _until(lambda: pool.replaced == 1, "a replacement")
        with pytest.raises(lintpool.LintUnavailable, match="failed to warm up"):
            await asyncio.wait_for(pool.lint(b"waiting", False), 30)
        pool.warm_up = jobs.nothing
        der, _flag, _pid = await asyncio.wait_for(pool.lint(b"later", False), 30)
    finally:
        pool.close()
    assert (der, pool.replaced) == (b"later", 2)


async def test_an_exception_in_the_job_fails_that_certificate_alone() -> None:
    pool = lintpool.LintPool(jobs.echo, 1, warm_up=jobs.nothing)
    try:
        (pid,) = pool.pids()
        outcomes = await asyncio.gather(
            *(pool.lint(der, False) for der in (b"a", b"raise", b"b")), return_exceptions=True
        )
        assert pool.pids() == [pid]  # the worker survived
    finally:
        pool.close()
    assert outcomes[0] == (b"a", False, pid)
    assert outcomes[2] == (b"b", False, pid)
    assert isinstance(outcomes[1], lintpool.LintFailed)
    assert "ValueError: cannot parse this certificate" in str(outcomes[1])
    assert pool.batch_sizes == {3: 1}


async def test_close_from_a_thread_finishes_the_batch_in_flight_and_leaves_no_process() -> None:
    pool = lintpool.LintPool(jobs.echo, 2, warm_up=jobs.nothing)
    pids = pool.pids()
    slow = asyncio.ensure_future(pool.lint(b"slow", False))
    await _until(lambda: bool(pool.busy()), "the batch to be sent")
    await asyncio.get_running_loop().run_in_executor(None, pool.close)
    assert (await slow)[0] == b"slow"
    assert len(pids) == 2
    assert [pid for pid in pids if _alive(pid)] == []
    with pytest.raises(lintpool.LintUnavailable, match="closed"):
        await pool.lint(b"late", False)
    pool.close()  # twice is fine


def test_close_without_an_event_loop_leaves_no_process() -> None:
    """The CA's app builds the gate in a thread and may close it before any request."""
    gate = lintgate.LintGate(enabled=True, cabf_serverauth=False, processes=0)
    gate.close()
    pool = lintpool.LintPool(jobs.echo, 2, warm_up=jobs.nothing)
    pids = pool.pids()
    pool.close()
    assert len(pids) == 2
    assert [pid for pid in pids if _alive(pid)] == []


_OWNER = """
import json, sys, time
from padlock.ca import lintpool
from tests.unit.ca import lintpool_jobs as jobs

if __name__ == "__main__":
    pool = lintpool.LintPool(jobs.echo, 2, warm_up=jobs.nothing)
    print(json.dumps(pool.pids()), flush=True)
    time.sleep(120)
"""


def test_workers_exit_when_the_ca_process_is_killed() -> None:
    """kill -9 of the process that owns the pool: its workers see end-of-file and exit."""
    repo = Path(__file__).resolve().parents[3]
    with subprocess.Popen(
        [sys.executable, "-c", _OWNER],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": f"{repo}{os.pathsep}{repo / 'operator'}"},
        stdout=subprocess.PIPE,
        text=True,
    ) as owner:
        try:
            assert owner.stdout is not None
            pids = json.loads(owner.stdout.readline())
            assert len(pids) == 2 and all(_alive(pid) for pid in pids)
            owner.kill()
            owner.wait()
            deadline = time.monotonic() + 10
            while any(_alive(pid) for pid in pids):  # an OS process exiting: nothing to await
                assert time.monotonic() < deadline, f"workers left running: {pids}"
                time.sleep(0.05)
        finally:
            owner.kill()
