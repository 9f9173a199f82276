"""The CA's JSON contract, client side: the ONLY CA module the operator imports.

Called by the operator's controllers (issue, revoke), the SVID agent and `padlock ca sign`.
It speaks HTTP to `padlock ca serve` (`padlock.services.ca_http`) over the CA pod's unix
socket, or over a base URL (loopback TCP with mTLS). It imports nothing from the key
backends, the ledger or the pipeline (import-linter forbids it), so no CA key code ever loads
in the operator process.

Errors are sorted the way kopf wants them (cert-manager does the same):

- `CAUnavailable`: connection refused, timeout, 503 (HSM unavailable) or another 5xx —
  retry later (kopf `TemporaryError`).
- `CARateLimited`: 429 — retry after `retry_after` seconds.
- `CARefused`: any other 4xx (bad input, policy refusal, idempotency key reused with another
  CSR) — permanent for this request (kopf `PermanentError`) until the spec changes.

Wire format (padlock.services.ca_http documents the server side):
`POST /v1/sign` `{"csr", "profile", "lifetime_seconds", "idempotency_key", "requester"}` →
`{"certificate", "chain", "serial"}`; `POST /v1/revoke` `{"serial", "reason", "requester"}` →
`{"serial", "reason", "revoked_at"}`; `POST /v1/revoke-all` `{"reason", "requester"}` →
`{"revoked": [{"serial", "reason", "revoked_at"}, ...]}`; `GET /v1/ca` → `{"name", "chain",
"root", "ocsp_url", "crl_url"}`; errors are `{"error": "<code>", "message": "..."}`.
"""

from __future__ import annotations

import dataclasses
import json
import ssl
from pathlib import Path
from types import TracebackType
from typing import Any

import aiohttp


class CAError(Exception):
    """Base of every error this client raises."""


class CAUnavailable(CAError):
    """The CA cannot answer now (down, timed out, HSM unavailable, 5xx): retryable."""


class CARateLimited(CAError):
    """The CA rate-limits this requester (HTTP 429): retry after `retry_after` seconds."""

    def __init__(self, retry_after: float, message: str = "rate limited by the CA") -> None:
        super().__init__(f"{message} (retry after {retry_after:g}s)")
        self.retry_after = retry_after


class CARefused(CAError):
    """The CA refused the request for good (4xx): bad input or a policy refusal.

    `code` is the server's machine-readable error code (e.g. `weak-key`, `no-san`,
    `unknown-profile`, `malformed-json`, `idempotency-conflict`, `lint-failed`,
    `unknown-serial`; see `padlock.services.ca_http.errors`), `status` the HTTP status
    (400, 404, 409 or 422)."""

    def __init__(self, code: str, message: str, status: int) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.status = status


@dataclasses.dataclass(frozen=True)
class SignResult:
    """An issued certificate: the leaf PEM, the issuing chain PEM (intermediates, root
    excluded: what a TLS server sends after its leaf), and the serial as upper-case hex
    without separators, as `openssl x509 -serial` prints it."""

    certificate: str
    chain: str
    serial: str


@dataclasses.dataclass(frozen=True)
class RevokeResult:
    """A recorded revocation: serial (hex), RFC 5280 §5.3.1 reason name, ISO 8601 time."""

    serial: str
    reason: str
    revoked_at: str


REVOKE_ALL_TIMEOUT = 300.0
"""Seconds `revoke_all` waits: the CA re-signs one OCSP response and one CRL shard per
certificate before it answers."""


@dataclasses.dataclass(frozen=True)
class CAInfo:
    """What the CA publishes about itself (`GET /v1/ca`)."""

    name: str
    chain: str
    """The issuing chain PEM (intermediates), as sent with every certificate."""
    root: str
    """The trust anchor PEM: what goes into a Secret's `ca.crt`."""
    ocsp_url: str | None
    crl_url: str | None


_UNIX_BASE_URL = "http://padlock-ca"


