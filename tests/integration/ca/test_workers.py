"""`padlock ca serve` with `workers: 2`: a supervisor and two worker processes on one socket.

Real SoftHSM (a private token per CA), real ledgers (SQLite; PostgreSQL for the idempotency
race), the real CLI as a subprocess. Which worker answered is read from the
`X-Padlock-Worker: index/pid` header every answer carries in this mode.

No test relies on the kernel spreading a burst of fresh connections over both workers (one
worker's accept loop may take them all, more so on a loaded machine): a test that needs both
workers first waits for the supervisor's "CA serving with 2 workers", then sends its requests
through keep-alive connections pinned to each worker (`pinned.pinned`). Waits poll with
generous deadlines (`DEADLINE`): start-up, replacement and shutdown are slow when the machine
is busy, and a deadline only bounds a test that is failing anyway.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import pytest
from cryptography import x509
from prometheus_client import mmap_dict

from padlock import metrics
from padlock.ca import authority
from padlock.ledger import ledger as ledger_mod
from padlock.services.ca_http import supervisor
from padlock.services.ca_http.app import WORKER_HEADER
from tests.integration.ca import helpers, pinned, procs

pytestmark = [pytest.mark.softhsm, pytest.mark.slow]


Answer = pinned.Answer
DEADLINE = 120.0
"""Seconds any wait in this file polls before it fails."""
SERVING = "CA serving with 2 workers"
"""The supervisor's log line once every worker has said `ready` (accepts connections)."""


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _make(directory: Path, ledger_url: str | None = None, **config: object) -> procs.IsolatedCA:
    listen = {"socket": str(directory / "ca.sock"), "metrics_port": _free_port()}
    return procs.make_isolated_ca(directory, ledger_url, workers=2, listen=listen, **config)


async def _wait_for_log(ca: procs.IsolatedCA, text: str, proc: subprocess.Popen[bytes]) -> str:
    """The CA log once it contains `text` (polled up to DEADLINE s); the whole log."""
    deadline = time.monotonic() + DEADLINE
    while text not in (log := ca.log.read_text()):
        assert proc.poll() is None, f"CA exited with {proc.returncode}: {log[-3000:]}"
        assert time.monotonic() < deadline, f"no {text!r} in {DEADLINE:.0f} s: {log[-3000:]}"
        await asyncio.sleep(0.1)
    return log


async def _start(ca: procs.IsolatedCA) -> procs.CAProcess:
    """`padlock ca serve` running with both workers accepting (not merely the first one
    healthy: the socket exists before any worker starts)."""
    server = procs.CAProcess(ca)
    try:
        await server.wait_healthy(DEADLINE)
        await _wait_for_log(ca, SERVING, server.proc)
    except BaseException:
        server.terminate()
        raise
    return server


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie (exited, not yet reaped by a parent that is itself gone) counts as gone.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.split(")")[-1].split()[0] != "Z"


async def _all_gone(pids: list[int], what: str) -> None:
    """Poll until none of `pids` runs (up to DEADLINE s)."""
    deadline = time.monotonic() + DEADLINE
    while left := [pid for pid in pids if _alive(pid)]:
        assert time.monotonic() < deadline, f"{what}: still running after {DEADLINE:.0f} s: {left}"
        await asyncio.sleep(0.1)


def _workers_of(supervisor_pid: int) -> list[int]:
    """Live processes started as workers of `supervisor_pid` (by their command line)."""
    marker = f"--parent-pid\0{supervisor_pid}\0"
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_text()
        except OSError:
            continue
        if "padlock.services.ca_http.worker" in text and marker in text:
            found.append(int(cmdline.parent.name))
    return [pid for pid in found if _alive(pid)]


def _ledger_verify(ca: procs.IsolatedCA) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [procs.PADLOCK, "ledger", "verify", "--config", str(ca.config_path)],
        env=ca.env,
        capture_output=True,
        text=True,
        check=False,
    )


