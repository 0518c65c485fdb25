"""The Binance API in process: ``TestClient(create_app(cfg))`` over an in-process engine (``EngineVenue``) with
the weight limiter's clock stepped by hand, and its signing on its own. ``test_binance_ccxt.py`` and
``test_binance_sdks.py`` run the stock clients against the launched platform.
"""

from __future__ import annotations

import contextlib
import json
import time
import warnings
from collections.abc import Iterator, MutableMapping
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import pytest

with warnings.catch_warnings():  # starlette's TestClient prefers httpx2, which is not a dependency
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient

from c_engine import SymbolConfig
from gateway.app import create_app
from gateway.binance.errors import BinanceError
from gateway.binance.signing import Credential, parse_params, sign, verify
from gateway.config import GatewayConfig
from gateway.venue import EngineVenue
from hotpath.accounts import Account
from tests.gateway.test_app import Harness as GatewayHarness
from tests.gateway.test_app import StepClock

SECRET = "alice-secret-" + "x" * 51
KEY = {"X-MBX-APIKEY": "alice-key"}
FORM = "application/x-www-form-urlencoded"
SYMBOLS = [SymbolConfig(name="SIM", tick_size=0.01, band_ticks=1000, reference_price=10000, max_order_lots=500,
                        min_price_ticks=100, max_price_ticks=50_000)]  # fmt: skip


class Harness(GatewayHarness):
    """test_app's harness with the Binance API's needs: alice's secret in a file, :data:`SYMBOLS`' configs
    (their filters) given to the API."""

    def __init__(self, tmp: Path, **settings: Any) -> None:
        (tmp / "alice.secret").write_text(SECRET)
        accounts = (Account("alice", 1, api_key="alice-key", secret_file=str(tmp / "alice.secret")),
                    Account("bob", 2, api_key="bob-key"))  # fmt: skip
        self.config = GatewayConfig(prefix="unit", accounts=accounts, **settings)
        self.clock = StepClock()
        self.symbols = SYMBOLS
        self.venue: EngineVenue | None = None
        self.app = create_app(self.config, venue=self._venue, clock=self.clock, symbols=self._symbols)

    async def _symbols(self, config: GatewayConfig) -> list[tuple[int, SymbolConfig]]:
        assert self.venue is not None
        return [(self.venue.symbols[cfg.name], cfg) for cfg in SYMBOLS]


@pytest.fixture
def harness(tmp_path: Path) -> Harness:
    return Harness(tmp_path, rate_per_s=1.0)


@pytest.fixture
def client(harness: Harness) -> Iterator[TestClient]:
    with TestClient(harness.app) as c:
        yield c


