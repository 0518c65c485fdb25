"""The gateway app in process: ``TestClient(create_app(cfg))`` over an in-process ``c_engine.Engine``
(``EngineVenue``), with the rate limiter's clock stepped by hand. The end-to-end suite
(``test_end_to_end.py``) runs the same API against the launched platform over real sockets.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator
from typing import Any

import pytest

with warnings.catch_warnings():  # starlette's TestClient prefers httpx2, which is not a dependency
    warnings.simplefilter("ignore")
    from fastapi.testclient import TestClient
    from starlette.testclient import WebSocketDenialResponse

from c_engine import Command, Engine, Side, SymbolConfig
from gateway.app import create_app
from gateway.config import GatewayConfig
from gateway.venue import EngineVenue, Venue
from hotpath.accounts import Account

ALICE = {"X-API-Key": "alice-key"}
BOB = {"X-API-Key": "bob-key"}
#: an account on the platform that the gateway does not act for (an agent)
OUTSIDER = 50
SYMBOLS = [SymbolConfig(name="SIM", tick_size=0.01, band_ticks=1000, reference_price=10000)]


class StepClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class Harness:
    def __init__(self, auth: bool = True, symbols: list[SymbolConfig] = SYMBOLS, **settings: Any) -> None:
        accounts = (Account("alice", 1, api_key="alice-key"), Account("bob", 2, api_key="bob-key"))
        self.config = GatewayConfig(prefix="unit", accounts=accounts, auth=auth, **settings)
        self.clock = StepClock()
        self.symbols = symbols
        self.venue: EngineVenue | None = None
        self.app = create_app(self.config, venue=self._venue, clock=self.clock)

    async def _venue(self, config: GatewayConfig) -> Venue:
        self.venue = EngineVenue(Engine(), self.symbols, {"alice": 1, "bob": 2})
        return self.venue

    def outsider(
        self, client: TestClient, side: str, size: int, price_ticks: int, *, lose_market_data: bool = False
    ) -> None:
        """Someone else's order, run on the app's own loop (as the drain sees it: between two of its turns);
        with ``lose_market_data`` the gateway's reader is lapped right after it."""
        venue = self.venue
        assert venue is not None and client.portal is not None
        cmd = Command.new(OUTSIDER, 0, Side.BUY if side == "buy" else Side.SELL, size, price_ticks)

        def run() -> None:
            venue.external(cmd)
            if lose_market_data:
                venue.gap = 10

        client.portal.call(run)


@pytest.fixture
def harness() -> Harness:
    return Harness()


@pytest.fixture
def client(harness: Harness) -> Iterator[TestClient]:
    with TestClient(harness.app) as c:
        yield c


def order(client: TestClient, account: str = "alice", **fields: Any) -> Any:
    body = {"client_id": account, "side": "buy", "type": "limit", "price": 100.05, "size": 5, **fields}
    headers = ALICE if account == "alice" else BOB
    return client.post("/order", json=body, headers=headers)


def test_the_seeds_order_is_acknowledged_and_rests_in_the_book(client: TestClient) -> None:
    r = order(client)
    assert r.status_code == 200
    body = r.json()
    assert body["status"] == "accepted" and body["state"] == "open" and body["leaves"] == 5.0
    book = client.get("/book").json()
    assert book["bids"] == [[100.05, 5.0, 1]] and book["best_bid"] == 100.05 and book["asks"] == []
    orders = client.get("/orders/alice", headers=ALICE).json()
    assert [o["order_id"] for o in orders] == [body["order_id"]]


