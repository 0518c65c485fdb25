"""The Binance-compatible API with the SDKs users own, from PyPI and unpatched, against a launched platform:
python-binance (``Client(ping=False)`` with its API URL pointed at the gateway; ``AsyncClient`` and
``BinanceSocketManager`` for the user-data stream, their URLs pointed at it the same way) and Binance's
binance-sdk-spot (its REST and WebSocket API configurations given the gateway's URLs). The platform is the one
``test_binance_ccxt`` launches (same config, accounts and secrets), started for this module.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import pytest
from binance import AsyncClient, BinanceSocketManager, Client
from binance.exceptions import BinanceAPIException
from binance_common.configuration import ConfigurationRestAPI, ConfigurationWebSocketAPI
from binance_sdk_spot.rest_api.models import NewOrderSideEnum, NewOrderTimeInForceEnum, NewOrderTypeEnum
from binance_sdk_spot.spot import Spot

from tests.gateway.test_binance_ccxt import KEYS, SECRETS, Platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with Platform(tmp_path_factory.mktemp("binance_sdks")) as p:
        yield p


def python_binance(platform: Platform, account: str) -> Any:
    client = Client(KEYS[account], SECRETS[account], ping=False)
    client.API_URL = f"{platform.url}/api"
    return client


def test_python_binance_reads_markets_and_the_book(platform: Platform) -> None:
    client = python_binance(platform, "user_1")
    assert client.ping() == {}
    assert abs(client.get_server_time()["serverTime"] - platform.http.get("/api/v3/time").json()["serverTime"]) < 5000
    info = client.get_symbol_info("GW")
    assert info["baseAsset"] == "GW" and {f["filterType"] for f in info["filters"]} == {"PRICE_FILTER", "LOT_SIZE",
                                                                                        "NOTIONAL"}  # fmt: skip
    book = client.get_order_book(symbol="GW", limit=1000)
    assert set(book) == {"lastUpdateId", "bids", "asks"}


def test_python_binance_trades_queries_and_cancels(platform: Platform) -> None:
    me, other = python_binance(platform, "user_1"), python_binance(platform, "user_2")
    resting = other.create_order(symbol="GW", side="SELL", type="LIMIT", timeInForce="GTC", quantity="3",
                                 price="100.50")  # fmt: skip
    assert resting["status"] == "NEW" and resting["fills"] == []
    taken = me.order_market_buy(symbol="GW", quantity="2")
    assert taken["status"] == "FILLED" and taken["executedQty"] == "2.00000000"
    assert [(f["price"], f["qty"]) for f in taken["fills"]] == [("100.50000000", "2.00000000")]
    mine = me.create_order(symbol="GW", side="BUY", type="LIMIT", timeInForce="GTC", quantity="1", price="99.00",
                           newClientOrderId="pb-order-1")  # fmt: skip
    assert me.get_order(symbol="GW", origClientOrderId="pb-order-1")["orderId"] == mine["orderId"]
    assert [o["orderId"] for o in me.get_open_orders(symbol="GW")] == [mine["orderId"]]
    cancelled = me.cancel_order(symbol="GW", orderId=mine["orderId"])  # python-binance sends it in a form body
    assert cancelled["status"] == "CANCELED" and cancelled["origClientOrderId"] == "pb-order-1"
    with pytest.raises(BinanceAPIException) as refused:
        me.cancel_order(symbol="GW", orderId=resting["orderId"])
    assert refused.value.code == -2011
    balances = {b["asset"]: b for b in me.get_account()["balances"]}
    assert balances["GW"]["free"] == "2.00000000" and balances["USD"]["free"] == "-201.00000000"
    assert [t["orderId"] for t in me.get_my_trades(symbol="GW")] == [taken["orderId"]]
    other.cancel_order(symbol="GW", orderId=resting["orderId"])


def test_python_binance_user_socket_sees_its_own_orders(platform: Platform) -> None:
    ws_url = platform.ws_url

    class GatewayClient(AsyncClient):  # type: ignore[misc]
        API_URL = f"{platform.url}/api"
        WS_API_URL = f"{ws_url}/ws-api/v3"

    async def run() -> list[dict[str, Any]]:
        client = GatewayClient(KEYS["user_1"], SECRETS["user_1"])
        try:
            manager = BinanceSocketManager(client)
            async with manager.user_socket() as stream:
                order = await client.create_order(symbol="GW", side="BUY", type="LIMIT", timeInForce="GTC",
                                                  quantity="1", price="98.00")  # fmt: skip
                await client.cancel_order(symbol="GW", orderId=order["orderId"])
                return [await asyncio.wait_for(stream.recv(), 10) for _ in range(2)]
        finally:
            await client.close_connection()

    events = asyncio.run(run())
    assert [(e["e"], e["x"], e["X"]) for e in events] == [("executionReport", "NEW", "NEW"),
                                                          ("executionReport", "CANCELED", "CANCELED")]  # fmt: skip
    assert events[0]["s"] == "GW" and events[0]["p"] == "98.00000000" and events[0]["q"] == "1.00000000"


def test_binance_sdk_spot_rest_calls_and_user_data_stream(platform: Platform) -> None:
    spot = Spot(
        config_rest_api=ConfigurationRestAPI(api_key=KEYS["user_3"], api_secret=SECRETS["user_3"],
                                             base_path=platform.url),
        config_ws_api=ConfigurationWebSocketAPI(api_key=KEYS["user_3"], api_secret=SECRETS["user_3"],
                                                stream_url=f"{platform.ws_url}/ws-api/v3"),
    )  # fmt: skip
    rest = spot.rest_api
    rest.ping()
    symbols = rest.exchange_info(symbol="GW").data().symbols
    assert symbols is not None and symbols[0].base_asset == "GW"
    update_id = rest.depth(symbol="GW", limit=5).data().last_update_id
    assert update_id is not None and update_id >= 1

    async def run() -> list[Any]:
        connection = await spot.websocket_api.create_connection()  # type: ignore[no-untyped-call]
        seen: list[Any] = []
        try:
            subscription = await connection.user_data_stream_subscribe_signature()
            subscription.stream.on("message", seen.append)
            order = rest.new_order(symbol="GW", side=NewOrderSideEnum.BUY, type=NewOrderTypeEnum.LIMIT,
                                   time_in_force=NewOrderTimeInForceEnum.GTC, quantity=2.0,
                                   price=97.0).data()  # fmt: skip
            assert order.status == "NEW" and order.executed_qty == "0.00000000"
            assert rest.get_order(symbol="GW", order_id=order.order_id).data().orig_qty == "2.00000000"
            assert rest.delete_order(symbol="GW", order_id=order.order_id).data().status == "CANCELED"
            for _ in range(100):
                if len(seen) >= 2:
                    break
                await asyncio.sleep(0.05)
        finally:
            await connection.close_connection(close_session=True)
        return seen

    seen = asyncio.run(run())
    kinds = [(getattr(m, "actual_instance", m).x, getattr(m, "actual_instance", m).X) for m in seen[:2]]
    assert kinds == [("NEW", "NEW"), ("CANCELED", "CANCELED")]