def signed(params: dict[str, Any]) -> str:
    query = urlencode({**params, "timestamp": time.time_ns() // 1_000_000})
    return f"{query}&signature={sign(SECRET.encode(), query.encode())}"


def test_exchange_info_takes_its_filters_from_the_symbol_config(client: TestClient) -> None:
    (market,) = client.get("/api/v3/exchangeInfo").json()["symbols"]
    filters = {f["filterType"]: f for f in market["filters"]}
    assert market["symbol"] == "SIM" and market["orderTypes"] == ["LIMIT", "LIMIT_MAKER", "MARKET"]
    assert filters["PRICE_FILTER"] == {"filterType": "PRICE_FILTER", "minPrice": "1.00000000",
                                       "maxPrice": "500.00000000", "tickSize": "0.01000000"}  # fmt: skip
    assert filters["LOT_SIZE"] == {"filterType": "LOT_SIZE", "minQty": "1.00000000", "maxQty": "500.00000000",
                                   "stepSize": "1.00000000"}  # fmt: skip
    assert filters["NOTIONAL"]["minNotional"] == "1.00000000"


def test_a_caller_over_its_minute_of_weight_gets_429_and_retry_after(harness: Harness, client: TestClient) -> None:
    harness.clock.now = 30.0  # rate_per_s 1: 60 weight a minute; exchangeInfo weighs 20
    used = [client.get("/api/v3/exchangeInfo").headers["X-MBX-USED-WEIGHT-1M"] for _ in range(3)]
    assert used == ["20", "40", "60"]
    refused = client.get("/api/v3/exchangeInfo")
    assert refused.status_code == 429 and refused.json()["code"] == -1003
    assert refused.headers["Retry-After"] == "30" and refused.headers["X-MBX-USED-WEIGHT-1M"] == "60"
    harness.clock.now = 60.0  # the next minute
    again = client.get("/api/v3/exchangeInfo")
    assert again.status_code == 200 and again.headers["X-MBX-USED-WEIGHT-1M"] == "20"


def test_the_signature_covers_the_query_and_the_body_as_sent() -> None:
    cred = Credential("alice", 1, SECRET.encode())
    now = 1_700_000_000_000
    query, body = b"symbol=SIM&timestamp=1700000000000", b"side=BUY&quantity=1"
    good = sign(SECRET.encode(), query + body).encode()
    assert verify(cred, query, body + b"&signature=" + good, now) == {"symbol": "SIM", "timestamp": str(now),
                                                                      "side": "BUY", "quantity": "1"}  # fmt: skip
    assert verify(cred, query + b"&signature=" + good, body, now)["quantity"] == "1"
    with pytest.raises(BinanceError) as tampered:
        verify(cred, query, b"side=BUY&quantity=2&signature=" + good, now)
    assert tampered.value.code == -1022
    with pytest.raises(BinanceError) as stale:
        verify(cred, query + b"&signature=" + sign(SECRET.encode(), query + body).encode(), body, now + 5001)
    assert stale.value.code == -1021 and "recvWindow" in stale.value.msg
    with pytest.raises(BinanceError) as ahead:
        verify(cred, query + b"&signature=" + good, body, now - 1000)
    assert ahead.value.code == -1021 and "ahead" in ahead.value.msg


def test_a_limit_order_by_signed_rest_answers_in_binance_shape(client: TestClient) -> None:
    body = signed({"symbol": "SIM", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "2",
                   "price": "99.50", "newClientOrderId": "unit-1", "newOrderRespType": "RESULT"})  # fmt: skip
    r = client.post("/api/v3/order", content=body, headers={**KEY, "content-type": FORM})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert {k: answer[k] for k in ("symbol", "clientOrderId", "price", "origQty", "executedQty", "status",
                                   "timeInForce", "type", "side")} == {
        "symbol": "SIM", "clientOrderId": "unit-1", "price": "99.50000000", "origQty": "2.00000000",
        "executedQty": "0.00000000", "status": "NEW", "timeInForce": "GTC", "type": "LIMIT", "side": "BUY"}  # fmt: skip
    assert "fills" not in answer
    missing = client.get("/api/v3/order?" + signed({"symbol": "SIM", "orderId": answer["orderId"] + 1}), headers=KEY)
    assert missing.status_code == 400 and missing.json() == {"code": -2013, "msg": "Order does not exist."}
    no_key = client.get("/api/v3/account?" + signed({}))
    assert no_key.status_code == 401 and no_key.json()["code"] == -2014


def test_an_account_without_a_secret_cannot_sign(client: TestClient) -> None:
    r = client.get("/api/v3/account?" + signed({}), headers={"X-MBX-APIKEY": "bob-key"})
    assert r.status_code == 401 and r.json()["code"] == -2015


def test_subscribe_is_acknowledged_and_an_unknown_stream_is_an_error(client: TestClient) -> None:
    with client.websocket_connect("/stream/ws/0") as ws:
        ws.send_text(json.dumps({"method": "SUBSCRIBE", "params": ["sim@depth@100ms", "sim@trade"], "id": 7}))
        assert ws.receive_json() == {"result": None, "id": 7}
        ws.send_text(json.dumps({"method": "SUBSCRIBE", "params": ["nope@depth"], "id": 8}))
        assert ws.receive_json()["error"]["code"] == 2
        ws.send_text(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 9}))
        assert ws.receive_json() == {"result": ["sim@depth@100ms", "sim@trade"], "id": 9}
        ws.send_text(json.dumps({"method": "UNSUBSCRIBE", "params": ["sim@trade"], "id": 10}))
        assert ws.receive_json() == {"result": None, "id": 10}


