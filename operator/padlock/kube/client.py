"""A small async Kubernetes REST client: the one place padlock sends requests to the API server.

Called by the other `padlock.kube` modules (Secrets, workloads, Events, status, Certificates),
which the kopf controllers and the `padlock status` / `padlock renew` commands use. kopf
watches; this client writes. It is a thin layer over aiohttp instead of the official
`kubernetes` package: kopf's own measurements (`docs/critiques.rst`) put that package at ~60%
of an operator's memory, and an async client needs no thread pool.

Errors are sorted for the callers: `NotFound` (404), `Conflict` (409: stale resourceVersion or
AlreadyExists), `ApiUnavailable` (429, 5xx, connection errors, timeouts: retry later) and
`ApiError` for everything else (a request the server refuses for good).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import ssl
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import aiohttp
import yaml

IN_CLUSTER_DIR = Path("/var/run/secrets/kubernetes.io/serviceaccount")

MERGE_PATCH = "application/merge-patch+json"
JSON_PATCH = "application/json-patch+json"


class ApiError(Exception):
    """The API server refused a request; `status` is the HTTP status, `reason` the
    `Status.reason` (e.g. `Invalid`, `Forbidden`)."""

    def __init__(self, status: int, reason: str, message: str) -> None:
        super().__init__(f"{status} {reason}: {message}")
        self.status = status
        self.reason = reason
        self.message = message


class NotFound(ApiError):
    """HTTP 404: the object (or its namespace, or the resource type) does not exist."""


class Conflict(ApiError):
    """HTTP 409: a stale resourceVersion on update, or AlreadyExists on create."""


class ApiUnavailable(ApiError):
    """The API server cannot answer now (429, 5xx, connection refused, timeout): retryable."""


@dataclasses.dataclass(frozen=True)
class Credentials:
    """Where the API server is and how to authenticate, from a kubeconfig or a pod's
    service account. PEM material is kept in memory, never logged."""

    server: str
    ca_pem: bytes | None = None
    insecure: bool = False
    token: str | None = None
    client_cert_pem: bytes | None = None
    client_key_pem: bytes | None = None
    default_namespace: str = "default"

    def __repr__(self) -> str:
        # Never print tokens or keys (STYLE.md: never log private keys).
        return f"Credentials(server={self.server!r}, namespace={self.default_namespace!r})"


def _read_data_or_file(entry: Mapping[str, Any], key: str, base: Path) -> bytes | None:
    """kubeconfig `<key>-data` (base64) or `<key>` (a path relative to the kubeconfig)."""
    data = entry.get(f"{key}-data")
    if data:
        return base64.b64decode(data)
    path = entry.get(key)
    if path:
        resolved = Path(path) if Path(path).is_absolute() else base / path
        return resolved.read_bytes()
    return None


def load_kubeconfig(path: Path | None = None, context: str | None = None) -> Credentials:
    """Credentials of `context` (default: current-context) in the kubeconfig at `path`
    (default: $KUBECONFIG's first entry, then ~/.kube/config).

    Supports what envtest-style and kind kubeconfigs use: server + CA, client certificate,
    bearer token or token file. ValueError names the missing piece.
    """
    if path is None:
        env = os.environ.get("KUBECONFIG", "")
        first = next((p for p in env.split(os.pathsep) if p), None)
        path = Path(first).expanduser() if first else Path("~/.kube/config").expanduser()
    doc = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    base = path.parent
    context_name = context or doc.get("current-context")
    if not context_name:
        raise ValueError(f"kubeconfig {path} has no current-context and none was given")

    def pick(section: str, name: str) -> dict[str, Any]:
        for item in doc.get(section) or []:
            if item.get("name") == name:
                return dict(item.get(section[:-1]) or {})
        raise ValueError(f"kubeconfig {path}: {section[:-1]} {name!r} is not defined")

    ctx = pick("contexts", context_name)
    cluster = pick("clusters", ctx["cluster"])
    user = pick("users", ctx["user"]) if ctx.get("user") else {}
    token = user.get("token")
    if not token and user.get("tokenFile"):
        token = Path(user["tokenFile"]).read_text(encoding="utf-8").strip()
    if "server" not in cluster:
        raise ValueError(f"kubeconfig {path}: cluster {ctx['cluster']!r} has no server")
    return Credentials(
        server=str(cluster["server"]).rstrip("/"),
        ca_pem=_read_data_or_file(cluster, "certificate-authority", base),
        insecure=bool(cluster.get("insecure-skip-tls-verify", False)),
        token=token,
        client_cert_pem=_read_data_or_file(user, "client-certificate", base),
        client_key_pem=_read_data_or_file(user, "client-key", base),
        default_namespace=str(ctx.get("namespace") or "default"),
    )


def load_in_cluster() -> Credentials:
    """Credentials of the pod's service account (token, CA and namespace files)."""
    host = os.environ.get("KUBERNETES_SERVICE_HOST")
    port = os.environ.get("KUBERNETES_SERVICE_PORT", "443")
    if not host:
        raise ValueError("not running in a pod: KUBERNETES_SERVICE_HOST is not set")
    if ":" in host:  # IPv6 literal
        host = f"[{host}]"
    namespace_file = IN_CLUSTER_DIR / "namespace"
    return Credentials(
        server=f"https://{host}:{port}",
        ca_pem=(IN_CLUSTER_DIR / "ca.crt").read_bytes(),
        token=(IN_CLUSTER_DIR / "token").read_text(encoding="utf-8").strip(),
        default_namespace=(
            namespace_file.read_text(encoding="utf-8").strip()
            if namespace_file.exists()
            else "default"
        ),
    )


def load_credentials(kubeconfig: Path | None = None) -> Credentials:
    """In a pod (and no explicit kubeconfig): the service account; otherwise a kubeconfig."""
    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        return load_in_cluster()
    return load_kubeconfig(kubeconfig)


def _ssl_context(creds: Credentials) -> ssl.SSLContext | bool:
    if not creds.server.startswith("https://"):
        return False
    if creds.insecure:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    else:
        ctx = ssl.create_default_context(
            cadata=creds.ca_pem.decode("ascii") if creds.ca_pem else None
        )
    if creds.client_cert_pem and creds.client_key_pem:
        # ssl.load_cert_chain reads files only: a private 0700 directory, removed at once.
        with tempfile.TemporaryDirectory(prefix="padlock-kube-") as tmp:
            cert = Path(tmp) / "client.crt"
            key = Path(tmp) / "client.key"
            cert.write_bytes(creds.client_cert_pem)
            key.touch(mode=0o600)
            key.write_bytes(creds.client_key_pem)
            ctx.load_cert_chain(cert, key)
    return ctx


class KubeClient:
    """An async client for one API server. Create it inside the event loop that uses it;
    `close()` when done. `connect_timeout` bounds each TCP/TLS connect and `request_timeout`
    each wait for the server's answer (seconds); at most 50 requests are in flight."""

    def __init__(
        self,
        credentials: Credentials,
        *,
        request_timeout: float = 60,
        connect_timeout: float = 10,
    ) -> None:
        self.credentials = credentials
        self._ssl = _ssl_context(credentials)
        # Per socket operation, not in total: with a thousand handlers at once, requests wait
        # for one of the pool's connections, and that wait must not count as a timeout.
        self._timeout = aiohttp.ClientTimeout(
            total=None, sock_connect=connect_timeout, sock_read=request_timeout
        )
        self._headers = {"Accept": "application/json", "User-Agent": "padlock-operator"}
        if credentials.token:
            self._headers["Authorization"] = f"Bearer {credentials.token}"
        self._session: aiohttp.ClientSession | None = None

    @property
    def default_namespace(self) -> str:
        return self.credentials.default_namespace

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(ssl=self._ssl, limit=50),
                timeout=self._timeout,
                headers=self._headers,
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def request(
        self,
        method: str,
        path: str,
        *,
        body: Any = None,
        params: Mapping[str, str] | None = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        """Send one request; the decoded JSON answer, or an `ApiError` subclass."""
        session = self._get_session()
        data = None if body is None else json.dumps(body)
        headers = {"Content-Type": content_type} if data is not None else None
        url = self.credentials.server + path
        try:
            async with session.request(
                method, url, data=data, params=params, headers=headers
            ) as resp:
                text = await resp.text()
                status = resp.status
        except TimeoutError:
            raise ApiUnavailable(0, "Timeout", f"{method} {path}: no answer in time") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise ApiUnavailable(0, "ConnectionError", f"{method} {path}: {exc}") from None
        try:
            answer = json.loads(text) if text else {}
        except ValueError:
            answer = {"message": text[:300]}
        if not isinstance(answer, dict):
            answer = {"message": str(answer)[:300]}
        if 200 <= status < 300:
            return answer
        reason = str(answer.get("reason") or f"HTTP{status}")
        message = f"{method} {path}: {answer.get('message') or text[:300]}"
        if status == 404:
            raise NotFound(status, reason, message)
        if status == 409:
            raise Conflict(status, reason, message)
        if status == 429 or status >= 500:
            raise ApiUnavailable(status, reason, message)
        raise ApiError(status, reason, message)

    async def get(self, path: str, params: Mapping[str, str] | None = None) -> dict[str, Any]:
        return await self.request("GET", path, params=params)

    async def create(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("POST", path, body=body)

    async def replace(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return await self.request("PUT", path, body=body)

    async def merge_patch(self, path: str, patch: Mapping[str, Any]) -> dict[str, Any]:
        """RFC 7386 JSON merge patch (null deletes a key)."""
        return await self.request("PATCH", path, body=patch, content_type=MERGE_PATCH)

    async def json_patch(self, path: str, ops: list[dict[str, Any]]) -> dict[str, Any]:
        """RFC 6902 JSON patch; a `test` op makes it conditional (409/422 when it fails)."""
        return await self.request("PATCH", path, body=ops, content_type=JSON_PATCH)

    async def delete(self, path: str, body: Mapping[str, Any] | None = None) -> dict[str, Any]:
        return await self.request("DELETE", path, body=body)