def _descendants(pid: int) -> list[int]:
    out = subprocess.run(
        ["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True, check=False
    ).stdout
    children = [int(p) for p in out.split()]
    return children + [d for c in children for d in _descendants(c)]


async def _post(socket_path: Path, path: str, body: dict[str, object]) -> Answer:
    """POST on a fresh connection (either worker may take it)."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=str(socket_path))) as session,
        session.post(f"http://ca{path}", json=body) as resp,
    ):
        return resp.status, resp.headers[WORKER_HEADER], await resp.json()


def _sign_body(key: str, requester: str = "burst") -> dict[str, object]:
    csr = helpers.make_csr((f"{key.replace('/', '-')}.workers.test",))
    return helpers.sign_body(csr, key, requester=requester)


async def _sign_on_both(
    by_worker: dict[int, list[pinned.Pinned]], keys: list[str], requester: str = "burst"
) -> list[Answer]:
    """Sign one certificate per key, all at once, the keys dealt in turn to the connections
    pinned to each worker: both workers sign concurrently."""
    pins = pinned.spread(by_worker)
    return await asyncio.gather(
        *(
            pins[n % len(pins)].post("/v1/sign", _sign_body(key, requester))
            for n, key in enumerate(keys)
        )
    )


def _indexes(answers: list[Answer]) -> set[str]:
    return {worker.split("/")[0] for _s, worker, _b in answers}


def _metric(text: str, name: str) -> float:
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name)]
    assert len(values) == 1, f"{name}: {values}"
    return values[0]


def _ca_id(ca: procs.IsolatedCA, ledger: ledger_mod.Ledger) -> int:
    inter = x509.load_pem_x509_certificates(ca.config.chain_file.read_bytes())[0]
    ca_id = ledger.find_ca(inter)
    assert ca_id is not None
    return ca_id


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[procs.IsolatedCA]:
    """One 2-worker CA on SQLite, shared by the tests that leave it running."""
    ca = _make(tmp_path_factory.mktemp("workers"))
    server = asyncio.run(_start(ca))
    try:
        yield ca
    finally:
        assert server.terminate() == 0


async def test_both_workers_sign_concurrently_and_the_audit_chain_verifies(
    two_workers: procs.IsolatedCA,
) -> None:
    """60 signing requests at once over 3 connections to each worker."""
    async with pinned.pinned(two_workers.socket, per_worker=3) as by_worker:
        answers = await _sign_on_both(by_worker, [f"burst/{n}" for n in range(60)])
    assert [status for status, _w, _b in answers] == [200] * 60
    assert _indexes(answers) == {"0", "1"}
    serials = [body["serial"] for _s, _w, body in answers]
    assert len(set(serials)) == 60
    verify = _ledger_verify(two_workers)
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_metrics_are_totals_over_both_workers_on_socket_and_scrape_port(
    two_workers: procs.IsolatedCA,
) -> None:
    async with pinned.pinned(two_workers.socket, per_worker=1) as by_worker:
        answers = await _sign_on_both(by_worker, [f"m/{n}" for n in range(20)])
        assert _indexes(answers) == {"0", "1"}
        with ledger_mod.Ledger(two_workers.config.ledger.url, migrate=False) as ledger:
            committed = ledger.count("certificate")
        texts = [
            (await pin.get("/metrics"))[2] for pin in pinned.spread(by_worker) for _ in range(3)
        ]
    port = two_workers.config.listen.metrics_port
    async with aiohttp.ClientSession() as session:
        for _ in range(6):  # scrape answers carry no worker header: either worker may answer
            async with session.get(f"http://127.0.0.1:{port}/metrics") as resp:
                texts.append(await resp.text())
    for text in texts:  # whichever worker answered, it reports both workers' totals
        issued = _metric(text, 'padlock_ca_certificates_issued_total{profile="tls-server"}')
        assert issued == committed
        assert _metric(text, "padlock_ca_hsm_up") == 1.0


def _worker_without_hsm(worker_pid: int) -> Path:
    """Write a made-up process's `padlock_ca_hsm_up 0` into the workers' metrics directory."""
    environ = Path(f"/proc/{worker_pid}/environ").read_bytes().split(b"\0")
    prefix = f"{metrics.MULTIPROCESS_ENV}=".encode()
    directory = Path(next(e for e in environ if e.startswith(prefix))[len(prefix) :].decode())
    fake = directory / "gauge_livemin_999999999.db"
    down = mmap_dict.MmapedDict(str(fake))  # type: ignore[no-untyped-call]
    name = metrics.CA_HSM_UP_NAME
    key = mmap_dict.mmap_key(name, name, [], [], "made up")
    down.write_value(key, 0.0, 0.0)  # type: ignore[no-untyped-call]
    down.close()  # type: ignore[no-untyped-call]
    return fake


async def test_healthz_is_503_from_every_worker_while_any_worker_lacks_its_hsm_session(
    two_workers: procs.IsolatedCA,
) -> None:
    """A third worker's `padlock_ca_hsm_up` of 0, written the way prometheus-client writes it
    (a per-process file in the shared directory), turns every worker's /healthz to 503."""
    async with pinned.pinned(two_workers.socket, per_worker=1) as by_worker:
        pins = pinned.spread(by_worker)
        fake = _worker_without_hsm(by_worker[0][0].pid)
        try:
            answers = [await pin.get("/healthz") for pin in pins for _ in range(3)]
            assert [status for status, _w, _t in answers] == [503] * len(answers), answers
        finally:
            fake.unlink()
        answers = [await pin.get("/healthz") for pin in pins for _ in range(3)]
        assert [status for status, _w, _t in answers] == [200] * len(answers), answers


async def test_one_certificate_per_idempotency_key_when_workers_race_on_sqlite(
    two_workers: procs.IsolatedCA,
) -> None:
    await _race(two_workers)


async def test_one_certificate_per_idempotency_key_when_workers_race_on_postgresql(
    tmp_path: Path, postgres_database_url: str
) -> None:
    ca = _make(tmp_path, postgres_database_url)
    server = await _start(ca)
    try:
        await _race(ca)
    finally:
        assert server.terminate() == 0


async def _race(ca: procs.IsolatedCA) -> None:
    """Eight requests with one key and one CSR at once, four on connections to each worker,
    five times; then `padlock ledger verify` on the audit chain both workers appended to."""
    async with pinned.pinned(ca.socket, per_worker=4) as by_worker:
        pins = pinned.spread(by_worker)
        for attempt in range(5):
            key = f"race/{attempt}"
            body = helpers.sign_body(helpers.make_csr(("race.workers.test",)), key)
            answers = await asyncio.gather(*(pin.post("/v1/sign", body) for pin in pins))
            assert [status for status, _w, _b in answers] == [200] * 8
            assert _indexes(answers) == {"0", "1"}
            assert len({b["serial"] for _s, _w, b in answers}) == 1, "two certificates for a key"
            assert len({b["certificate"] for _s, _w, b in answers}) == 1
            with ledger_mod.Ledger(ca.config.ledger.url, migrate=False) as ledger:
                record = ledger.find_by_idempotency_key(_ca_id(ca, ledger), key)
                assert record is not None
                assert record.serial == int(answers[0][2]["serial"], 16)
    verify = _ledger_verify(ca)  # the losers' refusals and the winners' rows chain cleanly
    assert verify.returncode == 0, verify.stdout + verify.stderr


async def test_revocations_on_both_workers_all_reach_the_current_crl(
    two_workers: procs.IsolatedCA,
) -> None:
    """Concurrent revocations in different workers: the highest-numbered CRL of every shard
    lists every revocation answered before it (the cross-worker CRL lock)."""
    async with pinned.pinned(two_workers.socket, per_worker=4) as by_worker:
        pins = pinned.spread(by_worker)
        issued = await _sign_on_both(by_worker, [f"rev/{n}" for n in range(40)])
        serials = [body["serial"] for _s, _w, body in issued]
        revoked = await asyncio.gather(
            *(
                pins[n % len(pins)].post(
                    "/v1/revoke", {"serial": s, "reason": "keyCompromise", "requester": "drill"}
                )
                for n, s in enumerate(serials)
            )
        )
    assert [status for status, _w, _b in revoked] == [200] * 40
    assert _indexes(revoked) == {"0", "1"}
    with ledger_mod.Ledger(two_workers.config.ledger.url, migrate=False) as ledger:
        ca_id = _ca_id(two_workers, ledger)
        for serial_hex in serials:
            serial = int(serial_hex, 16)
            stored = ledger.get_crl(ca_id, authority.crl_shard(serial))
            assert stored is not None
            crl = x509.load_der_x509_crl(stored.crl_der)
            assert crl.get_revoked_certificate_by_serial_number(serial) is not None, (
                f"{serial_hex} is missing from CRL number {stored.crl_number}"
            )


async def test_the_rate_limit_is_a_total_over_workers(tmp_path: Path) -> None:
    """Burst 4, next token in 1000 s: 12 requests at once, 6 through each worker, get 4
    certificates in all (each worker on its own would grant 4)."""
    ca = _make(tmp_path, rate_limit={"requests_per_second": 0.001, "burst": 4})
    server = await _start(ca)
    try:
        async with pinned.pinned(ca.socket, per_worker=2) as by_worker:
            keys = [f"rl/{n}" for n in range(12)]
            answers = await _sign_on_both(by_worker, keys, requester="flood")
        assert _indexes(answers) == {"0", "1"}
        statuses = [status for status, _w, _b in answers]
        assert statuses.count(200) == 4, f"not 4 granted in all: {statuses}"
        assert statuses.count(429) == len(answers) - 4
        # Another requester has its own bucket.
        assert (await _post(ca.socket, "/v1/sign", _sign_body("rl/other", "calm")))[0] == 200
    finally:
        assert server.terminate() == 0


async def _pids(ca: procs.IsolatedCA) -> dict[int, int]:
    """{index: pid} of the workers, each read from a connection it accepted."""
    async with pinned.pinned(ca.socket, per_worker=1) as by_worker:
        return {index: pins[0].pid for index, pins in by_worker.items()}


async def test_a_killed_worker_is_replaced_and_sigterm_then_stops_everything(
    tmp_path: Path,
) -> None:
    ca = _make(tmp_path)
    server = await _start(ca)
    try:
        before = await _pids(ca)
        os.kill(before[1], signal.SIGKILL)
        await _wait_for_log(ca, "CA worker 1 replaced (pid", server.proc)
        after = await _pids(ca)  # both workers accept again
        assert after[0] == before[0]
        assert after[1] != before[1]
        log = await _wait_for_log(ca, f"CA worker 1 replaced (pid {after[1]})", server.proc)
        assert f"CA worker 1 (pid {before[1]}) exited with status -9" in log
        # The publication timer (CRLs of every shard at start-up) runs in worker 0 only.
        log = await _wait_for_log(
            ca, "worker-0 padlock.ca.crl_publisher: published CRL shard", server.proc
        )
        assert "worker-1 padlock.ca.crl_publisher" not in log
        assert (await _post(ca.socket, "/v1/sign", _sign_body("after-restart")))[0] == 200
        tree = _descendants(server.proc.pid)
        assert {before[0], after[1]} <= set(tree)
    finally:
        status = server.terminate()
    assert status == 0
    # terminate() returned once the workers had exited; their own children (pkilint's
    # forkserver and pool) notice a moment later.
    await _all_gone(tree, "after SIGTERM")
    assert not ca.socket.exists()


def _stale_runtime(tmpdir: Path) -> Path:
    """A runtime directory as a SIGKILLed supervisor leaves it: its lock file unlocked."""
    stale = tmpdir / f"{supervisor.RUNTIME_PREFIX}killed"
    (stale / "metrics").mkdir(parents=True)
    (stale / supervisor.LOCK_FILE).touch()
    return stale


async def test_workers_stop_when_the_supervisor_is_killed_and_nothing_is_left_in_tmp(
    tmp_path: Path,
) -> None:
    ca = _make(tmp_path)
    tmpdir = tmp_path / "tmp"  # the CA's TMPDIR, where the supervisor keeps its runtime
    stale = _stale_runtime(tmpdir)
    ca.env["TMPDIR"] = str(tmpdir)
    server = await _start(ca)  # both workers ready: worker 0 owns the clean-up from then on
    try:
        assert not stale.exists(), "the runtime of a killed supervisor was not removed"
        runtimes = list(tmpdir.glob(f"{supervisor.RUNTIME_PREFIX}*"))
        assert len(runtimes) == 1, runtimes
        tree = _descendants(server.proc.pid)
        server.kill9()
        await _all_gone(tree, "after the supervisor's SIGKILL")
        assert not runtimes[0].exists(), (
            f"worker 0 left the killed supervisor's runtime behind: {ca.log.read_text()[-3000:]}"
        )
    finally:
        server.terminate()


def test_a_worker_that_cannot_start_fails_the_supervisor_with_status_2(tmp_path: Path) -> None:
    ca = _make(tmp_path, chain_file=str(tmp_path / "no-such-chain.pem"))
    server = procs.CAProcess(ca)
    status = server.proc.wait(timeout=DEADLINE)
    assert status == 2
    log = ca.log.read_text()
    assert "no-such-chain.pem" in log
    assert "padlock ca serve cannot start: worker" in log
    assert not ca.socket.exists()
    assert _workers_of(server.proc.pid) == []