def test_depth_diffs_are_contiguous_and_a_lost_delta_leaves_a_gap(harness: Harness, client: TestClient) -> None:
    with client.websocket_connect("/ws/sim@depth@100ms") as ws:
        harness.outsider(client, "buy", 3, 9990)
        first = ws.receive_json()
        assert first["e"] == "depthUpdate" and first["b"] == [["99.90000000", "3.00000000"]] and "pu" not in first
        harness.outsider(client, "sell", 2, 10010)
        second = ws.receive_json()
        assert second["U"] == first["u"] + 1 and second["a"] == [["100.10000000", "2.00000000"]]
        harness.outsider(client, "buy", 1, 9980, lose_market_data=True)  # its delta never reaches the gateway
        for _ in range(200):
            depth = client.get("/api/v3/depth", params={"symbol": "SIM"}).json()
            if len(depth["bids"]) == 2:  # the gateway reloaded its book from the engine
                break
            time.sleep(0.01)
        harness.outsider(client, "sell", 4, 10020)
        third = ws.receive_json()
        assert third["U"] == second["u"] + 2, "the lost update is a hole every client sees"
        depth = client.get("/api/v3/depth", params={"symbol": "SIM"}).json()
        assert depth["lastUpdateId"] == third["u"]
        assert depth["bids"] == [["99.90000000", "3.00000000"], ["99.80000000", "1.00000000"]]


def test_a_listen_key_streams_the_accounts_execution_reports(client: TestClient) -> None:
    key = client.post("/api/v3/userDataStream", headers=KEY).json()["listenKey"]
    assert client.put("/api/v3/userDataStream", params={"listenKey": key}, headers=KEY).json() == {}
    with client.websocket_connect(f"/ws/{key}") as ws:
        body = signed({"symbol": "SIM", "side": "SELL", "type": "LIMIT_MAKER", "quantity": "1", "price": "101"})
        r = client.post("/api/v3/order", content=body, headers={**KEY, "content-type": FORM})
        assert r.status_code == 200 and set(r.json()) == {
            "symbol",
            "orderId",
            "orderListId",
            "clientOrderId",
            "transactTime",
        }  # LIMIT_MAKER answers ACK by default
        report = ws.receive_json()
        assert (report["e"], report["x"], report["X"], report["o"], report["S"]) == ("executionReport", "NEW", "NEW",
                                                                                  "LIMIT_MAKER", "SELL")  # fmt: skip
    assert client.delete("/api/v3/userDataStream", params={"listenKey": key}, headers=KEY).json() == {}
    assert client.put("/api/v3/userDataStream", params={"listenKey": key}, headers=KEY).json()["code"] == -1125


def test_a_combined_stream_wraps_each_event_with_its_stream_name(harness: Harness, client: TestClient) -> None:
    with client.websocket_connect("/stream?streams=sim@trade/sim@bookTicker") as ws:
        harness.outsider(client, "sell", 2, 10010)
        top = ws.receive_json()
        assert (
            top["stream"] == "sim@bookTicker"
            and top["data"]["a"] == "100.10000000"
            and top["data"]["b"] == "0.00000000"
        )
        harness.outsider(client, "buy", 1, 10010)
        frames = [ws.receive_json() for _ in range(2)]
        trade = next(f for f in frames if f["stream"] == "sim@trade")["data"]
        assert (trade["e"], trade["p"], trade["q"], trade["m"]) == ("trade", "100.10000000", "1.00000000", False)


