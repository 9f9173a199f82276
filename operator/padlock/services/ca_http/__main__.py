"""`python -m padlock.services.ca_http --config ca.yaml`: `padlock ca serve` without the CLI
(used by the crash test and the benchmark to run the CA as its own process)."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from padlock.ca import config as ca_config
from padlock.services.ca_http.server import run


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m padlock.services.ca_http")
    parser.add_argument("--config", type=Path, required=True, help="the CA's ca.yaml")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        config = ca_config.load(args.config)
    except ca_config.ConfigError as exc:
        print(f"padlock ca serve: {exc}", file=sys.stderr)
        return 2
    return run(config)


if __name__ == "__main__":
    sys.exit(main())
