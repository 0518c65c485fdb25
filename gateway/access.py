"""Who is calling, how often, how much: one pure ASGI middleware for HTTP and WebSocket scopes alike.

Starlette's ``BaseHTTPMiddleware`` sees only ``http`` scopes, so a check written with it would silently skip
``/ws/*``; this one handles both, in this order:

1. **Auth.** The API key (header ``X-API-Key``; a WebSocket may also pass ``?api_key=``, since browsers cannot
   set headers on one) names one account: the :class:`Principal` stored in the scope under
   :data:`PRINCIPAL`, which routes compare with the account a request names (403 when they differ). No key or
   an unknown one: 401 with ``WWW-Authenticate``; a WebSocket is refused before it is accepted (an HTTP 401
   denial response where the server supports it, else close code 1008). Keys are compared in constant time.
   Public paths (health, metrics, docs, the book, ``/ws/md``, the dashboard's page and files) need no key.
   With ``auth`` off every request is a principal with no account, which may act for any of the gateway's
   accounts.
2. **Rate limit.** One token bucket per account (per peer address for a request without one), a cost per call
   (a mass cancel costs ``mass_cancel_cost``); over the limit: 429 with ``Retry-After`` in whole seconds.
3. **Body size.** A declared ``Content-Length`` over ``max_body_bytes`` is refused at once (413); a chunked
   body is counted as it is read and refused the moment it goes over.
4. **Metrics.** Each HTTP request's latency by route template, and its status.
"""

from __future__ import annotations

import hmac
import math
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import ApiError, ErrorBody, ErrorCode
from .metrics import Metrics
from .ratelimit import RateLimiter

__all__ = ["API_KEY_HEADER", "AccessMiddleware", "PRINCIPAL", "PUBLIC_PATHS", "PUBLIC_PREFIXES", "Principal"]

#: the header that carries the API key
API_KEY_HEADER = "X-API-Key"
#: the scope key the principal is stored under
PRINCIPAL = "proptrade.principal"
#: paths anyone may call: health, metrics, the API docs, public market data and the dashboard page
PUBLIC_PATHS = frozenset({"/health", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc", "/openapi.json",
                          "/book", "/ws/md", "/"})  # fmt: skip
#: path prefixes anyone may call: the dashboard's files
PUBLIC_PREFIXES = ("/static/",)
#: paths outside the rate limit (monitoring must see an overloaded gateway)
UNLIMITED_PATHS = frozenset({"/health", "/metrics"})


@dataclass(frozen=True)
class Principal:
    """The caller: ``account`` its key's account, None when auth is off (or on a public path)."""

    account: str | None
    key: str  #: the rate limit's key


def _body(code: ErrorCode, message: str) -> bytes:
    return ErrorBody(code=code, message=message).model_dump_json().encode()


class AccessMiddleware:
    """See the module docstring. ``keys``: API key -> account name; None switches auth off."""

    def __init__(self, app: ASGIApp, *, keys: Mapping[str, str] | None, limiter: RateLimiter, max_body_bytes: int,
                 metrics: Metrics, mass_cancel_cost: float = 10.0) -> None:  # fmt: skip
        self.app = app
        self.keys = None if keys is None else [(k.encode(), v) for k, v in keys.items()]
        self.limiter = limiter
        self.max_body_bytes = max_body_bytes
        self.metrics = metrics
        self.mass_cancel_cost = mass_cancel_cost

    def _account(self, key: str) -> str | None:
        assert self.keys is not None
        given = key.encode()
        found = None
        for known, account in self.keys:  # every key compared, in constant time each: no timing oracle
            if hmac.compare_digest(given, known):
                found = account
        return found

    @staticmethod
    def _presented_key(scope: Scope) -> str | None:
        headers: list[tuple[bytes, bytes]] = scope.get("headers", [])
        for name, value in headers:
            if name == b"x-api-key":
                return value.decode("latin-1")
        if scope["type"] == "websocket":
            query: bytes = scope.get("query_string", b"")
            values = parse_qs(query.decode("latin-1")).get("api_key")
            if values:
                return values[0]
        return None

    def _cost(self, scope: Scope) -> float:
        if scope["type"] == "http" and scope["method"] == "DELETE" and scope["path"].startswith("/orders/"):
            return self.mass_cancel_cost
        return 1.0

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        client = scope.get("client")
        peer = f"peer:{client[0]}" if client else "peer:?"
        account = None
        if self.keys is not None and path not in PUBLIC_PATHS and not path.startswith(PUBLIC_PREFIXES):
            key = self._presented_key(scope)
            account = self._account(key) if key else None
            if account is None:
                what = "no API key" if not key else "an unknown API key"
                await self._refuse(scope, receive, send, 401, ErrorCode.UNAUTHORIZED,
                                   f"{what}: send it in the {API_KEY_HEADER} header",
                                   {"WWW-Authenticate": API_KEY_HEADER})  # fmt: skip
                return
        principal = Principal(account, f"account:{account}" if account else peer)
        scope[PRINCIPAL] = principal
        if path not in UNLIMITED_PATHS:
            cost = self._cost(scope)
            if not self.limiter.hit(principal.key, cost):
                window = self.limiter.window(principal.key, cost)
                retry = max(1, math.ceil(window.retry_after_s))
                message = (f"rate limit: {self.limiter.rate_per_s:g} requests/s, burst {self.limiter.burst:g}; "
                           f"retry in {retry} s")  # fmt: skip
                await self._refuse(scope, receive, send, 429, ErrorCode.RATE_LIMITED, message,
                                   {"Retry-After": str(retry)})  # fmt: skip
                return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        await self._http(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        length = None
        for name, value in scope.get("headers", ()):
            if name == b"content-length":
                try:
                    length = int(value)
                except ValueError:
                    length = -1
        if length is not None and (length < 0 or length > self.max_body_bytes):
            status, code = (413, ErrorCode.BODY_TOO_LARGE) if length > 0 else (400, ErrorCode.INVALID_REQUEST)
            message = f"the body must be at most {self.max_body_bytes} bytes (Content-Length {length})"
            await self._refuse(scope, receive, send, status, code, message)
            return
        seen = 0
        limit = self.max_body_bytes

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise ApiError(413, ErrorCode.BODY_TOO_LARGE, f"the body must be at most {limit} bytes")
            return message

        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, counted, sending)
        finally:
            route = scope.get("route")
            template = getattr(route, "path", None) or "unmatched"
            self.metrics.request_done(scope["method"], template, status, time.perf_counter() - start)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, status: int, code: ErrorCode, message: str,
                      headers: Mapping[str, str] | None = None) -> None:  # fmt: skip
        self.metrics.refused.labels(code).inc()
        body = _body(code, message)
        raw: list[tuple[bytes, bytes]] = [(b"content-type", b"application/json"),
                                          (b"content-length", str(len(body)).encode())]  # fmt: skip
        raw += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
        if scope["type"] == "http":
            self.metrics.responses.labels(str(status)).inc()
            await send({"type": "http.response.start", "status": status, "headers": raw})
            await send({"type": "http.response.body", "body": body})
            return
        connect: dict[str, Any] = dict(await receive())  # the websocket.connect message comes first
        if connect.get("type") != "websocket.connect":
            return
        if "websocket.http.response" in scope.get("extensions", {}):
            await send({"type": "websocket.http.response.start", "status": status, "headers": raw})
            await send({"type": "websocket.http.response.body", "body": body})
        else:
            await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
