"""DESIGN.md: no CA key code ever loads in the operator process. Building the `padlock`
command line (which every process does) must not import the HSM, ledger or pipeline code."""

from __future__ import annotations

import subprocess
import sys

FORBIDDEN = ("pkcs11", "sqlalchemy", "alembic", "padlock.keys", "padlock.ledger",
             "padlock.ca.pipeline", "padlock.ca.ceremony")  # fmt: skip


def test_building_the_cli_loads_no_key_ledger_or_pipeline_code() -> None:
    probe = (
        "import sys, padlock.cli\n"
        "padlock.cli.build_parser()\n"
        f"print(sorted(m for m in sys.modules if m.split('.')[0] in {FORBIDDEN!r}"
        f" or any(m == f or m.startswith(f + '.') for f in {FORBIDDEN!r})))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    )
    assert done.stdout.strip() == "[]"
