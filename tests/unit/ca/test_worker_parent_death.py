"""A CA worker that has seen its supervisor go no longer waits for the PDEATHSIG SIGTERM.

`padlock.services.ca_http.worker` asks for SIGTERM when the supervisor dies and also watches
its control socket for end-of-file. When the end-of-file came first, the SIGTERM could land
after `server.serve` had restored SIGTERM's default action and kill worker 0 before it removed
the supervisor's runtime directory (tests/integration/ca/test_workers.py, supervisor SIGKILL:
2 failures in 5 loaded runs, 1 in 8 in a loop). Linux-only (prctl), in a child process so the
pytest process keeps its own parent-death signal.
"""

from __future__ import annotations

import subprocess
import sys

_CHILD = """
import asyncio, ctypes, signal, socket
from padlock.services.ca_http import worker

libc = ctypes.CDLL(None, use_errno=True)

def pdeathsig():
    value = ctypes.c_int(-1)
    libc.prctl(2, ctypes.byref(value), 0, 0, 0)  # PR_GET_PDEATHSIG
    return value.value

async def main():
    ours, theirs = socket.socketpair()
    reader, _writer = await asyncio.open_unix_connection(sock=ours)
    stop = asyncio.Event()
    theirs.close()  # the supervisor is gone: end-of-file
    await worker._watch_supervisor(reader, stop)
    return stop.is_set()

worker._set_parent_death_signal(signal.SIGTERM)
before = pdeathsig()
stopped = asyncio.run(main())
print(before, pdeathsig(), stopped)
"""


def test_a_worker_clears_its_parent_death_signal_once_the_supervisor_is_gone() -> None:
    result = subprocess.run(
        [sys.executable, "-c", _CHILD], capture_output=True, text=True, check=False, timeout=60
    )
    assert result.returncode == 0, result.stderr
    before, after, stopped = result.stdout.split()
    assert before == "15", "PR_SET_PDEATHSIG(SIGTERM) did not take"
    assert after == "0", "a SIGTERM may still come after the supervisor's end-of-file"
    assert stopped == "True"
