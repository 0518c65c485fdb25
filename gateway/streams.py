"""The WebSocket routes: ``/ws/md`` (public market data) and ``/ws/fills/{client_id}`` (one account's events).

Each connection is a :class:`~gateway.fanout.Subscriber`: the gateway's tasks offer it frames, its writer task
sends them, and a reader task takes the client's messages (``{"op": "snapshot"}`` on ``/ws/md`` asks for
fresh snapshots, the way to resubscribe after a gap; ``{"op": "ping"}`` is answered ``{"type": "pong"}``). The
connection ends when the client goes, the gateway shuts down (close 1001), or the client falls ``ws_queue``
frames behind (close :data:`~gateway.fanout.CLOSE_SLOW_CONSUMER`).

``/ws/md?symbol=S`` subscribes to one symbol (default: every symbol); a snapshot of each comes first, then
deltas and trades (``market.py`` has the messages). ``/ws/fills/{client_id}`` needs the account's key (401
without, 403 for another account's stream, both before the connection is accepted) and carries its acks,
fills, cancels, modifies and rejects in engine order.
"""

from __future__ import annotations

import asyncio
import contextlib

import orjson
from fastapi import WebSocket
from fastapi.routing import APIWebSocketRoute
from starlette.responses import JSONResponse
from starlette.websockets import WebSocketDisconnect

from .access import PRINCIPAL, Principal
from .errors import ErrorBody, ErrorCode
from .fanout import CLOSE_SLOW_CONSUMER, Subscriber, Topic
from .market import dumps
from .service import Gateway

__all__ = ["routes"]

#: close code when the gateway shuts down
CLOSE_GOING_AWAY = 1001
#: how long closing a connection may wait for the client to read what is before the close frame (bounded: a
#: client that reads nothing never holds its handler longer)
CLOSE_TIMEOUT_S = 10.0


async def _deny(websocket: WebSocket, status: int, code: ErrorCode, message: str) -> None:
    body = ErrorBody(code=code, message=message).model_dump(mode="json")
    await websocket.send_denial_response(JSONResponse(body, status_code=status))


async def _serve(websocket: WebSocket, gateway: Gateway, subscriber: Subscriber, topics: list[Topic], stream: str,
                 symbols: list[int]) -> None:  # fmt: skip
    """Runs one accepted connection until it ends (see the module docstring)."""
    gateway.metrics.ws_clients.labels(stream).inc()
    writer = gateway.spawn(subscriber.write(), f"ws-{stream}-writer")
    reader = gateway.spawn(_read(websocket, gateway, subscriber, symbols), f"ws-{stream}-reader")
    try:
        await asyncio.wait({writer, reader}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for topic in topics:
            topic.discard(subscriber)
        dropped = subscriber.dropped
        subscriber.close()
        for task in (writer, reader):
            task.cancel()
        gateway.metrics.ws_clients.labels(stream).dec()
        if dropped:
            gateway.metrics.ws_dropped.labels(stream).inc()
        code = CLOSE_SLOW_CONSUMER if dropped else CLOSE_GOING_AWAY
        with contextlib.suppress(Exception):
            await asyncio.wait_for(websocket.close(code, "slow consumer" if dropped else ""), CLOSE_TIMEOUT_S)


async def _read(websocket: WebSocket, gateway: Gateway, subscriber: Subscriber, symbols: list[int]) -> None:
    while True:
        try:
            text = await websocket.receive_text()
        except (WebSocketDisconnect, RuntimeError, KeyError):
            return
        try:
            op = orjson.loads(text).get("op")
        except (orjson.JSONDecodeError, AttributeError):
            op = None
        if op == "snapshot":
            for sid in symbols:  # no await between: each snapshot sits at its place in the stream
                subscriber.offer(dumps(gateway.market.snapshot(sid)))
        elif op == "ping":
            subscriber.offer('{"type":"pong"}')
        else:
            subscriber.offer(dumps({"type": "error", "code": ErrorCode.INVALID_REQUEST,
                                    "message": 'send {"op": "snapshot"} or {"op": "ping"}'}))  # fmt: skip


async def ws_md(websocket: WebSocket, symbol: str | None = None) -> None:
    """Market data: a snapshot per symbol, then its deltas and trades, each with the symbol's next seq."""
    gateway: Gateway = websocket.state.gateway
    if symbol is None:
        symbols = sorted(gateway.market.symbol_names)
    elif symbol in gateway.market.symbol_ids:
        symbols = [gateway.market.symbol_ids[symbol]]
    else:
        await _deny(websocket, 404, ErrorCode.UNKNOWN_SYMBOL, f"no symbol {symbol!r}")
        return
    await websocket.accept()
    subscriber = Subscriber(websocket.send_text, gateway.config.ws_queue)
    topics = [gateway.market.topics[sid] for sid in symbols]
    for sid, topic in zip(symbols, topics, strict=True):  # no await from the snapshot to the subscription
        subscriber.offer(dumps(gateway.market.snapshot(sid)))
        topic.add(subscriber)
    await _serve(websocket, gateway, subscriber, topics, "md", symbols)


async def ws_fills(websocket: WebSocket, client_id: str) -> None:
    """One account's events in engine order: ack, fill, cancel, modified, reject, mass_cancel; heartbeats."""
    gateway: Gateway = websocket.state.gateway
    principal: Principal = websocket.scope[PRINCIPAL]
    if principal.account is not None and principal.account != client_id:
        await _deny(websocket, 403, ErrorCode.FORBIDDEN,
                    f"this API key belongs to {principal.account!r}, not {client_id!r}")  # fmt: skip
        return
    cid = gateway.account_ids.get(client_id)
    if cid is None:
        await _deny(websocket, 404, ErrorCode.UNKNOWN_ACCOUNT, f"no account {client_id!r} at this gateway")
        return
    await websocket.accept()
    subscriber = Subscriber(websocket.send_text, gateway.config.ws_queue)
    topic = gateway.account_topics[cid]
    topic.add(subscriber)
    await _serve(websocket, gateway, subscriber, [topic], "fills", [])


def routes() -> list[APIWebSocketRoute]:
    return [APIWebSocketRoute("/ws/md", ws_md), APIWebSocketRoute("/ws/fills/{client_id}", ws_fills)]