def test_a_market_order_by_quote_amount_of_zero_fails_the_notional_filter(client: TestClient) -> None:
    body = signed({"symbol": "SIM", "side": "BUY", "type": "MARKET", "quoteOrderQty": "0"})
    r = client.post("/api/v3/order/test", content=body, headers={**KEY, "content-type": FORM})
    assert r.status_code == 400 and r.json() == {"code": -1013, "msg": "Filter failure: NOTIONAL"}
    ok = signed({"symbol": "SIM", "side": "BUY", "type": "MARKET", "quoteOrderQty": "100"})
    assert client.post("/api/v3/order/test", content=ok, headers={**KEY, "content-type": FORM}).json() == {}


def test_binance_requests_count_in_the_gateways_metrics(client: TestClient) -> None:
    client.get("/api/v3/ping")
    metrics = client.get("/metrics").text
    assert 'gateway_request_seconds_count{method="GET",route="/api/v3/ping"} 1.0' in metrics


def place(client: TestClient, **fields: str) -> None:
    body = signed({"symbol": "SIM", "side": "BUY", "type": "LIMIT_MAKER", "quantity": "1", "price": "99", **fields})
    assert client.post("/api/v3/order", content=body, headers={**KEY, "content-type": FORM}).status_code == 200


def test_a_deleted_listen_key_ends_its_stream_with_listen_key_expired(client: TestClient) -> None:
    key = client.post("/api/v3/userDataStream", headers=KEY).json()["listenKey"]
    with client.websocket_connect(f"/ws/{key}") as ws:
        assert client.delete("/api/v3/userDataStream", params={"listenKey": key}, headers=KEY).json() == {}
        place(client)  # the account's orders no longer reach the ended key's socket
        ws.send_text(json.dumps({"method": "LIST_SUBSCRIPTIONS", "id": 1}))
        expired = ws.receive_json()
        assert (expired.get("e"), expired.get("listenKey")) == ("listenKeyExpired", key)
        assert ws.receive_json()["id"] == 1, "an executionReport came through an ended listen key"


def test_an_expired_listen_key_is_replaced_and_forgotten(client: TestClient) -> None:
    userdata = client.app_state["binance"].userdata
    steps = [0.0]
    userdata.clock = lambda: steps[0]
    first = client.post("/api/v3/userDataStream", headers=KEY).json()["listenKey"]
    assert client.post("/api/v3/userDataStream", headers=KEY).json()["listenKey"] == first
    for hour in range(1, 4):  # a client that lets its key lapse and asks for a new one, hour after hour
        steps[0] = hour * 3601.0
        assert client.post("/api/v3/userDataStream", headers=KEY).json()["listenKey"] != first
    assert len(userdata) == 1
    assert client.put("/api/v3/userDataStream", params={"listenKey": first}, headers=KEY).json()["code"] == -1125


