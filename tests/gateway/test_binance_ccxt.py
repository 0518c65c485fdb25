"""The Binance-compatible API with the stock ``ccxt.binance`` (unpatched: only its URLs pointed at the gateway
and its options set to ask for spot only) against a platform that ``proptrade up`` launches: markets, order
book, limit / post-only / IOC orders, queries, cancels, balances and trades; then every refusal with its
Binance code and the engine's state hash unchanged; then ``ccxt.pro``'s ``watch_order_book`` through live flow
and a forced gap, and its ``watch_orders`` (the WebSocket API), ``watch_trades`` and ``watch_bids_asks``.

The platform runs no agent: the engine changes only through the tests' own orders (so a state hash can be
compared), and the live flow of the streaming tests comes from a task placing and cancelling orders of
another account through the gateway while ccxt watches.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import random
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import ccxt
import ccxt.pro
import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.asyncio.server import ServerConnection, serve

from hotpath.testing import Leftovers, ServedPlatform

SECRETS = {"user_1": "s1-" + "a" * 61, "user_2": "s2-" + "b" * 61, "user_3": "s3-" + "c" * 61}
KEYS = {"user_1": "bkey-1", "user_2": "bkey-2", "user_3": "bkey-3"}
CONFIG = """
[engine]
ring_capacity = 1024
md_capacity = 4096
heartbeat_timeout_s = 5.0
max_orders = 65536

[[symbols]]
name = "GW"
tick_size = 0.01
band_ticks = 1000
reference_price = 10000

[[symbols]]
name = "ALT"
tick_size = 0.5
lot_size = 0.1
band_ticks = 1000
reference_price = 100

[bridge]
enabled = false

[[accounts]]
name = "user_1"
client = 20
api_key = "bkey-1"
secret_file = "{dir}/user_1.secret"

[[accounts]]
name = "user_2"
client = 21
api_key = "bkey-2"
secret_file = "{dir}/user_2.secret"

[[accounts]]
name = "user_3"
client = 22
api_key = "bkey-3"
secret_file = "{dir}/user_3.secret"

[probe]
hz = 0

[gateway]
port = 0
ws_queue = 4096
rate_per_s = 1000
rate_burst = 2000
heartbeat_s = 1.0
"""
OPTIONS = {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]}, "fetchCurrencies": False,
           "fetchMargins": False}  # fmt: skip


class Platform(ServedPlatform):
    """``proptrade up`` on :data:`CONFIG`, an HTTP client of its gateway, and ccxt clients of its accounts."""

    def __init__(self, tmp: Path, config: str | None = None) -> None:
        """``config``: the platform's TOML (default :data:`CONFIG` with this module's secrets in ``tmp``)."""
        if config is None:
            for account, secret in SECRETS.items():
                (tmp / f"{account}.secret").write_text(secret)
            config = CONFIG.replace("{dir}", str(tmp))
        super().__init__(config, tmp, "bn")
        self.http = httpx.Client(base_url=self.url, timeout=10.0)

    def exchange(self, account: str, **extra: Any) -> ccxt.binance:
        ex = ccxt.binance({"apiKey": KEYS[account], "secret": SECRETS[account], "options": dict(OPTIONS), **extra})
        point(ex, self.url)
        return ex

    def stop(self) -> Leftovers:
        if hasattr(self, "http"):
            self.http.close()
        return super().stop()


def point(ex: Any, url: str) -> None:
    """Points a ccxt binance's spot URLs at the gateway (REST; WebSocket for ccxt.pro)."""
    ex.urls["api"]["public"] = ex.urls["api"]["private"] = f"{url}/api/v3"
    ex.urls["api"]["v1"] = f"{url}/api/v1"
    if "ws" in ex.urls["api"]:
        ex.urls["api"]["ws"]["spot"] = url.replace("http://", "ws://") + "/stream/ws"
        ex.urls["api"]["ws"]["ws-api"]["spot"] = url.replace("http://", "ws://") + "/ws-api/v3"


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with Platform(tmp_path_factory.mktemp("binance_ccxt")) as p:
        yield p


@pytest.fixture(scope="module")
def user_1(platform: Platform) -> ccxt.binance:
    ex = platform.exchange("user_1")
    ex.load_markets()
    return ex


@pytest.fixture(scope="module")
def user_2(platform: Platform) -> ccxt.binance:
    ex = platform.exchange("user_2")
    ex.load_markets()
    return ex


