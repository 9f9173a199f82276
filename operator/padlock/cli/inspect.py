"""`padlock inspect CERT.pem`: a certificate (or a whole chain file) for the terminal.

Registered by `padlock.cli`. The facts come from `padlock.pki.pem.describe_certificate`; this
module only lays them out (or prints them as JSON with `--json`).
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from padlock.cli.errors import CommandError
from padlock.pki import pem


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("inspect", help="show a certificate or chain file")
    parser.add_argument("path", type=Path, help="PEM or DER certificate(s); '-' reads stdin")
    parser.add_argument("--json", action="store_true", help="machine-readable output")
    parser.set_defaults(func=_inspect)


def _inspect(args: argparse.Namespace) -> int:
    try:
        data = sys.stdin.buffer.read() if str(args.path) == "-" else args.path.read_bytes()
    except OSError as exc:
        raise CommandError(f"cannot read {args.path}: {exc.strerror}") from None
    try:
        certs = pem.load_certificates(data)
    except ValueError as exc:
        raise CommandError(f"{args.path}: {exc}") from None
    described = [pem.describe_certificate(c) for c in certs]
    if args.json:
        print(json.dumps(described if len(described) > 1 else described[0], indent=2))
        return 0
    for index, info in enumerate(described):
        if len(described) > 1:
            print(f"--- certificate {index + 1} of {len(described)}")
        print(render(info))
    return 0


def render(info: dict[str, object], now: datetime | None = None) -> str:
    """The human layout of one `describe_certificate()` result."""
    now = now or datetime.now(UTC)
    not_after = datetime.fromisoformat(str(info["notAfter"]))
    days_left = (not_after - now).total_seconds() / 86400
    state = "EXPIRED" if days_left < 0 else f"{days_left:.1f} days left"
    lines = [
        f"Subject:        {info['subject'] or '(empty)'}",
        f"Issuer:         {info['issuer']}",
        f"Serial:         {info['serial']}",
        f"Not before:     {info['notBefore']}",
        f"Not after:      {info['notAfter']}  ({state})",
        f"Key:            {info['keyAlgorithm']}",
        f"Signature:      {info['signatureAlgorithm']}",
        f"CA:             {_ca(info)}",
        f"Key usage:      {', '.join(_strings(info['keyUsage'])) or '-'}",
        f"Extended usage: {', '.join(_strings(info['extendedKeyUsage'])) or '-'}",
    ]
    sans = info["sans"]
    if isinstance(sans, dict):
        for kind, values in sans.items():
            if values:
                lines.append(f"SAN {kind + ':':<11} {', '.join(_strings(values))}")
    aia = info["aia"]
    if isinstance(aia, dict):
        for kind, values in aia.items():
            if values:
                lines.append(f"AIA {kind + ':':<11} {', '.join(_strings(values))}")
    cdp = _strings(info["crlDistributionPoints"])
    if cdp:
        lines.append(f"CRL:            {', '.join(cdp)}")
    lines.append(f"SHA-256:        {info['sha256Fingerprint']}")
    return "\n".join(lines)


def _ca(info: dict[str, object]) -> str:
    if not info["isCA"]:
        return "no"
    path_len = info["pathLen"]
    return "yes" if path_len is None else f"yes (pathLen {path_len})"


def _strings(value: object) -> list[str]:
    return [str(v) for v in value] if isinstance(value, list) else []
