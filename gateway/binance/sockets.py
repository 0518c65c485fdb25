"""One Binance WebSocket connection's life, shared by the stream sockets (``ws``) and the WebSocket API
(``wsapi``): accept, read requests, write through the connection's :class:`~gateway.fanout.Subscriber`, and
clean up.

Choices:

- **Requests are handled as they come, answers queued with the data** (one writer per connection, the
  subscriber's bounded queue), so an acknowledgement follows every frame queued before it.
- **The reader and the writer are watched together**: the connection ends when the client goes or when its
  writer stops (dropped as slow, or closed at shutdown), whichever comes first.
- **Clean-up always runs**, once, even when the client is gone before the accept completes: what the
  connection subscribed to is released (``release``), so no topic keeps a subscriber that nobody serves.
  Closing waits :data:`CLOSE_TIMEOUT_S` at most on a client that reads nothing; a dropped one gets
  :data:`~gateway.fanout.CLOSE_SLOW_CONSUMER`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from starlette.websockets import WebSocket, WebSocketDisconnect, WebSocketState

from ..fanout import CLOSE_SLOW_CONSUMER, Subscriber
from .api import BinanceApi

__all__ = ["CLOSE_TIMEOUT_S", "offer_json", "parse_request", "serve_socket"]

#: how long closing a connection may wait on a client that reads nothing
CLOSE_TIMEOUT_S = 5.0


async def serve_socket(api: BinanceApi, websocket: WebSocket, subscriber: Subscriber, handle: Callable[[str], None],
                       release: Callable[[], None], name: str) -> None:  # fmt: skip
    """Serves one connection until it ends (see the module docstring): ``handle`` takes each text request,
    ``release`` undoes its subscriptions; ``name`` names its writer task."""
    api.connections.add(subscriber)
    writer: asyncio.Task[None] | None = None
    try:
        if websocket.application_state == WebSocketState.CONNECTING:
            await websocket.accept()
        writer = api.gateway.spawn(subscriber.write(), name)
        while not subscriber.closed:
            receive = asyncio.ensure_future(websocket.receive_text())
            done, _ = await asyncio.wait({receive, writer}, return_when=asyncio.FIRST_COMPLETED)
            if receive not in done:
                receive.cancel()
                with contextlib.suppress(BaseException):
                    await receive
                break
            try:
                text = receive.result()
            except (WebSocketDisconnect, RuntimeError, KeyError):
                break
            handle(text)
    finally:
        release()
        dropped = subscriber.dropped
        subscriber.close()
        api.connections.discard(subscriber)
        if writer is not None:
            writer.cancel()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(CLOSE_SLOW_CONSUMER if dropped else 1000), CLOSE_TIMEOUT_S)


def parse_request(text: str) -> dict[str, Any] | None:
    """A client's request: the JSON object ``text`` holds, None if it holds none."""
    try:
        request = orjson.loads(text)
    except orjson.JSONDecodeError:
        return None
    return request if isinstance(request, dict) else None


def offer_json(subscriber: Subscriber, message: Mapping[str, Any]) -> None:
    """Queues an answer behind the frames already queued for the connection."""
    subscriber.offer(orjson.dumps(message).decode())
