"""`padlock operator`, `padlock status` and `padlock renew`: the operator and its two helpers.

Registered by `padlock.cli`. `operator` runs `padlock.controllers.run`; `status` lists every
Certificate with its Ready condition and expiry, soonest expiry first; `renew` asks the
operator to renew one Certificate now (an annotation the certificate controller answers once).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from padlock.cli.errors import CommandError

CA_SOCKET_ENV = "PADLOCK_CA_SOCKET"
METRICS_PORT_ENV = "PADLOCK_METRICS_PORT"


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    op = subparsers.add_parser("operator", help="run the Kubernetes operator (kopf)")
    op.add_argument("--kubeconfig", type=Path, help="default: in-cluster, then $KUBECONFIG")
    op.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        dest="namespaces",
        help="watch only this namespace (repeatable; default: the whole cluster)",
    )
    ca = op.add_mutually_exclusive_group()
    ca.add_argument(
        "--ca-socket",
        type=Path,
        default=os.environ.get(CA_SOCKET_ENV),
        help=f"unix socket of `padlock ca serve` (env {CA_SOCKET_ENV})",
    )
    ca.add_argument("--ca-url", help="base URL of the CA instead of a socket")
    op.add_argument(
        "--metrics-port",
        type=int,
        default=int(os.environ.get(METRICS_PORT_ENV, "9402")),
        help=f"port of /metrics and /healthz, 0 to disable (env {METRICS_PORT_ENV})",
    )
    op.add_argument("--metrics-host", default="0.0.0.0")  # noqa: S104
    op.set_defaults(func=_operator)

    st = subparsers.add_parser("status", help="list Certificates by expiry")
    st.add_argument("--kubeconfig", type=Path)
    st.add_argument("-n", "--namespace", help="one namespace (default: all)")
    st.set_defaults(func=_status)

    rn = subparsers.add_parser("renew", help="ask the operator to renew a Certificate now")
    rn.add_argument("name")
    rn.add_argument("-n", "--namespace", help="default: the kubeconfig's namespace")
    rn.add_argument("--kubeconfig", type=Path)
    rn.set_defaults(func=_renew)


def _operator(args: argparse.Namespace) -> int:
    from padlock import controllers

    if args.ca_socket is None and args.ca_url is None:
        raise CommandError(f"give --ca-socket (or {CA_SOCKET_ENV}) or --ca-url")
    return controllers.run(
        kubeconfig=args.kubeconfig,
        namespaces=args.namespaces,
        ca_socket=Path(args.ca_socket) if args.ca_socket else None,
        ca_url=args.ca_url,
        metrics_port=args.metrics_port or None,
        metrics_host=args.metrics_host,
    )


def _parse_time(text: str | None) -> datetime.datetime | None:
    if not text:
        return None
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def status_rows(
    items: Sequence[Mapping[str, Any]], now: datetime.datetime
) -> list[tuple[str, str, str, str, str]]:
    """(namespace, name, ready, notAfter, days left) per Certificate, soonest expiry first;
    Certificates without a certificate yet come first (they need attention most)."""
    rows = []
    for item in items:
        meta = item.get("metadata") or {}
        status = item.get("status") or {}
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        not_after = _parse_time(status.get("notAfter"))
        days = f"{(not_after - now).total_seconds() / 86400:.1f}" if not_after else "-"
        ready_text = (ready or {}).get("status", "Unknown")
        if ready and ready_text != "True":
            ready_text += f" ({ready.get('reason', '')})"
        rows.append(
            (
                not_after or datetime.datetime.min.replace(tzinfo=datetime.UTC),
                (
                    str(meta.get("namespace", "")),
                    str(meta.get("name", "")),
                    ready_text,
                    status.get("notAfter") or "-",
                    days,
                ),
            )
        )
    rows.sort(key=lambda r: (r[0], r[1]))
    return [r[1] for r in rows]


def format_table(rows: Sequence[tuple[str, ...]]) -> str:
    header = ("NAMESPACE", "NAME", "READY", "NOT AFTER", "DAYS LEFT")
    table = [header, *rows]
    widths = [max(len(r[i]) for r in table) for i in range(len(header))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in table
    )


def _status(args: argparse.Namespace) -> int:
    from padlock.kube import certificates, client

    async def fetch() -> list[dict[str, Any]]:
        kube = client.KubeClient(client.load_credentials(args.kubeconfig))
        try:
            return await certificates.list_all(kube, args.namespace)
        finally:
            await kube.close()

    try:
        items = asyncio.run(fetch())
    except (client.ApiError, ValueError, OSError) as exc:
        raise CommandError(f"cannot list Certificates: {exc}") from None
    print(format_table(status_rows(items, datetime.datetime.now(datetime.UTC))))
    return 0


def _renew(args: argparse.Namespace) -> int:
    from padlock.kube import certificates, client

    async def ask() -> tuple[bool, str]:
        kube = client.KubeClient(client.load_credentials(args.kubeconfig))
        namespace = args.namespace or kube.default_namespace
        try:
            found = await certificates.request_renewal(
                kube, namespace, args.name, datetime.datetime.now(datetime.UTC)
            )
        finally:
            await kube.close()
        return found, namespace

    try:
        found, namespace = asyncio.run(ask())
    except (client.ApiError, ValueError, OSError) as exc:
        raise CommandError(f"cannot request the renewal: {exc}") from None
    if not found:
        raise CommandError(f"no Certificate {args.name!r} in namespace {namespace!r}")
    print(f"renewal of {namespace}/{args.name} requested")
    return 0
