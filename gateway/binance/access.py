"""Which requests are the Binance API's, and its request weight, as one pure ASGI middleware in front of the
gateway's own (``gateway.access.AccessMiddleware``).

The Binance paths (``/api/v3/...``, ``/stream...``, ``/ws/<stream or listenKey>`` and ``/ws-api/v3``) follow
Binance's rules, not the gateway's: their key header is ``X-MBX-APIKEY`` and signed calls are checked by
their route (the signature covers the body, which only the route reads), public calls need no key, limits
are request weights per minute (``weights.py``) and errors are Binance's bodies; each HTTP request's latency
and status go to the gateway's metrics like its own. Every other path goes to the gateway's middleware
unchanged.

A body is read here, whole, up to ``max_body_bytes`` (the gateway's limit, the same for both APIs; Binance's
parameters are a short form) and replayed to the route; a longer one, declared or streamed, is refused at
once with 413 and -1101, before anything buffers it, as the gateway's own middleware refuses it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ..config import GatewayConfig
from ..metrics import Metrics
from .errors import Code, error_response
from .weights import WeightLimiter, weight_of

__all__ = ["BinanceAccess", "is_binance_path", "read_body"]

#: the body limit when none is given: the gateway's default
MAX_BODY_BYTES = GatewayConfig.max_body_bytes

#: the gateway's own WebSocket paths under /ws/
_GATEWAY_WS = ("/ws/md", "/ws/fills/")


def is_binance_path(path: str) -> bool:
    if path.startswith(("/api/v3/", "/stream", "/ws-api/")):
        return True
    return path.startswith("/ws/") and not path.startswith(_GATEWAY_WS)


class BinanceAccess:
    """See the module docstring. ``other`` wraps the app in the gateway's own middleware."""

    def __init__(self, app: ASGIApp, *, other: Callable[[ASGIApp], ASGIApp], limiter: WeightLimiter,
                 metrics: Metrics | None = None, max_body_bytes: int = MAX_BODY_BYTES) -> None:  # fmt: skip
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.other = other(app)
        self.limiter = limiter
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket") or not is_binance_path(scope["path"]):
            await self.other(scope, receive, send)
            return
        if scope["type"] == "websocket":
            await self.app(scope, receive, send)
            return
        # by address, as Binance weighs: a key header is not verified yet here (only a signed route can), so
        # keying by it would let anyone spend another's budget, or dodge the limit with made-up keys
        client = scope.get("client")
        caller = f"peer:{client[0]}" if client else "peer:?"
        allowed, used, retry = self.limiter.hit(caller, weight_of(scope["method"], scope["path"],
                                                                  scope.get("query_string", b"")))  # fmt: skip
        used_headers = [(b"x-mbx-used-weight", str(used).encode()), (b"x-mbx-used-weight-1m", str(used).encode())]
        if not allowed:
            msg = (f"Too much request weight used; current limit is {self.limiter.per_minute} request weight per "
                   "1 MINUTE. Please use WebSocket Streams for live updates to avoid polling the API.")  # fmt: skip
            response = error_response(429, Code.TOO_MANY_REQUESTS, msg, {"Retry-After": str(retry)})
            response.raw_headers.extend(used_headers)
            await response(scope, receive, send)
            return

        try:
            body = await read_body(scope, receive, self.max_body_bytes)
        except ClientDisconnect:
            return
        if body is None:
            response = error_response(413, Code.TOO_MANY_PARAMETERS, "Too many parameters sent for this endpoint.")
            response.raw_headers.extend(used_headers)
            await response(scope, receive, send)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()  # only a disconnect is left to come
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        status = 500

        async def sending(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
                message = {**message, "headers": [*message.get("headers", ()), *used_headers]}
            await send(message)

        start = time.perf_counter()
        try:
            await self.app(scope, replay, sending)
        finally:
            if self.metrics is not None:  # the gateway's request metrics, by path (Binance's have no parameters)
                path = scope["path"] if scope["path"].startswith("/api/v3/") else "unmatched"
                self.metrics.request_done(scope["method"], path, status, time.perf_counter() - start)


async def read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The request's whole body; None once it is known to be over ``limit`` bytes (declared or read);
    ``ClientDisconnect`` if the client leaves before its end."""
    for name, value in scope.get("headers", ()):
        if name == b"content-length" and (not value.isdigit() or int(value) > limit):
            return None
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise ClientDisconnect()  # gone mid-body: a cut request is not acted on
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            return b"".join(chunks)