def clean(*exchanges: ccxt.binance) -> None:
    for ex in exchanges:
        for order in ex.fetch_open_orders("GW/USD"):
            ex.cancel_order(order["id"], "GW/USD")


def test_ccxt_loads_the_markets_from_exchange_info(user_1: ccxt.binance) -> None:
    gw, alt = user_1.markets["GW/USD"], user_1.markets["ALT/USD"]
    assert gw["id"] == "GW" and gw["spot"] and gw["active"] and gw["base"] == "GW" and gw["quote"] == "USD"
    assert gw["precision"]["price"] == 0.01 and gw["precision"]["amount"] == 1
    assert alt["precision"]["price"] == 0.5 and alt["precision"]["amount"] == 0.1
    assert alt["limits"]["amount"]["min"] == 0.1 and alt["limits"]["price"]["min"] == 0.5


def test_a_limit_order_is_open_then_found_then_cancelled(user_1: ccxt.binance) -> None:
    order = user_1.create_order("GW/USD", "limit", "buy", 5, 99.5)
    assert order["status"] == "open" and order["amount"] == 5 and order["price"] == 99.5 and order["filled"] == 0
    assert order["clientOrderId"]
    fetched = user_1.fetch_order(order["id"], "GW/USD")
    assert fetched["status"] == "open" and fetched["remaining"] == 5
    by_client_id = user_1.fetch_order(None, "GW/USD", {"origClientOrderId": order["clientOrderId"]})
    assert by_client_id["id"] == order["id"]
    assert [o["id"] for o in user_1.fetch_open_orders("GW/USD")] == [order["id"]]
    cancelled = user_1.cancel_order(order["id"], "GW/USD")
    assert cancelled["status"] == "canceled" and cancelled["id"] == order["id"]
    assert user_1.fetch_order(order["id"], "GW/USD")["status"] == "canceled"
    assert user_1.fetch_open_orders("GW/USD") == []


def test_a_post_only_order_rests_and_one_that_would_take_is_refused(user_1: ccxt.binance,
                                                                    user_2: ccxt.binance) -> None:  # fmt: skip
    resting = user_2.create_order("GW/USD", "limit", "sell", 3, 100.2, {"postOnly": True})
    assert resting["status"] == "open" and resting["info"]["type"] == "LIMIT_MAKER"
    with pytest.raises(ccxt.OrderImmediatelyFillable):
        user_1.create_order("GW/USD", "limit", "buy", 1, 100.2, {"postOnly": True})
    assert '"code":-2010' in user_1.last_http_response
    assert user_1.fetch_open_orders("GW/USD") == []
    clean(user_2)


def test_an_ioc_order_fills_what_rests_and_expires_the_rest(user_1: ccxt.binance, user_2: ccxt.binance) -> None:
    maker = user_2.create_order("GW/USD", "limit", "sell", 2, 100.1)
    taker = user_1.create_order("GW/USD", "limit", "buy", 5, 100.1, {"timeInForce": "IOC"})
    assert taker["status"] == "expired" and taker["filled"] == 2 and taker["remaining"] == 3
    assert taker["info"]["status"] == "EXPIRED" and taker["cost"] == pytest.approx(200.2)
    assert [(t["price"], t["amount"]) for t in taker["trades"]] == [(100.1, 2)]
    assert user_2.fetch_order(maker["id"], "GW/USD")["status"] == "closed"
    mine = user_1.fetch_my_trades("GW/USD")
    assert mine[-1]["side"] == "buy" and mine[-1]["amount"] == 2 and mine[-1]["takerOrMaker"] == "taker"
    assert mine[-1]["order"] == taker["id"]
    theirs = user_2.fetch_my_trades("GW/USD")
    assert theirs[-1]["side"] == "sell" and theirs[-1]["takerOrMaker"] == "maker" and theirs[-1]["id"] == mine[-1]["id"]


def test_balances_count_fills_and_lock_what_open_orders_would_spend(platform: Platform) -> None:
    ex = platform.exchange("user_3")
    before = ex.fetch_balance()
    assert before["GW"]["total"] == 0 and before["USD"]["total"] == 0
    other = platform.exchange("user_2")
    other.create_order("GW/USD", "limit", "sell", 4, 101.0)
    ex.create_order("GW/USD", "limit", "buy", 4, 101.0)
    ex.create_order("GW/USD", "limit", "buy", 2, 99.0)
    ex.create_order("GW/USD", "limit", "sell", 1, 105.0)
    balance = ex.fetch_balance()
    assert balance["GW"] == {"free": 3.0, "used": 1.0, "total": 4.0}
    assert balance["USD"]["total"] == pytest.approx(-404.0) and balance["USD"]["used"] == pytest.approx(198.0)
    clean(ex)


