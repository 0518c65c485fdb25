"""The Binance WebSocket routes: market streams and the user-data stream, with SUBSCRIBE and UNSUBSCRIBE.

- ``/ws/<stream>[/<stream>...]``: raw frames (each message is the event itself); a stream may be a listen key,
  whose account's ``executionReport`` events it then carries. python-binance subscribes this way.
- ``/stream/ws/<n>``: raw frames, subscribed with messages (ccxt connects to numbered sockets and takes a URL
  with ``/stream`` in it for spot).
- ``/stream?streams=<a>/<b>``: combined frames ``{"stream": name, "data": event}``.

On any of them ``{"method": "SUBSCRIBE" | "UNSUBSCRIBE", "params": [names], "id": N}`` is acknowledged
``{"result": null, "id": N}`` after the change took effect, in order with the data (ccxt asks for its REST
snapshot only once it has that acknowledgement); ``LIST_SUBSCRIPTIONS`` answers the names. A request that is
not one of these, or names a stream that does not exist, is answered ``{"error": {"code": 2, "msg"}, "id"}``
and changes nothing. Each connection is a :class:`~gateway.fanout.Subscriber` (bounded queue, one writer, dropped
with close 4008 when it falls behind: ``sockets``); unknown streams in the URL refuse the connection (400)
before accept.
"""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from ..fanout import Subscriber, Topic
from .api import BinanceApi
from .sockets import offer_json, parse_request, serve_socket

__all__ = ["routes"]


def _topic(api: BinanceApi, name: str, combined: bool) -> Topic | None:
    """The topic of stream ``name`` (a market stream or a listen key), None if there is none."""
    symbol, at, kind = name.partition("@")
    streams = api.feed.stream(symbol.lower() + at + kind)  # the symbol in lower case, the kind as Binance spells it
    if streams is not None:
        return streams.combined if combined else streams.raw
    return None if combined else api.userdata.topic_of(name)


class _Connection:
    def __init__(self, api: BinanceApi, websocket: WebSocket, combined: bool) -> None:
        self.api = api
        self.websocket = websocket
        self.combined = combined
        self.subscriber = Subscriber(websocket.send_text, api.gateway.config.ws_queue)
        self.subscribed: dict[str, Topic] = {}

    def subscribe(self, names: list[str]) -> str | None:
        """Adds the streams; the first unknown name (and nothing added) if one is unknown."""
        topics = []
        for name in names:
            topic = _topic(self.api, name, self.combined)
            if topic is None:
                return name
            topics.append((name, topic))
        for name, topic in topics:
            topic.add(self.subscriber)
            self.subscribed[name] = topic
        return None

    def unsubscribe(self, names: list[str]) -> None:
        for name in names:
            topic = self.subscribed.pop(name, None)
            if topic is not None:
                topic.discard(self.subscriber)

    def handle(self, text: str) -> None:
        request = parse_request(text)
        if request is None:
            self._error(None, "Invalid JSON: expected a request object")
            return
        ident = request.get("id")
        method, params = request.get("method"), request.get("params", [])
        if method == "LIST_SUBSCRIPTIONS":
            self._offer({"result": sorted(self.subscribed), "id": ident})
            return
        if method not in ("SUBSCRIBE", "UNSUBSCRIBE"):
            self._error(ident, "Invalid request: unknown method")
            return
        if not isinstance(params, list) or not all(isinstance(p, str) for p in params):
            self._error(ident, "Invalid request: params must be a list of stream names")
            return
        if method == "SUBSCRIBE":
            unknown = self.subscribe(params)
            if unknown is not None:
                self._error(ident, f"Invalid request: unknown stream '{unknown}'")
                return
        else:
            self.unsubscribe(params)
        self._offer({"result": None, "id": ident})

    def _offer(self, message: dict[str, Any]) -> None:
        offer_json(self.subscriber, message)

    def _error(self, ident: Any, msg: str) -> None:
        self._offer({"error": {"code": 2, "msg": msg}, "id": ident})

    def release(self) -> None:
        self.unsubscribe(list(self.subscribed))


async def _open(websocket: WebSocket, names: list[str], combined: bool) -> None:
    api: BinanceApi = websocket.state.binance
    connection = _Connection(api, websocket, combined)
    unknown = connection.subscribe(names) if names else None
    if unknown is not None:
        connection.unsubscribe(list(connection.subscribed))
        body = orjson.dumps({"code": -1121, "msg": f"Invalid symbol or stream: '{unknown}'."})
        await websocket.send_denial_response(Response(body, status_code=400, media_type="application/json"))
        return
    await serve_socket(
        api, websocket, connection.subscriber, connection.handle, connection.release, "binance-ws-writer"
    )


async def raw_streams(websocket: WebSocket) -> None:
    names = [n for n in str(websocket.path_params["streams"]).split("/") if n]
    await _open(websocket, names, combined=False)


async def numbered(websocket: WebSocket) -> None:
    await _open(websocket, [], combined=False)


async def combined(websocket: WebSocket) -> None:
    names = [n for n in websocket.query_params.get("streams", "").split("/") if n]
    await _open(websocket, names, combined=True)


def routes() -> list[WebSocketRoute]:
    """The Binance WebSocket routes (after the gateway's own /ws/md and /ws/fills/..., which they must not
    shadow)."""
    return [
        WebSocketRoute("/stream/ws/{n}", numbered),
        WebSocketRoute("/stream/ws", numbered),
        WebSocketRoute("/stream", combined),
        WebSocketRoute("/ws/{streams:path}", raw_streams),
    ]
