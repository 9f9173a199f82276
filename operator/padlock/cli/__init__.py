"""The `padlock` command: one entry point for every process and the offline ceremony.

Each sub-module registers its own sub-commands (`register(subparsers)`) and runs them; this
module only wires them together. Called by the console script and `python -m padlock`.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Sequence

from padlock.cli.errors import CommandError

# Sub-command modules, in the order `padlock --help` lists them.
_COMMAND_MODULES = (
    "padlock.cli.ca",
    "padlock.cli.inspect",
    "padlock.cli.ledger",
    "padlock.cli.operator",
    "padlock.cli.ocsp",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="padlock", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    subparsers = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        result: int = args.func(args)
    except CommandError as exc:
        print(f"padlock: error: {exc}", file=sys.stderr)
        return 2
    return result