class CAClient:
    """An async client for one CA; one HTTP connection pool, closed by `close()`.

    Give exactly one of `socket_path` (the unix socket `padlock ca serve` listens on) and
    `base_url` (e.g. `https://127.0.0.1:8443`, with `ssl` carrying the client certificate for
    mTLS). `timeout` bounds each request in seconds.
    """

    def __init__(
        self,
        socket_path: Path | None = None,
        base_url: str | None = None,
        timeout: float = 10,
        *,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        if (socket_path is None) == (base_url is None):
            raise ValueError("CAClient needs exactly one of socket_path and base_url")
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self._socket_path = socket_path
        self._base_url = (base_url or _UNIX_BASE_URL).rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._ssl_context = ssl_context
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CAClient:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    async def sign(
        self,
        csr_pem: str,
        profile: str,
        lifetime_seconds: int,
        idempotency_key: str,
        requester: str,
    ) -> SignResult:
        """Have the CSR signed under `profile`. The same `idempotency_key` always yields the
        same certificate (a retry after a timeout is safe); reusing it with another CSR is
        refused (`CARefused`, code `idempotency-conflict`, status 409)."""
        body = await self._request(
            "POST",
            "/v1/sign",
            {
                "csr": csr_pem,
                "profile": profile,
                "lifetime_seconds": lifetime_seconds,
                "idempotency_key": idempotency_key,
                "requester": requester,
            },
        )
        return SignResult(
            certificate=_field(body, "certificate"),
            chain=_field(body, "chain"),
            serial=_field(body, "serial"),
        )

    async def revoke(self, serial: str, reason: str, requester: str) -> RevokeResult:
        """Revoke the certificate with hex `serial` for an RFC 5280 §5.3.1 `reason`
        (e.g. `keyCompromise`, `superseded`). Revoking twice answers with the first record."""
        body = await self._request(
            "POST", "/v1/revoke", {"serial": serial, "reason": reason, "requester": requester}
        )
        return RevokeResult(
            serial=_field(body, "serial"),
            reason=_field(body, "reason"),
            revoked_at=_field(body, "revoked_at"),
        )

    async def revoke_all(self, reason: str, requester: str) -> tuple[RevokeResult, ...]:
        """Revoke every certificate of this CA (the intermediate-compromise drill). Answers
        every revocation recorded for `requester`, in serial order, including those of an
        earlier identical call: a retry after a timeout gets the same list back."""
        body = await self._request(
            "POST",
            "/v1/revoke-all",
            {"reason": reason, "requester": requester},
            seconds=REVOKE_ALL_TIMEOUT,
        )
        entries = body.get("revoked")
        if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
            raise CAUnavailable("CA answer lacks the list field 'revoked'")
        return tuple(
            RevokeResult(
                serial=_field(e, "serial"),
                reason=_field(e, "reason"),
                revoked_at=_field(e, "revoked_at"),
            )
            for e in entries
        )

    async def info(self) -> CAInfo:
        """The CA's name, chain, root and revocation URLs."""
        body = await self._request("GET", "/v1/ca", None)
        return CAInfo(
            name=_field(body, "name"),
            chain=_field(body, "chain"),
            root=_field(body, "root"),
            ocsp_url=_optional_field(body, "ocsp_url"),
            crl_url=_optional_field(body, "crl_url"),
        )

    async def healthy(self) -> bool:
        """True when the CA answers `GET /healthz` with 200 (HSM session up); never raises
        for an unreachable CA."""
        try:
            await self._request("GET", "/healthz", None)
        except CAError:
            return False
        return True

    async def close(self) -> None:
        """Close the connection pool; the client can be used again afterwards."""
        if self._session is not None:
            await self._session.close()
            self._session = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            connector: aiohttp.BaseConnector
            if self._socket_path is not None:
                connector = aiohttp.UnixConnector(path=str(self._socket_path))
            else:
                connector = aiohttp.TCPConnector(ssl=self._ssl_context or True)
            self._session = aiohttp.ClientSession(connector=connector, timeout=self._timeout)
        return self._session

    async def _request(
        self,
        method: str,
        path: str,
        payload: dict[str, Any] | None,
        *,
        seconds: float | None = None,
    ) -> dict[str, Any]:
        where = str(self._socket_path) if self._socket_path is not None else self._base_url
        session = self._get_session()
        limit = self._timeout if seconds is None else aiohttp.ClientTimeout(total=seconds)
        try:
            async with session.request(
                method, self._base_url + path, json=payload, timeout=limit
            ) as resp:
                text = await resp.text()
                status = resp.status
                retry_after = resp.headers.get("Retry-After")
        except TimeoutError:
            raise CAUnavailable(f"CA at {where} did not answer {method} {path} in time") from None
        except (aiohttp.ClientError, OSError) as exc:
            raise CAUnavailable(f"cannot reach the CA at {where}: {exc}") from None
        body = _decode(text)
        if 200 <= status < 300:
            if body is None:
                raise CAUnavailable(f"CA at {where} sent a non-JSON answer to {method} {path}")
            return body
        code = str(body.get("error", f"http_{status}")) if body else f"http_{status}"
        message = str(body.get("message", text[:200])) if body else text[:200]
        if status == 429:
            raise CARateLimited(_retry_after(retry_after), message)
        if status >= 500:
            raise CAUnavailable(f"CA at {where} answered {status} {code}: {message}")
        raise CARefused(code, message, status)


def _decode(text: str) -> dict[str, Any] | None:
    try:
        body = json.loads(text)
    except ValueError:
        return None
    return body if isinstance(body, dict) else None


def _retry_after(header: str | None) -> float:
    # RFC 9110 §10.2.3: delay-seconds (we never send the HTTP-date form); default to 1 s.
    try:
        return max(0.0, float(header)) if header is not None else 1.0
    except ValueError:
        return 1.0


def _field(body: dict[str, Any], name: str) -> str:
    value = body.get(name)
    if not isinstance(value, str):
        raise CAUnavailable(f"CA answer lacks the string field {name!r}")
    return value


def _optional_field(body: dict[str, Any], name: str) -> str | None:
    value = body.get(name)
    return value if isinstance(value, str) else None