def test_partial_fills_between_two_accounts_show_in_fills_orders_and_risk(client: TestClient) -> None:
    maker = order(client, size=5).json()
    taker = order(client, "bob", side="sell", size=2).json()
    assert taker["state"] == "filled" and [f["size"] for f in taker["fills"]] == [2.0]
    assert taker["fills"][0]["liquidity"] == "taker" and taker["fills"][0]["price"] == 100.05
    (open_order,) = client.get("/orders/alice", headers=ALICE).json()
    assert open_order["order_id"] == maker["order_id"] and open_order["leaves"] == 3.0 and open_order["filled"] == 2.0
    (fill,) = client.get("/fills/alice", headers=ALICE).json()
    assert fill["liquidity"] == "maker" and fill["size"] == 2.0 and fill["leaves"] == 3.0
    risk = client.get("/risk/bob", headers=BOB).json()
    assert risk["positions"][0]["position"] == -2.0 and risk["positions"][0]["cash"] == pytest.approx(200.10)
    assert risk["killed"] is False and risk["open_orders"] == 0


def test_an_engine_reject_is_answered_with_its_reason(client: TestClient) -> None:
    body = order(client, price=120.00).json()  # 2000 ticks from the reference: outside the band
    assert body["status"] == "rejected" and body["reason"] == "PRICE_BAND" and body["state"] == "rejected"


def test_cancel_modify_and_mass_cancel_act_on_open_orders(client: TestClient) -> None:
    first = order(client).json()["order_id"]
    second = order(client, price=100.00).json()["order_id"]
    modified = client.patch(f"/order/{first}", json={"size": 2, "price": 100.01}, headers=ALICE).json()
    assert modified["status"] == "modified" and modified["leaves"] == 2.0 and modified["price"] == 100.01
    assert client.get("/book").json()["bids"] == [[100.01, 2.0, 1], [100.0, 5.0, 1]]
    cancelled = client.post(f"/cancel/{first}", headers=ALICE).json()
    assert cancelled["status"] == "cancelled" and cancelled["leaves"] == 0.0
    again = client.post(f"/cancel/{first}", headers=ALICE)
    assert again.status_code == 404 and again.json()["code"] == "UNKNOWN_ORDER"
    order(client, price=99.99)
    mass = client.delete("/orders/alice", headers=ALICE).json()
    assert mass == {"status": "cancelled", "reason": None, "client_id": "alice", "cancelled": 2}
    assert client.get("/orders/alice", headers=ALICE).json() == [] and second > first


def test_a_fill_of_a_resting_order_by_someone_else_reaches_the_account(harness: Harness, client: TestClient) -> None:
    order(client, side="sell", price=100.10, size=3)
    harness.outsider(client, "buy", 1, 10010)
    client.get("/health")  # a turn of the app's loop: the drain applies what the venue queued
    fills = client.get("/fills/alice", headers=ALICE).json()
    assert [(f["side"], f["size"], f["liquidity"]) for f in fills] == [("sell", 1.0, "maker")]


def test_without_a_key_the_api_answers_401_and_another_accounts_key_403(client: TestClient) -> None:
    r = client.post("/order", json={"client_id": "alice", "side": "buy", "price": 100.05, "size": 5})
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED" and "WWW-Authenticate" in r.headers
    assert client.get("/orders/alice", headers={"X-API-Key": "nope"}).status_code == 401
    assert order(client, "alice", price=100.0).status_code == 200
    r = client.post("/order", json={"client_id": "alice", "side": "buy", "price": 100.05, "size": 5}, headers=BOB)
    assert r.status_code == 403 and r.json()["code"] == "FORBIDDEN"
    alices = client.get("/orders/alice", headers=ALICE).json()[0]["order_id"]
    assert client.post(f"/cancel/{alices}", headers=BOB).status_code == 403
    assert client.patch(f"/order/{alices}", json={"size": 1}, headers=BOB).status_code == 403
    for path in ("/orders/alice", "/fills/alice", "/risk/alice"):
        assert client.get(path, headers=BOB).status_code == 403
    assert client.delete("/orders/alice", headers=BOB).status_code == 403
    assert client.get("/book").status_code == 200 and client.get("/health").status_code == 200