def test_the_order_book_is_the_gateways(user_1: ccxt.binance, user_2: ccxt.binance, platform: Platform) -> None:
    for i in range(3):
        user_1.create_order("GW/USD", "limit", "buy", 1 + i, 98.0 + i / 10)
        user_2.create_order("GW/USD", "limit", "sell", 2 + i, 102.0 + i / 10)
    book = user_1.fetch_order_book("GW/USD")
    gateway = platform.http.get("/book", params={"symbol": "GW"}).json()
    assert book["bids"] == [[p, s] for p, s, _ in gateway["bids"]]
    assert book["asks"] == [[p, s] for p, s, _ in gateway["asks"]]
    assert isinstance(book["nonce"], int) and book["nonce"] > 0
    top = platform.http.get("/api/v3/ticker/bookTicker", params={"symbol": "GW"}).json()
    assert top == {"symbol": "GW", "bidPrice": "98.20000000", "bidQty": "3.00000000", "askPrice": "102.00000000",
                   "askQty": "2.00000000"}  # fmt: skip
    clean(user_1, user_2)


def test_a_market_order_by_quote_amount_buys_what_that_amount_pays_for(user_1: ccxt.binance,
                                                                       user_2: ccxt.binance) -> None:  # fmt: skip
    user_2.create_order("GW/USD", "limit", "sell", 2, 100.0)
    user_2.create_order("GW/USD", "limit", "sell", 5, 101.0)
    for _ in range(100):  # the gateway's book follows the market data a moment after the orders' answers
        if len(user_1.fetch_order_book("GW/USD")["asks"]) == 2:
            break
    order = user_1.create_order("GW/USD", "market", "buy", None, None, {"quoteOrderQty": "400"})
    assert order["filled"] == 3 and order["cost"] == pytest.approx(301.0) and order["status"] == "closed"
    clean(user_2)


#: new orders refused before the engine: (ccxt's error, the answer's code and text, what differs from a good one)
REFUSED_ORDERS: list[tuple[type[Exception], str, dict[str, str]]] = [
    (ccxt.BadSymbol, '"code":-1121', {"symbol": "NOPE"}),
    (ccxt.InvalidOrder, '"code":-1013.*LOT_SIZE', {"quantity": "1.5"}),
    (ccxt.BadRequest, '"code":-1111', {"quantity": "1.000000001"}),
    (ccxt.InvalidOrder, '"code":-1013.*PRICE_FILTER', {"price": "99.005"}),
]


def test_refusals_give_binance_codes_and_leave_the_engine_unchanged(platform: Platform, user_1: ccxt.binance,
                                                                     user_2: ccxt.binance) -> None:  # fmt: skip
    theirs = user_2.create_order("GW/USD", "limit", "sell", 1, 103.0)
    before = platform.state_hash()  # no agent runs: only these tests' orders change it
    wrong = platform.exchange("user_1", secret="not-the-secret")
    wrong.load_markets()
    with pytest.raises(ccxt.AuthenticationError, match='"code":-1022'):
        wrong.create_order("GW/USD", "limit", "buy", 1, 99.0)
    stale = platform.exchange("user_1")
    stale.load_markets()
    stale.options["timeDifference"] = 120_000  # its clock two minutes behind
    with pytest.raises(ccxt.InvalidNonce, match='"code":-1021'):
        stale.create_order("GW/USD", "limit", "buy", 1, 99.0)
    good = {"symbol": "GW", "side": "BUY", "type": "LIMIT", "timeInForce": "GTC", "quantity": "1", "price": "99"}
    for error, answer, fields in REFUSED_ORDERS:
        with pytest.raises(error, match=answer):
            user_1.private_post_order({**good, **fields})
    with pytest.raises(ccxt.OrderNotFound, match='"code":-2011'):
        user_1.cancel_order(theirs["id"], "GW/USD")
    with pytest.raises(ccxt.OrderNotFound, match='"code":-2013'):
        user_1.fetch_order(theirs["id"], "GW/USD")
    assert platform.state_hash() == before
    assert user_2.fetch_order(theirs["id"], "GW/USD")["status"] == "open"
    clean(user_2)


