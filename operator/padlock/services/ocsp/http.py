"""The responder's HTTP/1.1 front end: an asyncio protocol on `httptools`, built for speed.

Called by `padlock.services.ocsp.server` (one listening socket per worker process). Why not
aiohttp like the CA service: an OCSP responder answers tiny, mostly identical requests at a
high rate (bench/bench_ocsp.py); aiohttp's request/response objects cost more than the answer
itself. Here a repeated GET or POST is one dict lookup and one `write()`.

URL table (`Site.route`):
- `GET  <ocsp path>/<base64 DER request>` RFC 6960 §A.1 / RFC 5019 §5 (URL-decoded first)
- `POST <any path>` with the DER request as body (`application/ocsp-request`)
- `GET  /crl/<shard>.crl` the shard's CRL (`application/pkix-crl`, RFC 5280 §4.2.1.13)
- `GET  <caIssuers path>` (default `/ca.crt`) the issuing CA certificate in DER
  (`application/pkix-cert`, RFC 5280 §4.2.2.1)
- `GET  /healthz`, `GET /metrics`

Every OCSP request gets an OCSP response with HTTP 200, errors included (RFC 6960 §A.1): bad
base64, a body over `max_body` bytes (answered before the body is read, then the connection
closes), bytes that are not a request. Pre-signed answers carry RFC 5019 §6.2 caching headers
(max-age up to nextUpdate, ETag, Last-Modified, Expires; `If-None-Match` gives 304); answers
signed on demand and errors carry `Cache-Control: no-store`.
"""

from __future__ import annotations

import asyncio
import binascii
import collections
import email.utils
import logging
import time
import urllib.parse
from collections.abc import Callable
from typing import Any, cast

import httptools
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from padlock import metrics
from padlock.services.ocsp import responder as responder_mod
from padlock.services.ocsp import store as store_mod

log = logging.getLogger(__name__)

MAX_BODY = 16 * 1024
"""Largest OCSP request body: 16 CertIDs with a nonce and a signature fit in a few KB."""

MAX_URL = 16 * 1024

IDLE_TIMEOUT = 30.0
"""Seconds a connection may stay silent (idle keep-alive, or a client that never finishes
its request) before it is closed."""

_CRL_PREFIX = b"/crl/"
_MAX_CACHED_ANSWERS = 100_000


_REASONS = {
    200: b"OK",
    304: b"Not Modified",
    400: b"Bad Request",
    404: b"Not Found",
    405: b"Method Not Allowed",
    414: b"URI Too Long",
}


class Clock:
    """Now as an HTTP date and a Unix time, recomputed at most once a second."""

    def __init__(self) -> None:
        self.second = -1
        self.date = b""
        self.now = 0.0

    def tick(self) -> None:
        now = time.time()
        second = int(now)
        self.now = now
        if second != self.second:
            self.second = second
            self.date = email.utils.formatdate(now, usegmt=True).encode("ascii")


def response(
    status: int,
    body: bytes,
    content_type: bytes,
    date: bytes,
    headers: bytes = b"",
    *,
    close: bool = False,
) -> bytes:
    head = b"HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %d\r\nDate: %s\r\n%s%s\r\n" % (
        status,
        _REASONS[status],
        content_type,
        len(body),
        date,
        headers,
        b"Connection: close\r\n" if close else b"",
    )
    return head + body


_OCSP = b"application/ocsp-response"
_NO_STORE = b"Cache-Control: no-store\r\n"


class _Cacheable:
    """A pre-signed answer's HTTP response: the parts that never change, and the whole
    keep-alive response as rendered for the current second (Date and max-age change)."""

    __slots__ = (
        "age_from",
        "answer",
        "etag",
        "head",
        "headers",
        "next_update",
        "rendered",
        "second",
    )

    def __init__(self, answer: responder_mod.Answer) -> None:
        published = answer.published
        assert published is not None
        self.answer = answer
        self.etag = published.etag.encode("ascii")
        self.next_update = published.next_update.timestamp()
        self.age_from = published.this_update.timestamp()
        self.headers = b"Last-Modified: %s\r\nExpires: %s\r\nETag: %s\r\n" % (
            published.last_modified.encode(),
            published.expires.encode(),
            self.etag,
        )
        self.second = -1
        self.rendered = b""