def test_websocket_streams_refuse_a_missing_key_with_401_and_another_account_with_403(client: TestClient) -> None:
    with pytest.raises(WebSocketDenialResponse) as missing, client.websocket_connect("/ws/fills/alice"):
        pass
    assert missing.value.status_code == 401
    with pytest.raises(WebSocketDenialResponse) as other, client.websocket_connect("/ws/fills/alice", headers=BOB):
        pass
    assert other.value.status_code == 403 and other.value.json()["code"] == "FORBIDDEN"
    with client.websocket_connect("/ws/fills/alice?api_key=alice-key"):
        pass


def test_a_duplicate_client_order_id_among_open_orders_is_refused_409(client: TestClient) -> None:
    assert order(client, client_order_id=7).json()["status"] == "accepted"
    r = order(client, client_order_id=7, price=100.0)
    assert r.status_code == 409 and r.json()["code"] == "DUPLICATE_CLIENT_ORDER_ID"
    assert order(client, "bob", client_order_id=7, side="sell", price=101.0).json()["status"] == "accepted"
    client.delete("/orders/alice", headers=ALICE)
    assert order(client, client_order_id=7).json()["status"] == "accepted"  # reuse once the first is done


def test_each_key_is_rate_limited_with_retry_after_and_the_clock_refills_it() -> None:
    harness = Harness(rate_per_s=1, rate_burst=2)
    with TestClient(harness.app) as client:
        assert [client.get("/orders/alice", headers=ALICE).status_code for _ in range(3)] == [200, 200, 429]
        r = client.get("/orders/alice", headers=ALICE)
        assert r.json()["code"] == "RATE_LIMITED" and r.headers["Retry-After"] == "1"
        assert client.get("/orders/bob", headers=BOB).status_code == 200  # a bucket per key
        harness.clock.now += 1.0
        assert client.get("/orders/alice", headers=ALICE).status_code == 200


def test_a_mass_cancel_costs_more_than_one_call() -> None:
    harness = Harness(rate_per_s=1, rate_burst=10, mass_cancel_cost=10)
    with TestClient(harness.app) as client:
        assert client.delete("/orders/alice", headers=ALICE).status_code == 200
        r = client.get("/orders/alice", headers=ALICE)
        assert r.status_code == 429 and r.headers["Retry-After"] == "1"


BAD_ORDERS: list[tuple[dict[str, Any], int, str]] = [
    ({"price": 0}, 422, "INVALID_REQUEST"),
    ({"price": -100.05}, 422, "INVALID_REQUEST"),
    ({"size": 0}, 422, "INVALID_REQUEST"),
    ({"size": -5}, 422, "INVALID_REQUEST"),
    ({"price": 100.055}, 422, "OFF_TICK"),
    ({"size": 2.5}, 422, "OFF_LOT"),
    ({"price": 1e300}, 422, "OUT_OF_RANGE"),
    ({"price": 1e-9}, 422, "OUT_OF_RANGE"),
    ({"size": "5"}, 422, "INVALID_REQUEST"),
    ({"price": "100.05"}, 422, "INVALID_REQUEST"),
    ({"side": "hold"}, 422, "INVALID_REQUEST"),
    ({"post_only": 1}, 422, "INVALID_REQUEST"),
    ({"symbol": "NOPE"}, 422, "UNKNOWN_SYMBOL"),
    ({"client_order_id": 2**64}, 422, "INVALID_REQUEST"),
    ({"client_order_id": 0}, 422, "INVALID_REQUEST"),
    ({"extra": 1}, 422, "INVALID_REQUEST"),
    ({"type": "market"}, 422, "INVALID_REQUEST"),
    ({"price": None}, 422, "INVALID_REQUEST"),
]