def ws_api_subscribe(ws: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"apiKey": "alice-key", "timestamp": time.time_ns() // 1_000_000}
    params["signature"] = sign(SECRET.encode(), urlencode(sorted(params.items())).encode())
    ws.send_text(json.dumps({"id": "s", "method": "userDataStream.subscribe.signature", "params": params}))
    answer: dict[str, Any] = ws.receive_json()
    return answer


def test_the_websocket_api_takes_one_subscription_per_account_and_session(client: TestClient) -> None:
    with client.websocket_connect("/ws-api/v3") as ws:
        assert ws_api_subscribe(ws)["result"] == {"subscriptionId": 0}
        again = ws_api_subscribe(ws)
        assert (again["status"], again["error"]["code"]) == (400, -2035)
        place(client)
        (report,) = [ws.receive_json()]
        assert report["subscriptionId"] == 0 and report["event"]["x"] == "NEW"
        ws.send_text(json.dumps({"id": "l", "method": "session.subscriptions"}))
        assert ws.receive_json()["result"] == [{"subscriptionId": 0}], "the one report came once, then this"


def test_a_client_gone_before_the_accept_leaves_no_subscriber(client: TestClient) -> None:
    api = client.app_state["binance"]
    scope = {"type": "websocket", "path": "/ws/sim@trade", "raw_path": b"/ws/sim@trade", "query_string": b"",
             "headers": [], "scheme": "ws", "server": ("testserver", 80), "client": ("127.0.0.1", 5000),
             "root_path": "", "subprotocols": [], "state": dict(client.app_state)}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "websocket.connect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        if message["type"] == "websocket.accept":
            raise OSError("the client is gone")

    async def run() -> None:
        with contextlib.suppress(Exception):
            await client.app(scope, receive, send)

    assert client.portal is not None
    client.portal.call(run)
    assert not api.feed.stream("sim@trade"), "a subscriber nobody serves stays on the stream"
    assert not api.connections


def test_the_book_ticker_of_every_symbol_weighs_four_and_of_one_two(harness: Harness, client: TestClient) -> None:
    harness.clock.now = 120.0
    assert client.get("/api/v3/ticker/bookTicker").headers["X-MBX-USED-WEIGHT-1M"] == "4"
    one = client.get("/api/v3/ticker/bookTicker", params={"symbol": "SIM"})
    assert one.headers["X-MBX-USED-WEIGHT-1M"] == "6"


def test_a_body_over_the_gateways_limit_is_refused_before_it_is_read(client: TestClient) -> None:
    huge = signed({"symbol": "SIM", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1",
                   "price": "99", "pad": "x" * 20_000})  # fmt: skip
    r = client.post("/api/v3/order", content=huge, headers={**KEY, "content-type": FORM})
    assert r.status_code == 413 and r.json()["code"] == -1101

    def streamed() -> Iterator[bytes]:  # no Content-Length: counted as it comes
        yield from (huge[i : i + 4096].encode() for i in range(0, len(huge), 4096))

    r = client.post("/api/v3/order", content=streamed(), headers={**KEY, "content-type": FORM})
    assert r.status_code == 413 and r.json()["code"] == -1101
    assert client.get("/api/v3/openOrders?" + signed({"symbol": "SIM"}), headers=KEY).json() == []


def test_a_parameter_in_the_query_and_the_body_takes_the_querys_value() -> None:
    assert parse_params([b"symbol=SIM&quantity=1", b"quantity=2&side=BUY"]) == {"symbol": "SIM", "quantity": "1",
                                                                                "side": "BUY"}  # fmt: skip
    with pytest.raises(BinanceError) as twice:
        parse_params([b"quantity=1&quantity=2"])
    assert (twice.value.code, twice.value.msg) == (-1101, "Duplicate values for a parameter detected.")


def test_a_request_whose_client_leaves_mid_body_is_not_acted_on(client: TestClient) -> None:
    scope = {"type": "http", "method": "POST", "path": "/api/v3/userDataStream", "raw_path": b"/api/v3/userDataStream",
             "query_string": b"", "headers": [(b"x-mbx-apikey", b"alice-key"), (b"content-type", FORM.encode())],
             "scheme": "http", "server": ("testserver", 80), "client": ("127.0.0.1", 5001), "root_path": "",
             "http_version": "1.1", "state": dict(client.app_state)}  # fmt: skip
    cut: list[dict[str, Any]] = [{"type": "http.request", "body": b"a=1&", "more_body": True}]
    messages = iter(cut)
    sent: list[MutableMapping[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages, {"type": "http.disconnect"})

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    async def run() -> None:
        await client.app(scope, receive, send)

    assert client.portal is not None
    client.portal.call(run)
    assert sent == [] and len(client.app_state["binance"].userdata) == 0, "a cut request was answered"
