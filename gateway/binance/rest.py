"""The Binance REST routes (``/api/v3/...``): plain Starlette routes over :class:`~gateway.binance.api.BinanceApi`.

Not FastAPI routes with response models, on purpose: the bodies are Binance's (its field names, decimals as
strings), its docs are Binance's, and a signed call must be verified over the raw query and body before
anything parses them; so each route reads the raw request, answers bytes built with orjson, and turns every
refusal into Binance's ``{"code", "msg"}`` (an unexpected failure is logged and answered -1000). They are not in
``/openapi.json``. Public calls take no key; ``userDataStream`` takes the key only; the rest are signed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from .account import MAX_TRADES_LIMIT, TRADES_LIMIT
from .api import BinanceApi
from .errors import BinanceError, Code, error_response, illegal_chars
from .instruments import exchange_info
from .params import limit_param
from .signing import API_KEY_HEADER, Credential, parse_params, verify
from .views import public_trade_json

__all__ = ["DEPTH_LIMIT", "MAX_DEPTH_LIMIT", "rate_limits", "routes"]

log = logging.getLogger("proptrade.gateway.binance")

#: depth: the default and largest ``limit``
DEPTH_LIMIT, MAX_DEPTH_LIMIT = 100, 5000

Public = Callable[[BinanceApi, Mapping[str, str]], Any]
Signed = Callable[[BinanceApi, Credential, Mapping[str, str]], Awaitable[Any] | Any]


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


def _json(body: Any) -> Response:
    return Response(orjson.dumps(body), media_type="application/json")


async def _answer(work: Callable[[], Any]) -> Response:
    try:
        result = work()
        if isinstance(result, Awaitable):
            result = await result
    except BinanceError as e:
        return e.response()
    except Exception:  # a bug: logged, answered as Binance does
        log.exception("Binance API: unexpected error")
        return error_response(500, Code.UNKNOWN, "An unknown error occurred while processing the request.")
    return _json(result)


def public(handler: Public) -> Callable[[Request], Awaitable[Response]]:
    async def endpoint(request: Request) -> Response:
        api: BinanceApi = request.state.binance
        return await _answer(lambda: handler(api, parse_params([request.scope.get("query_string", b"")])))

    return endpoint


def _private(handler: Signed, *, signed: bool) -> Callable[[Request], Awaitable[Response]]:
    """A call that takes the API key and, if ``signed``, a signature over its query and body as received."""

    async def endpoint(request: Request) -> Response:
        api: BinanceApi = request.state.binance
        query, body = request.scope.get("query_string", b""), await request.body()

        def work() -> Any:
            cred = api.keyring.lookup(request.headers.get(API_KEY_HEADER))
            params = verify(cred, query, body, _now_ms()) if signed else parse_params([query, body])
            return handler(api, cred, params)

        return await _answer(work)

    return endpoint


def signed(handler: Signed) -> Callable[[Request], Awaitable[Response]]:
    return _private(handler, signed=True)


def keyed(handler: Signed) -> Callable[[Request], Awaitable[Response]]:
    """A call that takes the API key and no signature (the user-data stream's)."""
    return _private(handler, signed=False)


def rate_limits(weight_per_minute: int) -> list[dict[str, Any]]:
    """``exchangeInfo``'s ``rateLimits``: the weight per minute (orders are limited by the engine's risk)."""
    if not weight_per_minute:
        return []
    return [{"rateLimitType": "REQUEST_WEIGHT", "interval": "MINUTE", "intervalNum": 1, "limit": weight_per_minute}]


# --- public ------------------------------------------------------------------------------------------------


def _ping(api: BinanceApi, params: Mapping[str, str]) -> dict[str, Any]:
    return {}


def _time(api: BinanceApi, params: Mapping[str, str]) -> dict[str, Any]:
    return {"serverTime": _now_ms()}


def _symbols_param(api: BinanceApi, params: Mapping[str, str]) -> list[str] | None:
    if params.get("symbol"):
        inst = api.trading.instrument(params)
        assert inst is not None
        return [inst.name]
    if params.get("symbols"):
        try:
            names = orjson.loads(params["symbols"])
        except orjson.JSONDecodeError:
            names = None
        if not isinstance(names, list) or not names or not all(isinstance(n, str) for n in names):
            raise illegal_chars("symbols", '^\\[("[A-Z0-9-_.]{1,20}"(,"[A-Z0-9-_.]{1,20}"){0,}){0,1}\\]$')
        for name in names:
            api.trading.instrument({"symbol": name})
        return [n.upper() for n in names]
    return None


def _exchange_info(api: BinanceApi, params: Mapping[str, str]) -> dict[str, Any]:
    names = _symbols_param(api, params)
    picked = [i for n, i in sorted(api.instruments.items()) if names is None or n in names]
    return exchange_info(picked, _now_ms(), rate_limits(api.weight_per_minute))


def _depth(api: BinanceApi, params: Mapping[str, str]) -> dict[str, Any]:
    inst = api.trading.instrument(params)
    assert inst is not None
    return api.feed.depth(inst.symbol_id, limit_param(params, DEPTH_LIMIT, MAX_DEPTH_LIMIT))


def _trades(api: BinanceApi, params: Mapping[str, str]) -> list[dict[str, Any]]:
    inst = api.trading.instrument(params)
    assert inst is not None
    limit = limit_param(params, TRADES_LIMIT, MAX_TRADES_LIMIT)
    recent = list(api.feed.trades[inst.symbol_id])[-limit:]
    return [public_trade_json(inst, t.trade_id, t.price, t.qty, t.time_ms, t.buyer_maker) for t in recent]


def _book_ticker(api: BinanceApi, params: Mapping[str, str]) -> Any:
    names = _symbols_param(api, params)
    picked = [i for n, i in sorted(api.instruments.items()) if names is None or n in names]
    out = []
    for inst in picked:
        top = api.feed.top_json(inst.symbol_id)
        out.append({"symbol": inst.name, "bidPrice": top["b"], "bidQty": top["B"], "askPrice": top["a"],
                    "askQty": top["A"]})  # fmt: skip
    return out[0] if params.get("symbol") else out


# --- signed ------------------------------------------------------------------------------------------------


def _user_data_stream(method: str) -> Signed:
    def handler(api: BinanceApi, cred: Credential, params: Mapping[str, str]) -> dict[str, Any]:
        if method == "POST":
            return {"listenKey": api.userdata.create(cred.client_id)}
        if method == "PUT":
            api.userdata.keepalive(cred.client_id, params.get("listenKey"))
        else:
            api.userdata.close(cred.client_id, params.get("listenKey"))
        return {}

    return handler


def routes() -> list[Route]:
    """Every Binance REST route."""
    t = "/api/v3"
    return [
        Route(f"{t}/ping", public(_ping), methods=["GET"]),
        Route(f"{t}/time", public(_time), methods=["GET"]),
        Route(f"{t}/exchangeInfo", public(_exchange_info), methods=["GET"]),
        Route(f"{t}/depth", public(_depth), methods=["GET"]),
        Route(f"{t}/trades", public(_trades), methods=["GET"]),
        Route(f"{t}/ticker/bookTicker", public(_book_ticker), methods=["GET"]),
        Route(f"{t}/order", signed(lambda a, c, p: a.trading.new_order(c, p)), methods=["POST"]),
        Route(f"{t}/order/test", signed(lambda a, c, p: a.trading.new_order(c, p, test=True)), methods=["POST"]),
        Route(f"{t}/order", signed(lambda a, c, p: a.trading.query_order(c, p)), methods=["GET"]),
        Route(f"{t}/order", signed(lambda a, c, p: a.trading.cancel_order(c, p)), methods=["DELETE"]),
        Route(f"{t}/openOrders", signed(lambda a, c, p: a.trading.open_orders(c, p)), methods=["GET"]),
        Route(f"{t}/openOrders", signed(lambda a, c, p: a.trading.cancel_open_orders(c, p)), methods=["DELETE"]),
        Route(f"{t}/account", signed(lambda a, c, p: a.account.account(c, p)), methods=["GET"]),
        Route(f"{t}/myTrades", signed(lambda a, c, p: a.account.my_trades(c, p)), methods=["GET"]),
        *(Route(f"{t}/userDataStream", keyed(_user_data_stream(m)), methods=[m]) for m in ("POST", "PUT", "DELETE")),
    ]  # fmt: skip