@pytest.mark.parametrize(("fields", "status", "code"), BAD_ORDERS)
def test_a_bad_order_is_a_4xx_with_its_code_and_never_reaches_the_engine(
    harness: Harness, client: TestClient, fields: dict[str, Any], status: int, code: str
) -> None:
    assert harness.venue is not None
    before = harness.venue.engine.state_hash(), harness.venue.engine.stats()["commands"]
    r = order(client, **fields)
    assert (r.status_code, r.json()["code"]) == (status, code)
    assert (harness.venue.engine.state_hash(), harness.venue.engine.stats()["commands"]) == before


MALFORMED = [
    b"{bad",
    b"",
    b"[]",
    b'{"client_id": "alice", "side": "buy", "price": NaN, "size": 5}',
    b'{"client_id": "alice", "side": "buy", "price": Infinity, "size": 5}',
    b"\xff\xfe",
]


@pytest.mark.parametrize("raw", MALFORMED)
def test_malformed_json_is_a_4xx(client: TestClient, raw: bytes) -> None:
    r = client.post("/order", content=raw, headers={**ALICE, "content-type": "application/json"})
    assert 400 <= r.status_code < 500 and r.json()["code"] in ("BAD_JSON", "INVALID_REQUEST")


def test_a_huge_body_is_refused_413_declared_or_streamed() -> None:
    harness = Harness(max_body_bytes=1024)
    with TestClient(harness.app) as client:
        r = client.post("/order", content=b"x" * 5000, headers={**ALICE, "content-type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "BODY_TOO_LARGE"

        def chunks() -> Iterator[bytes]:
            for _ in range(10):
                yield b" " * 512

        r = client.post("/order", content=chunks(), headers={**ALICE, "content-type": "application/json"})
        assert r.status_code == 413 and r.json()["code"] == "BODY_TOO_LARGE"


def test_unknown_accounts_orders_and_routes_are_4xx(client: TestClient) -> None:
    no_auth = Harness(auth=False)
    with TestClient(no_auth.app) as open_client:
        r = open_client.get("/orders/nobody")
        assert r.status_code == 404 and r.json()["code"] == "UNKNOWN_ACCOUNT"
    assert client.post("/cancel/999", headers=ALICE).json()["code"] == "UNKNOWN_ORDER"
    assert client.post("/cancel/abc", headers=ALICE).status_code == 422
    assert client.post("/cancel/99999999999999999999999", headers=ALICE).status_code == 422
    assert client.get("/book", params={"symbol": "NOPE"}).json()["code"] == "UNKNOWN_SYMBOL"
    r = client.put("/order", headers=ALICE)
    assert r.status_code == 405 and r.json()["code"] == "METHOD_NOT_ALLOWED"


def test_without_auth_any_of_the_gateways_accounts_may_be_used() -> None:
    with TestClient(Harness(auth=False).app) as client:
        r = client.post("/order", json={"client_id": "bob", "side": "sell", "price": 100.10, "size": 1})
        assert r.json()["status"] == "accepted"
        assert client.get("/health").json()["auth"] is False


def test_snapshot_then_deltas_rebuild_exactly_the_book(harness: Harness, client: TestClient) -> None:
    order(client, price=100.00, size=3)
    with client.websocket_connect("/ws/md?symbol=SIM") as ws:
        snapshot = ws.receive_json()
        assert snapshot["type"] == "snapshot" and snapshot["bids"] == [[100.0, 3.0, 1]]
        book = {"buy": {p: (s, n) for p, s, n in snapshot["bids"]}, "sell": {p: (s, n) for p, s, n in snapshot["asks"]}}
        seq = snapshot["seq"]
        order(client, price=100.01, size=2)
        order(client, "bob", side="sell", price=100.00, size=4)  # takes 100.01 x2 and 100.00 x2
        order(client, "bob", side="sell", price=100.20, size=7)
        expected = client.get("/book").json()
        while seq < expected["seq"]:
            message = ws.receive_json()
            assert message["seq"] == seq + 1  # no gap
            seq = message["seq"]
            if message["type"] == "delta":
                levels = book[message["side"]]
                if message["size"]:
                    levels[message["price"]] = (message["size"], message["orders"])
                else:
                    levels.pop(message["price"], None)
            else:
                assert message["type"] == "trade" and set(message) == {"type", "symbol", "seq", "price", "size",
                                                                       "side", "trade_id", "timestamp"}  # fmt: skip
        bids = [[p, *book["buy"][p]] for p in sorted(book["buy"], reverse=True)]
        asks = [[p, *book["sell"][p]] for p in sorted(book["sell"])]
        assert (bids, asks) == (expected["bids"], expected["asks"]) == ([[100.0, 1.0, 1]], [[100.2, 7.0, 1]])


def test_a_gap_in_the_gateways_market_data_sends_a_resync_snapshot(harness: Harness, client: TestClient) -> None:
    with client.websocket_connect("/ws/md") as ws:
        first = ws.receive_json()
        harness.outsider(client, "sell", 4, 10020, lose_market_data=True)  # its delta is lost to the gateway
        message = ws.receive_json()
        assert message["type"] == "snapshot" and message.get("resync") is True and message["seq"] == first["seq"] + 1
        assert message["asks"] == [[100.2, 4.0, 1]] == client.get("/book").json()["asks"]
        ws.send_json({"op": "snapshot"})  # what a client sends when it sees a gap of its own
        again = ws.receive_json()
        assert again["type"] == "snapshot" and again["seq"] == message["seq"] and again["asks"] == message["asks"]


def test_the_fill_stream_carries_an_accounts_events_in_engine_order(client: TestClient) -> None:
    with client.websocket_connect("/ws/fills/alice", headers=ALICE) as ws:
        resting = order(client, size=5, client_order_id=11).json()["order_id"]
        order(client, "bob", side="sell", size=2)
        client.patch(f"/order/{resting}", json={"size": 1}, headers=ALICE)
        client.post(f"/cancel/{resting}", headers=ALICE)
        order(client, price=150.0)
        events = [ws.receive_json() for _ in range(5)]
    assert [e["event"] for e in events] == ["ack", "fill", "modified", "cancel", "reject"]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    fill = events[1]
    assert {k: fill[k] for k in ("order_id", "side", "price", "size", "client_order_id")} == {
        "order_id": resting, "side": "buy", "price": 100.05, "size": 2.0, "client_order_id": 11}  # fmt: skip
    assert events[3]["reason"] == "USER" and events[4]["reason"] == "PRICE_BAND" and "timestamp" in fill


def test_metrics_count_orders_rejects_and_latency(client: TestClient) -> None:
    order(client)
    order(client, price=150.0)
    text = client.get("/metrics").text
    assert 'gateway_orders_total{result="accepted"} 1.0' in text
    assert 'gateway_rejects_total{reason="PRICE_BAND"} 1.0' in text
    assert 'gateway_request_seconds_count{method="POST",route="/order"} 2.0' in text


def test_the_openapi_document_declares_every_route_and_the_key(client: TestClient) -> None:
    doc = client.get("/openapi.json").json()
    assert {"/order", "/cancel/{order_id}", "/order/{order_id}", "/orders/{client_id}", "/fills/{client_id}",
            "/risk/{client_id}", "/book", "/health", "/metrics"} <= set(doc["paths"])  # fmt: skip
    assert "APIKeyHeader" in doc["components"]["securitySchemes"]
    post = doc["paths"]["/order"]["post"]
    assert post["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith("OrderResponse")
    assert client.get("/docs").status_code == 200


def test_an_unknown_query_parameter_is_refused_not_ignored(client: TestClient) -> None:
    r = client.get("/book?depht=5")
    assert r.status_code == 422 and r.json()["code"] == "INVALID_REQUEST" and "depht" in r.json()["message"]
    assert client.get("/book?depth=5").status_code == 200
    assert client.get("/fills/alice?limit=1&x=1", headers=ALICE).status_code == 422
