"""The user-data part of Binance's WebSocket API (``/ws-api/v3``), the way today's SDKs follow their own orders:
python-binance's ``user_socket`` and binance-sdk-spot's ``user_data_stream_subscribe_signature`` subscribe on it,
not with a listen key.

Requests are ``{"id", "method", "params"}`` and answers ``{"id", "status": 200, "result", "rateLimits"}`` or
``{"id", "status": 4xx, "error": {"code", "msg"}, "rateLimits"}`` (``rateLimits`` empty: these calls are not
weighed; binance-sdk-spot reads the field on every answer). Served: ``ping``, ``time``,
``userDataStream.subscribe.signature`` (params ``apiKey``, ``timestamp``, ``signature``, optional
``recvWindow``; the signature is Binance's over every other parameter, sorted by name and form-encoded as the
clients encode them; one subscription per account and session, as Binance: another is -2035),
``userDataStream.unsubscribe`` and ``session.subscriptions``; any other method is a 400 with -1000. A
subscription's events come as ``{"subscriptionId": N, "event": <executionReport>}``, in engine order, through
the connection's bounded queue (``sockets``).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Mapping
from typing import Any
from urllib.parse import urlencode

from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket

from ..fanout import Subscriber
from .api import BinanceApi
from .errors import BinanceError, Code, mandatory
from .signing import check_fresh, sign
from .sockets import offer_json, parse_request, serve_socket

__all__ = ["routes"]


class _Session:
    def __init__(self, api: BinanceApi, websocket: WebSocket) -> None:
        self.api = api
        self.subscriber = Subscriber(websocket.send_text, api.gateway.config.ws_queue)
        self.subscriptions: dict[int, int] = {}  #: subscription id -> account
        self._next_id = 0

    def _offer(self, message: Mapping[str, Any]) -> None:
        offer_json(self.subscriber, message)

    def _subscribe(self, params: Mapping[str, Any]) -> dict[str, Any]:
        api_key = params.get("apiKey")
        signature = params.get("signature")
        cred = self.api.keyring.lookup(api_key if isinstance(api_key, str) else None)
        if cred.secret is None:
            raise BinanceError(401, Code.REJECTED_MBX_KEY, "Invalid API-key, IP, or permissions for action.")
        if not isinstance(signature, str) or not signature:
            raise mandatory("signature")
        payload = urlencode(sorted((k, v) for k, v in params.items() if k != "signature"))
        if not hmac.compare_digest(sign(cred.secret, payload.encode()).encode(), signature.lower().encode()):
            raise BinanceError(400, Code.INVALID_SIGNATURE, "Signature for this request is not valid.")
        check_fresh({k: str(v) for k, v in params.items()}, time.time_ns() // 1_000_000)
        if cred.client_id in self.subscriptions.values():  # one per account and session, as Binance
            raise BinanceError(400, Code.SUBSCRIPTION_ACTIVE, "User Data Stream subscription already active.")
        ident = self._next_id
        self._next_id += 1
        self.subscriptions[ident] = cred.client_id
        prefix = f'{{"subscriptionId":{ident},"event":'
        self.api.userdata.sinks.setdefault(cred.client_id, {})[(id(self), ident)] = lambda report: (
            self.subscriber.offer(prefix + report + "}")
        )
        return {"subscriptionId": ident}

    def _unsubscribe(self, params: Mapping[str, Any]) -> dict[str, Any]:
        wanted = params.get("subscriptionId")
        for ident in [i for i in self.subscriptions if wanted is None or i == wanted]:
            self._drop(ident)
        return {}

    def _drop(self, ident: int) -> None:
        account = self.subscriptions.pop(ident)
        self.api.userdata.sinks.get(account, {}).pop((id(self), ident), None)

    def handle(self, text: str) -> None:
        request = parse_request(text)
        if request is None:
            self._offer({"id": None, "status": 400, "error": {"code": int(Code.ILLEGAL_CHARS),
                                                              "msg": "Invalid JSON request."}})  # fmt: skip
            return
        ident, method, params = request.get("id"), request.get("method"), request.get("params") or {}
        try:
            if not isinstance(params, dict):
                raise BinanceError(400, Code.INVALID_PARAMETER, "Invalid data sent for a parameter.")
            if method == "ping":
                result: Any = {}
            elif method == "time":
                result = {"serverTime": time.time_ns() // 1_000_000}
            elif method == "userDataStream.subscribe.signature":
                result = self._subscribe(params)
            elif method == "userDataStream.unsubscribe":
                result = self._unsubscribe(params)
            elif method == "session.subscriptions":
                result = [{"subscriptionId": i} for i in sorted(self.subscriptions)]
            else:
                raise BinanceError(400, Code.UNKNOWN, f"Unknown method: {method}")
        except BinanceError as e:
            self._offer({"id": ident, "status": e.status, "error": {"code": int(e.code), "msg": e.msg},
                         "rateLimits": []})  # fmt: skip
            return
        self._offer({"id": ident, "status": 200, "result": result, "rateLimits": []})

    def release(self) -> None:
        for ident in list(self.subscriptions):
            self._drop(ident)


async def ws_api(websocket: WebSocket) -> None:
    session = _Session(websocket.state.binance, websocket)
    await serve_socket(
        session.api, websocket, session.subscriber, session.handle, session.release, "binance-wsapi-writer"
    )


def routes() -> list[WebSocketRoute]:
    return [WebSocketRoute("/ws-api/v3", ws_api)]