def test_every_answer_carries_the_used_weight(platform: Platform) -> None:
    first = platform.http.get("/api/v3/depth", params={"symbol": "GW", "limit": 1000})
    second = platform.http.get("/api/v3/ping")
    assert first.status_code == second.status_code == 200
    assert int(second.headers["X-MBX-USED-WEIGHT-1M"]) >= int(first.headers["X-MBX-USED-WEIGHT-1M"]) + 1 >= 51
    assert platform.http.get("/api/v3/depth", params={"symbol": "NOPE"}).json() == {
        "code": -1121,
        "msg": "Invalid symbol.",
    }


# --- streams -------------------------------------------------------------------------------------------------

#: how long the order book is watched through live flow: a full minute (PROPTRADE_WATCH_S=8 for a quick run)
WATCH_S = float(os.environ.get("PROPTRADE_WATCH_S", "60"))


async def flow(platform: Platform, stop: asyncio.Event, seed: int) -> int:
    """Live flow on GW from user_2 through the gateway's own API until ``stop``: limit orders around 100 that
    sometimes cross, cancels now and then. Returns how many orders it sent."""
    rng = random.Random(seed)
    sent = 0
    headers = {"X-API-Key": KEYS["user_2"]}
    async with httpx.AsyncClient(base_url=platform.url, headers=headers, timeout=10.0) as client:
        while not stop.is_set():
            side = rng.choice(["buy", "sell"])
            price = round(100 + rng.randint(-30, 30) / 100 + (0.1 if side == "buy" else -0.1) * rng.random(), 2)
            await client.post("/order", json={"client_id": "user_2", "symbol": "GW", "side": side,
                                              "price": price, "size": rng.randint(1, 5)})  # fmt: skip
            sent += 1
            if sent % 25 == 0:
                await client.delete("/orders/user_2", params={"symbol": "GW"})
            await asyncio.sleep(rng.random() * 0.02)
    return sent


def as_levels(book: Any) -> tuple[list[list[float]], list[list[float]]]:
    return [list(level) for level in book["bids"]], [list(level) for level in book["asks"]]


async def caught_up(ex: Any, platform: Platform) -> tuple[Any, dict[str, Any]]:
    """Once the flow has stopped: ccxt's book (read, not awaited: no update may come) at the REST snapshot's
    update id, and that snapshot."""
    async with httpx.AsyncClient(base_url=platform.url) as client:
        for _ in range(200):
            rest = (await client.get("/api/v3/depth", params={"symbol": "GW", "limit": 1000})).json()
            book = ex.orderbooks.get("GW/USD")
            if book is not None and book["nonce"] == rest["lastUpdateId"]:
                return book, rest
            await asyncio.sleep(0.05)
    raise AssertionError("ccxt's book never reached the REST snapshot")


def rest_levels(rest: dict[str, Any]) -> tuple[list[list[float]], list[list[float]]]:
    return ([[float(p), float(q)] for p, q in rest["bids"]], [[float(p), float(q)] for p, q in rest["asks"]])


def test_watch_order_book_stays_in_sync_through_live_flow(platform: Platform) -> None:
    async def run() -> None:
        ex = ccxt.pro.binance({"apiKey": KEYS["user_1"], "secret": SECRETS["user_1"], "options": dict(OPTIONS)})
        point(ex, platform.url)
        stop = asyncio.Event()
        try:
            await ex.load_markets()
            first = await asyncio.wait_for(ex.watch_order_book("GW/USD"), 10)
            assert first["nonce"] is not None
            flowing = asyncio.ensure_future(flow(platform, stop, seed=1))
            deadline = time.monotonic() + WATCH_S
            updates = 0
            while time.monotonic() < deadline:
                book = await asyncio.wait_for(ex.watch_order_book("GW/USD"), 5)
                bids, asks = book["bids"], book["asks"]
                if bids and asks:
                    assert bids[0][0] < asks[0][0], "a crossed book: a diff was lost or misapplied"
                updates += 1
            stop.set()
            assert await flowing > 50 and updates > 10
            book, rest = await caught_up(ex, platform)
            assert as_levels(book) == rest_levels(rest)
        finally:
            stop.set()
            await ex.close()

    asyncio.run(run())
    platform.http.delete("/orders/user_2", params={"symbol": "GW"}, headers={"X-API-Key": KEYS["user_2"]})


