"""`make bench`: run every bench/bench_*.py and rewrite bench/RESULTS.md.

Each script prints one Markdown section (a heading, the command, a table of figures) on
stdout. This runner adds the machine, the date and the command, and keeps a failed script's
error in the file rather than hiding it.
"""

from __future__ import annotations

import datetime as dt
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{platform.system()} {platform.release()}, {os.cpu_count()} cores ({cpu}), "
        f"{mem_gib:.0f} GiB RAM, Python {platform.python_version()}"
    )


def main(argv: list[str]) -> int:
    only = set(argv)
    scripts = sorted(p for p in BENCH.glob("bench_*.py") if not only or p.stem in only)
    sections: list[str] = []
    failed = 0
    for script in scripts:
        print(f"bench: {script.name} ...", file=sys.stderr, flush=True)
        started = time.monotonic()
        proc = subprocess.run(
            [sys.executable, str(script)], cwd=ROOT, capture_output=True, text=True, check=False
        )
        took = time.monotonic() - started
        if proc.returncode == 0:
            sections.append(proc.stdout.strip())
        else:
            failed += 1
            tail = "\n".join(proc.stderr.strip().splitlines()[-15:])
            sections.append(
                f"### {script.stem}\n\nFAILED (exit {proc.returncode}) after {took:.0f} s:\n\n"
                f"```\n{tail}\n```"
            )
        print(f"bench: {script.name} took {took:.0f} s", file=sys.stderr, flush=True)
    now = dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC")
    header = (
        "# padlock benchmark results\n\n"
        f"- date: {now}\n"
        f"- machine: {machine()}\n"
        "- command: `make bench` (runs every `bench/bench_*.py` through `bench/run_all.py`)\n"
    )
    (BENCH / "RESULTS.md").write_text(header + "\n" + "\n\n".join(sections) + "\n")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
