"""`padlock ocsp serve`: the revocation responder (OCSP and CRLs) for one CA.

Registered by `padlock.cli`; runs `padlock.services.ocsp.server.run` with the CA's
`ca.yaml` (chain, ledger URL, URLs, and the PKCS#11 token when `--sign` is given).
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from padlock.ca import config as ca_config
from padlock.cli.errors import CommandError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser("ocsp", help="the OCSP/CRL revocation responder")
    commands = parser.add_subparsers(dest="ocsp_command", required=True, metavar="COMMAND")
    serve = commands.add_parser(
        "serve",
        help="answer OCSP (RFC 6960, GET and POST) and serve CRL shards over HTTP",
        description=(
            "Serve the responses the CA pre-signed, from memory, refreshed from the ledger "
            "(read only). Without --sign the responder holds no key: nonce requests get the "
            "pre-signed response without a nonce (RFC 6960 §4.4.1)."
        ),
    )
    serve.add_argument("--config", type=Path, required=True, help="the CA's ca.yaml")
    serve.add_argument("--host", default="127.0.0.1", help="listen address (default loopback)")
    serve.add_argument("--port", type=int, default=8080, help="listen port (default 8080)")
    serve.add_argument(
        "--workers", type=int, default=1, help="worker processes sharing the port (SO_REUSEPORT)"
    )
    serve.add_argument(
        "--sign",
        action="store_true",
        help="load the delegated responder key from the token and sign nonce, multi-CertID, "
        "SHA-2 CertID and unknown-serial answers on demand",
    )
    serve.add_argument(
        "--poll-interval",
        type=float,
        default=1.0,
        help="seconds between reads of new revocations (default 1)",
    )
    serve.add_argument(
        "--wait-for-ca",
        type=float,
        default=60.0,
        metavar="SECONDS",
        help="at start, wait this long for the CA to prepare the ledger (default 60)",
    )
    serve.set_defaults(func=_serve)


def _serve(args: argparse.Namespace) -> int:
    from padlock.services.ocsp import server

    try:
        config = ca_config.load(args.config)
    except ca_config.ConfigError as exc:
        raise CommandError(str(exc)) from None
    if args.workers < 1 or not 0 < args.port < 65536 or args.poll_interval <= 0:
        raise CommandError("--workers must be >= 1, --port 1..65535, --poll-interval > 0")
    if args.wait_for_ca < 0:
        raise CommandError("--wait-for-ca must be >= 0")
    options = server.ServeOptions(
        host=args.host,
        port=args.port,
        workers=args.workers,
        sign=args.sign,
        poll_interval=args.poll_interval,
        wait_for_ca=args.wait_for_ca,
    )
    return server.run(config, options)