def test_a_gap_in_the_depth_stream_makes_ccxt_resubscribe_and_resync(platform: Platform) -> None:
    """A proxy between ccxt.pro and the gateway drops one depth diff: ccxt sees ``U`` != previous ``u`` + 1,
    raises ChecksumError, and on the next watch subscribes again and rebuilds the book from a snapshot."""

    async def run() -> None:
        subscribes = 0
        drop = asyncio.Event()

        def applies(frame: str) -> bool:
            """A diff that ccxt's book would apply: one that ends at or before the book's id (sent before the
            snapshot ccxt took, and arriving after it) is skipped by ccxt, so losing it would show no gap."""
            book = ex.orderbooks.get("GW/USD")
            return '"depthUpdate"' in frame and book is not None and json.loads(frame)["u"] > book["nonce"]

        async def relay(client: ServerConnection) -> None:
            nonlocal subscribes
            assert client.request is not None
            async with connect(platform.ws_url + client.request.path) as upstream:

                async def down() -> None:
                    async for frame in upstream:
                        if drop.is_set() and applies(str(frame)):
                            drop.clear()  # this one is lost
                            continue
                        await client.send(frame)

                async def up() -> None:
                    nonlocal subscribes
                    async for frame in client:
                        subscribes += '"SUBSCRIBE"' in str(frame)
                        await upstream.send(frame)

                tasks = [asyncio.ensure_future(down()), asyncio.ensure_future(up())]
                await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
                for task in tasks:
                    task.cancel()

        async with serve(relay, "127.0.0.1", 0) as server:
            port = server.sockets[0].getsockname()[1]
            ex = ccxt.pro.binance({"apiKey": KEYS["user_1"], "secret": SECRETS["user_1"], "options": dict(OPTIONS)})
            point(ex, platform.url)
            ex.urls["api"]["ws"]["spot"] = f"ws://127.0.0.1:{port}/stream/ws"
            stop = asyncio.Event()
            flowing = asyncio.ensure_future(flow(platform, stop, seed=2))
            try:
                await ex.load_markets()
                await asyncio.wait_for(ex.watch_order_book("GW/USD"), 10)
                drop.set()
                with pytest.raises(ccxt.ChecksumError):
                    for _ in range(200):
                        await asyncio.wait_for(ex.watch_order_book("GW/USD"), 10)
                assert subscribes == 1, "ccxt subscribed again before the gap"
                for _ in range(20):  # ccxt subscribes again and keeps a good book through the flow
                    await asyncio.wait_for(ex.watch_order_book("GW/USD"), 10)
                assert subscribes == 2, f"{subscribes} subscriptions: one for the start, one after the gap"
                stop.set()
                await flowing
                book, rest = await caught_up(ex, platform)
                assert as_levels(book) == rest_levels(rest)
            finally:
                stop.set()
                with contextlib.suppress(BaseException):
                    await flowing
                await ex.close()

    asyncio.run(run())
    platform.http.delete("/orders/user_2", params={"symbol": "GW"}, headers={"X-API-Key": KEYS["user_2"]})


def test_ccxt_pro_watches_its_own_orders_trades_and_the_top(platform: Platform) -> None:
    async def run() -> None:
        ex = ccxt.pro.binance({"apiKey": KEYS["user_3"], "secret": SECRETS["user_3"], "options": dict(OPTIONS)})
        point(ex, platform.url)
        try:
            await ex.load_markets()
            orders = asyncio.ensure_future(ex.watch_orders("GW/USD"))
            trades = asyncio.ensure_future(ex.watch_trades("GW/USD"))
            top = asyncio.ensure_future(ex.watch_bids_asks(["GW/USD"]))
            await asyncio.sleep(0.5)  # the subscriptions are in place
            maker = await ex.create_order("GW/USD", "limit", "sell", 2, 100.7)
            seen = await asyncio.wait_for(orders, 10)
            assert [(o["id"], o["status"], o["amount"]) for o in seen] == [(maker["id"], "open", 2)]
            assert (await asyncio.wait_for(top, 10))["GW/USD"]["ask"] == 100.7
            taker = platform.exchange("user_2")
            taker.load_markets()
            taker.create_order("GW/USD", "limit", "buy", 1, 100.7)
            (trade,) = await asyncio.wait_for(trades, 10)
            assert (trade["price"], trade["amount"], trade["side"]) == (100.7, 1, "buy")
            await ex.cancel_order(maker["id"], "GW/USD")
        finally:
            await ex.close()

    asyncio.run(run())
