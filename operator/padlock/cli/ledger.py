"""`padlock ledger verify --config FILE`: walk the hash-chained audit trail.

Registered by `padlock.cli`. Exits 0 when every row links to the one before it, 1 naming the
first bad row otherwise (a tampered or deleted row), 2 when the ledger cannot be read.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from padlock.ca import config as ca_config
from padlock.cli.errors import CommandError


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("ledger", help="the issuance ledger")
    sub = parser.add_subparsers(dest="ledger_command", required=True, metavar="COMMAND")
    check = sub.add_parser("verify", help="verify the audit chain; non-zero if tampered")
    check.add_argument("--config", type=Path, required=True, help="the CA's ca.yaml")
    check.set_defaults(func=_verify)


def _verify(args: argparse.Namespace) -> int:
    from padlock.ledger import verify

    try:
        config = ca_config.load(args.config)
    except ca_config.ConfigError as exc:
        raise CommandError(str(exc)) from None
    try:
        result = verify.verify_chain(config.ledger.url)
    except Exception as exc:  # driver errors: missing file, refused connection, old schema
        raise CommandError(f"cannot read the ledger: {exc}") from None
    if result.ok:
        print(f"audit chain OK: {result.rows_checked} rows")
        return 0
    print(
        f"audit chain BROKEN at row {result.first_bad_id} "
        f"(after {result.rows_checked} good rows): {result.reason}"
    )
    return 1
