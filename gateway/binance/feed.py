"""Binance market data from the gateway's books: the per-symbol update id, the diff-depth, trade and book-ticker
streams, and the recent public trades.

**The update id.** Every BOOK_DELTA the gateway applies to a symbol's book takes the symbol's next *update id*
(a contiguous counter of the gateway's own: the engine's seq has gaps, since it counts every event of every
symbol). ``GET /api/v3/depth``'s ``lastUpdateId`` is the id of the last delta its book holds, and a depth diff
covers ids ``U`` to ``u``, so a client following Binance's rules (drop a diff with ``u <= lastUpdateId``; the
first must have ``U <= lastUpdateId + 1 <= u``, each next ``U`` = previous ``u`` + 1) keeps an exact book.
The book and the id change together, in the market-data task, with no await between, so a REST snapshot
and the stream always agree. When the gateway itself loses market data (its reader lapped on the ring) it
reloads its books from the engine and skips one id: every client sees a gap and resyncs, as it must.

**Diffs.** ``<sym>@depth@100ms`` and ``<sym>@depth`` (1000 ms, Binance's default) collect the levels that
changed during their interval, the last total of each (quantity "0": the level is gone), and send one
``depthUpdate`` for it, or nothing when nothing changed (so ``U`` always follows the previous ``u``). A stream
collects only while it has subscribers; a newcomer starts from a REST snapshot anyway. ``E`` is the send time.
No ``pu``: that field switches ccxt to futures rules.

**Trades and the top.** ``<sym>@trade`` sends each engine TRADE as it comes (``m``: the buyer was the maker,
i.e. the taker sold); ``<sym>@bookTicker`` sends the best bid and ask when either changes, with the update id.
"""

from __future__ import annotations

import asyncio
import collections
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson

from c_engine import Event, EventType, Side
from hotpath import L2Book

from ..fanout import Topic
from .instruments import Instrument
from .views import levels_json

__all__ = ["DEPTH_INTERVALS_S", "MarketFeed", "PublicTrade", "StreamTopics", "TRADES_KEPT"]

_DELTA, _TRADE = int(EventType.BOOK_DELTA), int(EventType.TRADE)
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
#: diff-depth stream suffix -> its interval
DEPTH_INTERVALS_S = {"depth@100ms": 0.1, "depth": 1.0}
#: recent public trades kept per symbol (GET /api/v3/trades takes at most 1000)
TRADES_KEPT = 1000


@dataclass(frozen=True)
class PublicTrade:
    trade_id: int
    price: int
    qty: int
    time_ms: int
    buyer_maker: bool


@dataclass
class StreamTopics:
    """A stream's subscribers: raw frames (``/ws``), and wrapped ones ``{"stream", "data"}`` (``/stream``)."""

    raw: Topic = field(default_factory=Topic)
    combined: Topic = field(default_factory=Topic)

    def __bool__(self) -> bool:
        return bool(self.raw.subscribers or self.combined.subscribers)

    def publish(self, name: str, payload: Mapping[str, Any]) -> None:
        data = orjson.dumps(payload)
        if self.raw.subscribers:
            self.raw.publish(data.decode())
        if self.combined.subscribers:
            self.combined.publish((b'{"stream":"' + name.encode() + b'","data":' + data + b"}").decode())


@dataclass
class _Pending:
    """One diff stream's changes since its last send."""

    first_id: int = 0
    bids: dict[int, int] = field(default_factory=dict)
    asks: dict[int, int] = field(default_factory=dict)