class Site:
    """Routes one request to its answer. Shared by every connection of a worker."""

    def __init__(
        self,
        *,
        responder: responder_mod.Responder,
        store: store_mod.ResponseStore,
        ocsp_path: str,
        ca_path: str,
        ca_der: bytes,
        max_body: int = MAX_BODY,
        idle_timeout: float = IDLE_TIMEOUT,
    ) -> None:
        self.responder = responder
        self.store = store
        self.ocsp_prefix = ocsp_path.rstrip("/").encode() + b"/"
        self.ca_path = ca_path.encode()
        self.ca_der = ca_der
        self.max_body = max_body
        self.idle_timeout = idle_timeout
        self.connections: dict[HttpProtocol, float] = {}
        """Open connections and when each last received data (loop time)."""
        self._sweeping = False
        self.clock = Clock()
        self.clock.tick()
        self._answers: dict[bytes, _Cacheable] = {}
        self._generation = store.generation
        self._counters: dict[str, Any] = {}  # label -> prometheus child, made on first use

    def opened(self, connection: HttpProtocol) -> None:
        loop = asyncio.get_running_loop()
        self.connections[connection] = loop.time()
        if not self._sweeping:
            self._sweeping = True
            loop.call_later(self.idle_timeout / 3, self._sweep)

    def _sweep(self) -> None:
        loop = asyncio.get_running_loop()
        deadline = loop.time() - self.idle_timeout
        for connection, last in list(self.connections.items()):
            if last < deadline:
                connection.close_idle()
        if self.connections:
            loop.call_later(self.idle_timeout / 3, self._sweep)
        else:
            self._sweeping = False

    def count(self, label: str) -> None:
        child = self._counters.get(label)
        if child is None:
            child = self._counters[label] = metrics.OCSP_REQUESTS.labels(label)
        child.inc()

    def _cached(self, key: bytes) -> _Cacheable | None:
        if self.store.generation != self._generation:
            self._answers.clear()
            self._generation = self.store.generation
        cached = self._answers.get(key)
        if cached is not None and cached.next_update <= self.clock.now:
            del self._answers[key]
            return None
        return cached

    def _remember(self, key: bytes, answer: responder_mod.Answer) -> None:
        if answer.published is not None and self.store.generation == self._generation:
            if len(self._answers) >= _MAX_CACHED_ANSWERS:
                self._answers.clear()
            self._answers[key] = _Cacheable(answer)

    def ocsp_http(
        self, answer: responder_mod.Answer | _Cacheable, if_none_match: bytes | None, close: bool
    ) -> bytes:
        date = self.clock.date
        if isinstance(answer, _Cacheable):
            cacheable = answer
            answer = cacheable.answer
            self.count(answer.label)
            metrics.OCSP_RESPONSE_AGE.observe(max(0.0, self.clock.now - cacheable.age_from))
            if not close and if_none_match is None and cacheable.second == self.clock.second:
                return cacheable.rendered
            max_age = max(0, int(cacheable.next_update - self.clock.now))
            headers = cacheable.headers + (
                b"Cache-Control: max-age=%d, public, no-transform, must-revalidate\r\n" % max_age
            )
            if if_none_match is not None and cacheable.etag in if_none_match:
                return response(304, b"", _OCSP, date, headers, close=close)
            rendered = response(200, answer.der, _OCSP, date, headers, close=close)
            if not close:
                cacheable.second = self.clock.second
                cacheable.rendered = rendered
            return rendered
        self.count(answer.label)
        return response(200, answer.der, _OCSP, date, _NO_STORE, close=close)

    def ocsp(
        self,
        key: bytes,
        load: Callable[[], bytes | None],
        if_none_match: bytes | None,
        close: bool,
    ) -> bytes | asyncio.Task[bytes]:
        """Answer an OCSP request; `key` identifies it (method + path or body), `load()` gives
        its DER (None: undecodable) and runs only when the answer is not cached."""
        cached = self._cached(key)
        if cached is not None:
            return self.ocsp_http(cached, if_none_match, close)
        der = load()
        if der is None:
            return self.ocsp_http(responder_mod.MALFORMED, None, close)
        decided = self.responder.decide(der)
        if isinstance(decided, responder_mod.Answer):
            self._remember(key, decided)
            cached = self._answers.get(key)
            return self.ocsp_http(cached or decided, if_none_match, close)

        async def slow() -> bytes:
            answer = await self.responder.answer(der)
            self._remember(key, answer)
            return self.ocsp_http(self._answers.get(key) or answer, if_none_match, close)

        return asyncio.ensure_future(slow())

    def get(
        self, path: bytes, if_none_match: bytes | None, close: bool
    ) -> bytes | asyncio.Task[bytes]:
        date = self.clock.date
        if path.startswith(_CRL_PREFIX):
            return self.crl(path[len(_CRL_PREFIX) :], if_none_match, close)
        if path == self.ca_path:
            return response(200, self.ca_der, b"application/pkix-cert", date, close=close)
        if path == b"/healthz":
            return response(200, b"ok\n", b"text/plain", date, _NO_STORE, close=close)
        if path == b"/metrics":
            body = generate_latest(metrics.REGISTRY)
            return response(200, body, CONTENT_TYPE_LATEST.encode(), date, _NO_STORE, close=close)
        # Last: with the OCSP URL at "/", every other path is a candidate request.
        if path.startswith(self.ocsp_prefix) and len(path) > len(self.ocsp_prefix):
            encoded = path[len(self.ocsp_prefix) :]
            return self.ocsp(b"G" + encoded, lambda: _decode_get(encoded), if_none_match, close)
        return response(404, b"not found\n", b"text/plain", date, close=close)

    def crl(self, name: bytes, if_none_match: bytes | None, close: bool) -> bytes:
        date = self.clock.date
        shard_text = name.removesuffix(b".crl")
        published = None
        if shard_text.isdigit() and len(shard_text) < 6 and name.endswith(b".crl"):
            published = self.store.crls.get(int(shard_text))
        if published is None:
            return response(404, b"no such CRL\n", b"text/plain", date, close=close)
        max_age = max(0, int(published.next_update.timestamp() - self.clock.now))
        etag = published.etag.encode()
        headers = (
            b"Last-Modified: %s\r\nExpires: %s\r\nETag: %s\r\n"
            b"Cache-Control: max-age=%d, public, no-transform\r\n"
            % (
                published.last_modified.encode(),
                published.expires.encode(),
                etag,
                max_age,
            )
        )
        if if_none_match is not None and etag in if_none_match:
            return response(304, b"", b"application/pkix-crl", date, headers, close=close)
        return response(200, published.der, b"application/pkix-crl", date, headers, close=close)


