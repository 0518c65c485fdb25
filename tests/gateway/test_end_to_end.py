"""The gateway end to end: ``proptrade up`` launches the engine, a maker agent and the gateway as processes,
and real clients (httpx, websockets) talk to it over 127.0.0.1. One platform for the module; its teardown
fails the tests if a process or a /dev/shm segment of the run is left behind.

The gateway's accounts trade on their own symbol, GW, so the maker on SIM never meets them; market data on
GW comes from the tests' own orders.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from hotpath.testing import Leftovers, ServedPlatform

CONFIG = """
[engine]
ring_capacity = 1024
md_capacity = 4096
heartbeat_timeout_s = 5.0
max_orders = 65536

[[symbols]]
name = "SIM"
tick_size = 0.01
band_ticks = 1000
reference_price = 10000

[[symbols]]
name = "GW"
tick_size = 0.01
band_ticks = 1000
reference_price = 10000

[bridge]
enabled = false

[[accounts]]
name = "mm_1"
client = 1

[[accounts]]
name = "user_1"
client = 20
api_key = "key-1"

[[accounts]]
name = "user_2"
client = 21
api_key = "key-2"

[[accounts]]
name = "user_3"
client = 22
api_key = "key-3"

[probe]
hz = 0

[gateway]
port = 0
ws_queue = 64
rate_per_s = 100
rate_burst = 200
heartbeat_s = 1.0