class MarketFeed:
    """See the module docstring. Fed by the gateway's market-data task (:meth:`apply`, :meth:`gap`)."""

    def __init__(self, instruments: Mapping[int, Instrument], books: Mapping[int, L2Book], offset_ns: int) -> None:
        self.instruments = dict(instruments)
        self.books = books
        self.offset_ns = offset_ns
        self.update_id = dict.fromkeys(self.instruments, 1)  #: the id of the last delta each book holds
        self.trades = {sid: collections.deque[PublicTrade](maxlen=TRADES_KEPT) for sid in self.instruments}
        self.streams: dict[str, StreamTopics] = {}
        for inst in self.instruments.values():
            for suffix in (*DEPTH_INTERVALS_S, "trade", "bookTicker"):
                self.streams[f"{inst.stream_name}@{suffix}"] = StreamTopics()
        self._pending: dict[tuple[int, str], _Pending] = {}
        self._tops: dict[int, tuple[Any, Any]] = {}

    def stream(self, name: str) -> StreamTopics | None:
        return self.streams.get(name)

    def apply(self, events: list[Event], skip_upto: int) -> None:
        """One batch of market data, after the gateway's books took it; ``skip_upto``: the engine seq its last
        snapshot held (older events were not applied)."""
        touched: set[int] = set()
        for event in events:
            sid = event.symbol_id
            inst = self.instruments.get(sid)
            if inst is None or event.seq <= skip_upto:
                continue
            if event.type == _DELTA:
                self.update_id[sid] += 1
                touched.add(sid)
                for suffix in DEPTH_INTERVALS_S:
                    if self.streams[f"{inst.stream_name}@{suffix}"]:
                        pending = self._pending.get((sid, suffix))
                        if pending is None:
                            pending = self._pending[(sid, suffix)] = _Pending(self.update_id[sid])
                        side = pending.bids if event.side == _BUY else pending.asks
                        side[event.price] = max(event.qty, 0)
            elif event.type == _TRADE:
                ms = (event.ts_ns + self.offset_ns) // 1_000_000
                trade = PublicTrade(event.trade_id, event.price, event.qty, ms, event.side == _SELL)
                self.trades[sid].append(trade)
                topics = self.streams[f"{inst.stream_name}@trade"]
                if topics:
                    topics.publish(f"{inst.stream_name}@trade", {
                        "e": "trade", "E": int(time.time() * 1000), "s": inst.name, "t": trade.trade_id,
                        "p": inst.price(trade.price), "q": inst.qty(trade.qty), "T": ms, "m": trade.buyer_maker,
                        "M": True})  # fmt: skip
        for sid in touched:
            self._book_ticker(sid)

    def _book_ticker(self, sid: int) -> None:
        top = self.books[sid].best()
        if self._tops.get(sid) == top:
            return
        self._tops[sid] = top
        inst = self.instruments[sid]
        topics = self.streams[f"{inst.stream_name}@bookTicker"]
        if topics:
            topics.publish(f"{inst.stream_name}@bookTicker", {"u": self.update_id[sid], "s": inst.name,
                                                               **self.top_json(sid)})  # fmt: skip

    def top_json(self, sid: int) -> dict[str, str]:
        """bidPrice, bidQty, askPrice, askQty ("0.00000000" for an empty side), as ``ticker/bookTicker``."""
        inst = self.instruments[sid]
        bid, ask = self.books[sid].best()
        zero = inst.price(0), inst.qty(0)
        bp, bq = (inst.price(bid[0]), inst.qty(bid[1])) if bid else zero
        ap, aq = (inst.price(ask[0]), inst.qty(ask[1])) if ask else zero
        return {"b": bp, "B": bq, "a": ap, "A": aq}

    def gap(self) -> None:
        """The gateway lost market data and reloaded its books: skip one id, so every client resyncs."""
        for sid in self.update_id:
            self.update_id[sid] += 1
        self._pending.clear()
        self._tops.clear()

    def depth(self, sid: int, limit: int) -> dict[str, Any]:
        """``GET /api/v3/depth``'s body."""
        inst, book = self.instruments[sid], self.books[sid]
        bids = [(p, q) for p, q, _ in book.levels("bids", limit)]
        asks = [(p, q) for p, q, _ in book.levels("asks", limit)]
        return {"lastUpdateId": self.update_id[sid], "bids": levels_json(inst, bids), "asks": levels_json(inst, asks)}

    def flush(self, suffix: str) -> None:
        """Sends each symbol's collected diff of stream ``suffix``."""
        now_ms = int(time.time() * 1000)
        for sid, inst in self.instruments.items():
            pending = self._pending.pop((sid, suffix), None)
            name = f"{inst.stream_name}@{suffix}"
            topics = self.streams[name]
            if pending is None or not topics:
                continue
            topics.publish(name, {"e": "depthUpdate", "E": now_ms, "s": inst.name, "U": pending.first_id,
                                  "u": self.update_id[sid], "b": levels_json(inst, sorted(pending.bids.items())),
                                  "a": levels_json(inst, sorted(pending.asks.items()))})  # fmt: skip

    async def run(self) -> None:
        """Sends the diffs: every 100 ms, and every 1000 ms. Run it as a task."""
        ticks = 0
        step = DEPTH_INTERVALS_S["depth@100ms"]
        every = round(DEPTH_INTERVALS_S["depth"] / step)
        while True:
            await asyncio.sleep(step)
            ticks += 1
            self.flush("depth@100ms")
            if ticks % every == 0:
                self.flush("depth")