def _decode_get(encoded: bytes) -> bytes | None:
    """RFC 5019 §5 / RFC 6960 §A.1: url-encoding of base64 encoding of the DER request."""
    try:
        text = urllib.parse.unquote_to_bytes(encoded).translate(_URLSAFE)
        text += b"=" * (-len(text) % 4)
        return binascii.a2b_base64(text, strict_mode=True)
    except (binascii.Error, ValueError):
        return None


_URLSAFE = bytes.maketrans(b"-_", b"+/")


class HttpProtocol(asyncio.Protocol):
    """One client connection: parse requests with httptools, answer them in order."""

    def __init__(self, site: Site) -> None:
        self.site = site
        self.parser = httptools.HttpRequestParser(self)
        self.transport: asyncio.Transport | None = None
        self.queue: collections.deque[bytes | asyncio.Task[bytes]] = collections.deque()
        self._closing = False
        self._url = b""
        self._body: list[bytes] = []
        self._body_size = 0
        self._if_none_match: bytes | None = None
        self._content_length = 0

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self.site.opened(self)

    def close_idle(self) -> None:
        self._closing = True
        self.site.connections.pop(self, None)
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.site.connections.pop(self, None)
        self._closing = True
        for item in self.queue:
            if isinstance(item, asyncio.Task):
                item.cancel()
        self.queue.clear()

    def data_received(self, data: bytes) -> None:
        if self._closing:
            return
        self.site.connections[self] = asyncio.get_running_loop().time()
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(400, b"upgrades are not supported\n")
        except httptools.HttpParserError:
            if not self._closing:
                self._fail(400, b"malformed HTTP request\n")

    def _fail(self, status: int, message: bytes) -> None:
        self._closing = True
        self._send(response(status, message, b"text/plain", self.site.clock.date, close=True))

    # httptools callbacks -----------------------------------------------------------------------

    def on_message_begin(self) -> None:
        self._url = b""
        self._body = []
        self._body_size = 0
        self._if_none_match = None
        self._content_length = 0

    def on_url(self, url: bytes) -> None:
        self._url += url
        if len(self._url) > MAX_URL:
            self._fail(414, b"URL too long\n")
            raise httptools.HttpParserError("URL too long")

    def on_header(self, name: bytes, value: bytes) -> None:
        lowered = name.lower()
        if lowered == b"if-none-match":
            self._if_none_match = value
        elif lowered == b"content-length" and value.isdigit():
            self._content_length = int(value)

    def on_headers_complete(self) -> None:
        if self._content_length > self.site.max_body:
            self._too_large()

    def on_body(self, body: bytes) -> None:
        self._body_size += len(body)
        if self._body_size > self.site.max_body:
            self._too_large()
        self._body.append(body)

    def _too_large(self) -> None:
        # RFC 6960 §4.2.1: anything that is not an acceptable request is malformedRequest; the
        # body is not read, so the connection cannot be reused.
        self._closing = True
        self._send(self.site.ocsp_http(responder_mod.MALFORMED, None, True))
        raise httptools.HttpParserError("body too large")

    def on_message_complete(self) -> None:
        self.site.clock.tick()
        close = not self.parser.should_keep_alive()
        self._closing = close
        method = self.parser.get_method()
        path = self._url.split(b"?", 1)[0]
        item: bytes | asyncio.Task[bytes]
        if method == b"GET":
            item = self.site.get(path, self._if_none_match, close)
        elif method == b"POST":
            body = b"".join(self._body)
            item = self.site.ocsp(b"P" + body, lambda: body, None, close)
        else:
            item = response(
                405,
                b"use GET or POST\n",
                b"text/plain",
                self.site.clock.date,
                b"Allow: GET, POST\r\n",
                close=close,
            )
        self._send(item)

    # ordered output --------------------------------------------------------------------------

    def _send(self, item: bytes | asyncio.Task[bytes]) -> None:
        if isinstance(item, bytes) and not self.queue:
            self._write(item)
            return
        self.queue.append(item)
        if isinstance(item, asyncio.Task):
            item.add_done_callback(lambda _t: self._flush())
        self._flush()

    def _flush(self) -> None:
        while self.queue:
            head = self.queue[0]
            if isinstance(head, asyncio.Task):
                if not head.done():
                    return
                self.queue.popleft()
                if head.cancelled():
                    continue
                exc = head.exception()
                data = (
                    self.site.ocsp_http(responder_mod.INTERNAL_ERROR, None, True)
                    if exc is not None
                    else head.result()
                )
            else:
                self.queue.popleft()
                data = head
            self._write(data)

    def _write(self, data: bytes) -> None:
        transport = self.transport
        if transport is None or transport.is_closing():
            return
        transport.write(data)
        if self._closing and not self.queue:
            transport.close()