[[agents]]
name = "maker"
module = "strategies.agent"
args = ["--strategy", "inventory_skew", "--size", "5", "--half-spread", "0.02", "--max-position", "200"]
accounts = ["mm_1"]
symbol = "SIM"
"""
K1, K2, K3 = {"X-API-Key": "key-1"}, {"X-API-Key": "key-2"}, {"X-API-Key": "key-3"}


class Platform(ServedPlatform):
    """The launched platform and an HTTP client of its gateway."""

    def __init__(self, tmp: Path) -> None:
        super().__init__(CONFIG, tmp, "gw")
        self.http = httpx.Client(base_url=self.url, timeout=10.0)

    def stop(self) -> Leftovers:
        if hasattr(self, "http"):
            self.http.close()
        return super().stop()


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Platform]:
    with Platform(tmp_path_factory.mktemp("gateway_e2e")) as p:
        yield p
    assert "gateway" in "".join(p.lines) and "stopped" in "".join(p.lines)


def order(p: Platform, account: str, headers: dict[str, str], **fields: Any) -> httpx.Response:
    body = {"client_id": account, "symbol": "GW", "side": "buy", "type": "limit", "price": 100.05, "size": 5}
    return p.http.post("/order", json={**body, **fields}, headers=headers)


def clean(p: Platform) -> None:
    for account, key in (("user_1", K1), ("user_2", K2)):
        assert p.http.delete(f"/orders/{account}", headers=key).status_code == 200


def test_order_entry_partial_fills_and_the_fill_stream_in_order(platform: Platform) -> None:
    async def run() -> list[dict[str, Any]]:
        async with connect(f"{platform.ws_url}/ws/fills/user_1", additional_headers=K1) as ws:
            maker = order(platform, "user_1", K1, size=5, client_order_id=41).json()
            assert maker["status"] == "accepted" and maker["state"] == "open"
            taker = order(platform, "user_2", K2, side="sell", size=2).json()
            assert taker["state"] == "filled" and taker["fills"][0]["size"] == 2.0
            second = order(platform, "user_2", K2, side="sell", size=1).json()
            assert second["fills"][0]["price"] == 100.05
            out: list[dict[str, Any]] = []
            while len(out) < 3:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message["event"] != "heartbeat":
                    out.append(message)
            return out

    events = asyncio.run(run())
    assert [(e["event"], e.get("size")) for e in events] == [("ack", 5.0), ("fill", 2.0), ("fill", 1.0)]
    assert [e["seq"] for e in events] == sorted(e["seq"] for e in events)
    assert events[1]["client_order_id"] == 41 and events[2]["leaves"] == 2.0
    (resting,) = platform.http.get("/orders/user_1", headers=K1).json()
    assert resting["leaves"] == 2.0 and resting["filled"] == 3.0
    risk = platform.http.get("/risk/user_1", headers=K1).json()
    assert risk["positions"][0]["position"] == 3.0 and risk["open_orders"] == 1
    clean(platform)


def test_cancel_modify_and_mass_cancel(platform: Platform) -> None:
    first = order(platform, "user_1", K1, price=99.00).json()["order_id"]
    modified = platform.http.patch(f"/order/{first}", json={"size": 3, "price": 99.01}, headers=K1).json()
    assert modified["status"] == "modified" and modified["leaves"] == 3.0
    assert platform.http.post(f"/cancel/{first}", headers=K1).json()["status"] == "cancelled"
    assert platform.http.post(f"/cancel/{first}", headers=K1).status_code == 404
    for price in (98.0, 98.01, 98.02):
        order(platform, "user_1", K1, price=price)
    mass = platform.http.delete("/orders/user_1", params={"symbol": "GW"}, headers=K1).json()
    assert mass["status"] == "cancelled" and mass["cancelled"] == 3
    assert platform.http.get("/orders/user_1", headers=K1).json() == []


def test_snapshot_and_deltas_rebuild_exactly_the_book_and_a_gap_is_detected(platform: Platform) -> None:
    async def run() -> None:
        async with connect(f"{platform.ws_url}/ws/md?symbol=GW") as ws:
            snapshot = json.loads(await ws.recv())
            assert snapshot["type"] == "snapshot"
            book = {"buy": {p: (s, n) for p, s, n in snapshot["bids"]},
                    "sell": {p: (s, n) for p, s, n in snapshot["asks"]}}  # fmt: skip
            seq = snapshot["seq"]
            for i in range(5):
                order(platform, "user_1", K1, price=99.50 + i / 100, size=1 + i)
            order(platform, "user_2", K2, side="sell", price=99.52, size=4)
            order(platform, "user_2", K2, side="sell", price=100.50, size=7)
            expected = platform.http.get("/book", params={"symbol": "GW"}).json()
            while seq < expected["seq"]:
                message = json.loads(await asyncio.wait_for(ws.recv(), 5))
                if message["type"] == "heartbeat":
                    continue
                assert message["seq"] == seq + 1, "a gap"
                seq = message["seq"]
                if message["type"] == "trade":
                    assert "client_id" not in message and "order_id" not in message
                    continue
                levels = book[message["side"]]
                if message["size"]:
                    levels[message["price"]] = (message["size"], message["orders"])
                else:
                    levels.pop(message["price"], None)
            bids = [[p, *book["buy"][p]] for p in sorted(book["buy"], reverse=True)]
            asks = [[p, *book["sell"][p]] for p in sorted(book["sell"])]
            assert (bids, asks) == (expected["bids"], expected["asks"])
            # A client that lost a message sees the next seq jump, asks for a snapshot and is whole again.
            order(platform, "user_1", K1, price=99.00)
            order(platform, "user_1", K1, price=98.99)
            await ws.recv()  # ... as if this one were lost
            message = json.loads(await ws.recv())
            while message["type"] == "heartbeat":
                message = json.loads(await ws.recv())
            assert message["seq"] == seq + 2  # the gap it detects
            # The snapshot equals the book at its seq. An order that traded gives several messages, and the gateway
            # may take the last of them between the snapshot and GET /book: then both are asked for again.
            for _ in range(20):
                await ws.send(json.dumps({"op": "snapshot"}))
                while (fresh := json.loads(await ws.recv()))["type"] != "snapshot":
                    pass
                now = platform.http.get("/book", params={"symbol": "GW"}).json()
                if fresh["seq"] == now["seq"]:
                    break
                await asyncio.sleep(0.05)
            assert fresh["seq"] == now["seq"] and (fresh["bids"], fresh["asks"]) == (now["bids"], now["asks"])

    asyncio.run(run())
    clean(platform)


def test_auth_answers_401_without_a_key_and_403_for_another_account(platform: Platform) -> None:
    r = platform.http.post("/order", json={"client_id": "user_1", "side": "buy", "price": 100.0, "size": 1,
                                           "symbol": "GW"})  # fmt: skip
    assert r.status_code == 401 and r.json()["code"] == "UNAUTHORIZED"
    assert order(platform, "user_1", K2).status_code == 403
    mine = order(platform, "user_1", K1, price=97.0).json()["order_id"]
    assert platform.http.post(f"/cancel/{mine}", headers=K2).status_code == 403
    assert platform.http.get("/fills/user_1", headers=K2).status_code == 403

    async def ws_status(path: str, headers: dict[str, str] | None) -> int:
        try:
            async with connect(f"{platform.ws_url}{path}", additional_headers=headers):
                return 101
        except InvalidStatus as e:
            return int(e.response.status_code)

    assert asyncio.run(ws_status("/ws/fills/user_1", None)) == 401
    assert asyncio.run(ws_status("/ws/fills/user_1", K2)) == 403
    assert asyncio.run(ws_status("/ws/fills/user_1", K1)) == 101
    clean(platform)


def test_duplicate_client_order_ids_are_refused_while_the_first_is_open(platform: Platform) -> None:
    assert order(platform, "user_1", K1, price=96.0, client_order_id=900).json()["status"] == "accepted"
    dup = order(platform, "user_1", K1, price=96.01, client_order_id=900)
    assert dup.status_code == 409 and dup.json()["code"] == "DUPLICATE_CLIENT_ORDER_ID"
    clean(platform)
    assert order(platform, "user_1", K1, price=96.0, client_order_id=900).json()["status"] == "accepted"
    clean(platform)


def test_a_key_over_its_rate_limit_gets_429_with_retry_after(platform: Platform) -> None:
    async def run() -> list[httpx.Response]:
        # Batches of 100 at once until one is refused: the bucket (200, refilled at 100/s) runs dry within a few
        # batches however slowly a loaded machine answers them.
        responses: list[httpx.Response] = []
        async with httpx.AsyncClient(base_url=platform.url, timeout=10.0) as client:
            for _ in range(30):
                responses += await asyncio.gather(*(client.get("/orders/user_3", headers=K3) for _ in range(100)))
                if any(r.status_code == 429 for r in responses):
                    break
        return responses

    responses = asyncio.run(run())
    limited = [r for r in responses if r.status_code == 429]
    assert limited and all(r.status_code in (200, 429) for r in responses)
    assert limited[0].json()["code"] == "RATE_LIMITED" and int(limited[0].headers["Retry-After"]) >= 1
    assert platform.http.get("/orders/user_1", headers=K1).status_code == 200  # another key is not limited


BAD = [
    b"{not json",
    b'{"client_id": "user_1", "symbol": "GW", "side": "buy", "price": NaN, "size": 5}',
    b'{"client_id": "user_1", "symbol": "GW", "side": "buy", "price": 1e999, "size": 5}',
    b'{"client_id": "user_1", "symbol": "GW", "side": "buy", "price": -1, "size": 5}',
    b'{"client_id": "user_1", "symbol": "GW", "side": "buy", "price": 0, "size": 5}',
    b'{"client_id": "user_1", "symbol": "GW", "side": "buy", "price": 100.05, "size": 0}',
    b'{"client_id": "user_1", "symbol": "GW", "side": "buy", "price": 100.05, "size": -3}',
    b'{"client_id": "user_1", "symbol": "GW", "side": "buy", "price": 100.051, "size": 5}',
    b'{"client_id": "user_1", "symbol": "GW", "side": "buy", "price": 100.05, "size": 0.5}',
    b'{"client_id": "user_1", "symbol": "NOPE", "side": "buy", "price": 100.05, "size": 5}',
    b'{"client_id": "nobody", "symbol": "GW", "side": "buy", "price": 100.05, "size": 5}',
    b'{"client_id": "user_1", "symbol": "GW", "side": 7, "price": "100.05", "size": [5]}',
    b"[" * 10_000,
    b'{"client_id": "user_1", "symbol": "GW", "side": "buy", "price": 100.05, "size": 5, "pad": "'
    + b"x" * 40_000
    + b'"}',
]


def test_bad_input_is_a_4xx_and_leaves_the_engine_state_unchanged(platform: Platform) -> None:
    deadline = time.monotonic() + 10  # the maker on SIM settles after its first quotes
    before = platform.state_hash()
    while time.monotonic() < deadline:
        time.sleep(0.3)
        now = platform.state_hash()
        if now == before:
            break
        before = now
    for raw in BAD:
        r = platform.http.post("/order", content=raw, headers={**K1, "content-type": "application/json"})
        assert 400 <= r.status_code < 500, (raw[:80], r.status_code, r.text)
        assert set(r.json()) == {"code", "message", "details"}
    for path in ("/cancel/0", "/cancel/-1", "/cancel/x", "/order/1"):
        assert 400 <= platform.http.post(path, headers=K1).status_code < 500
    assert platform.http.patch("/order/1", json={"size": "big"}, headers=K1).status_code == 422
    assert platform.http.get("/book", params={"depth": 0}).status_code == 422
    assert platform.state_hash() == before


def test_a_slow_websocket_client_is_dropped_while_another_keeps_up(platform: Platform) -> None:
    async def run() -> None:
        raw = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)  # a client that barely reads
        raw.connect((platform.http.base_url.host, platform.http.base_url.port))
        slow = await connect(f"{platform.ws_url}/ws/md?symbol=GW", sock=raw, max_queue=1)
        async with connect(f"{platform.ws_url}/ws/md?symbol=GW") as good:
            seq = json.loads(await good.recv())["seq"]
            for i in range(40):  # a deep book: every snapshot frame is large
                order(platform, "user_1", K1, price=90.0 + i / 100, size=1)
            for _ in range(400):  # the slow client asks for far more than it reads
                await slow.send('{"op": "snapshot"}')
            for i in range(20):
                order(platform, "user_2", K2, side="sell", price=101.0 + i / 100, size=1)
            target = platform.http.get("/book", params={"symbol": "GW"}).json()["seq"]
            while seq < target:
                message = json.loads(await asyncio.wait_for(good.recv(), 5))
                if message["type"] != "heartbeat":
                    assert message["seq"] == seq + 1
                    seq = message["seq"]
            metrics = platform.http.get("/metrics").text
            assert re.search(r'gateway_ws_dropped_total\{stream="md"\} [1-9]', metrics), metrics[-2000:]
        with pytest.raises(ConnectionClosed) as closed:
            while True:
                await asyncio.wait_for(slow.recv(), 15)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4008

    asyncio.run(run())
    clean(platform)
