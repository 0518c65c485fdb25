"""The gateway's own books and the ``/ws/md`` messages, kept from the engine's market-data ring.

Each symbol has an ``L2Book`` (hotpath's book model: a BOOK_DELTA is a level's new total) and a *sequence
number* of its own that counts the messages of that symbol: every delta and trade takes the next one, and
``GET /book`` says which one its book includes. A client keeps ``seq``: a snapshot sets it, each delta or trade
must be the next; anything else is a gap, and the client subscribes again for a fresh snapshot.

When the gateway's own reader is lapped (:class:`~gateway.venue.MarketDataGap`), it reloads every book from the
engine's snapshot, ignores deltas the snapshot already holds (engine seq), and publishes a snapshot flagged
``"resync": true`` under the next seq, which every client applies as a fresh start.

Messages (JSON, built once and sent to every subscriber as is)::

    {"type": "snapshot", "symbol", "seq", "bids": [[price, size, orders]...], "asks", "mid", "best_bid",
     "best_ask", "spread", "timestamp"}          # the seed's message, plus type, symbol and seq
    {"type": "delta", "symbol", "seq", "side", "price", "size", "orders", "mid", "best_bid", "best_ask",
     "spread", "timestamp"}                      # size 0: the level is gone
    {"type": "trade", "symbol", "seq", "price", "size", "side", "trade_id", "timestamp"}   # side: the taker's
    {"type": "heartbeat", "seqs": {symbol: seq}, "timestamp"}

Public trades carry no account and no order id.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any

import orjson

from c_engine import Event, EventType, Side, Units
from hotpath import L2Book

from .fanout import Topic
from .venue import Snapshot

__all__ = ["Market"]

_DELTA, _TRADE = int(EventType.BOOK_DELTA), int(EventType.TRADE)
_SIDE_NAMES = {int(Side.BUY): "buy", int(Side.SELL): "sell"}


def dumps(message: Mapping[str, Any]) -> str:
    """A message as a WebSocket text frame (orjson)."""
    return orjson.dumps(message).decode()


class Market:
    """Books, per-symbol sequence numbers and the per-symbol topics of ``/ws/md``."""

    def __init__(self, symbols: Mapping[str, int], units: Callable[[int], Units], offset_ns: int) -> None:
        self.symbol_ids = dict(symbols)
        self.symbol_names = {sid: name for name, sid in symbols.items()}
        self.units = {sid: units(sid) for sid in self.symbol_names}
        self.books = {sid: L2Book() for sid in self.symbol_names}
        self.seq = dict.fromkeys(self.symbol_names, 0)
        self.last_trade: dict[int, int] = {}  #: symbol id -> last trade price (ticks)
        self.topics = {sid: Topic() for sid in self.symbol_names}
        self.offset_ns = offset_ns
        self.skip_upto = 0  #: engine seq the snapshots hold: older deltas are already in the books
        self.messages = 0
        self.gaps = 0

    # --- the books -------------------------------------------------------------------------------------------

    def load(self, snapshots: Mapping[int, Snapshot]) -> None:
        """Replaces books from engine snapshots (at start, after a gap)."""
        for sid, snap in snapshots.items():
            self.books[sid].replace(snap.bids, snap.asks)
            self.books[sid].stale = False
            self.skip_upto = max(self.skip_upto, snap.engine_seq)

    def resynced(self, snapshots: Mapping[int, Snapshot]) -> None:
        """After a gap: reloads the books and publishes a ``resync`` snapshot of each under its next seq."""
        self.gaps += 1
        self.load(snapshots)
        for sid in snapshots:
            self.seq[sid] += 1
            self.topics[sid].publish(dumps(self.snapshot(sid, resync=True)))

    def apply(self, events: list[Event]) -> None:
        """Applies market-data events and publishes their messages."""
        for event in events:
            sid = event.symbol_id
            book = self.books.get(sid)
            if book is None or event.seq <= self.skip_upto:
                continue
            if event.type == _DELTA:
                book.apply_delta(event.side, event.price, event.qty, event.order_count, event.seq)
            elif event.type == _TRADE:
                self.last_trade[sid] = event.price
            else:
                continue
            self.seq[sid] += 1
            self.messages += 1
            topic = self.topics[sid]
            if topic.subscribers:  # a message is built only for someone
                topic.publish(dumps(self._delta(sid, event) if event.type == _DELTA else self._trade(sid, event)))

    # --- messages --------------------------------------------------------------------------------------------

    def timestamp(self, ts_ns: int) -> float:
        return (ts_ns + self.offset_ns) / 1e9

    def top(self, sid: int) -> dict[str, float | None]:
        """mid, best_bid, best_ask and spread in human prices (None where a side is empty)."""
        units = self.units[sid]
        bid, ask = self.books[sid].best()
        best_bid = units.price(bid[0]) if bid else None
        best_ask = units.price(ask[0]) if ask else None
        mid = spread = None
        if bid and ask:
            mid = units.price(bid[0] + ask[0]) / 2
            spread = units.price(ask[0] - bid[0])
        return {"mid": mid, "best_bid": best_bid, "best_ask": best_ask, "spread": spread}

    def mark(self, sid: int) -> float | None:
        """The price (ticks) to mark positions at: the mid, else the last trade."""
        bid, ask = self.books[sid].best()
        if bid and ask:
            return (bid[0] + ask[0]) / 2
        last = self.last_trade.get(sid)
        return float(last) if last is not None else None

    def levels(self, sid: int, side: str, depth: int | None = None) -> list[tuple[float, float, int]]:
        units = self.units[sid]
        return [(units.price(p), units.size(q), n) for p, q, n in self.books[sid].levels(side, depth)]

    def snapshot(self, sid: int, depth: int | None = None, *, resync: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "snapshot", "symbol": self.symbol_names[sid], "seq": self.seq[sid]}
        out["bids"] = self.levels(sid, "bids", depth)
        out["asks"] = self.levels(sid, "asks", depth)
        out.update(self.top(sid))
        out["timestamp"] = time.time()
        if resync:
            out["resync"] = True
        return out

    def _delta(self, sid: int, event: Event) -> dict[str, Any]:
        units = self.units[sid]
        out: dict[str, Any] = {"type": "delta", "symbol": self.symbol_names[sid], "seq": self.seq[sid],
                               "side": _SIDE_NAMES.get(event.side), "price": units.price(event.price),
                               "size": units.size(max(event.qty, 0)), "orders": event.order_count}  # fmt: skip
        out.update(self.top(sid))
        out["timestamp"] = self.timestamp(event.ts_ns)
        return out

    def _trade(self, sid: int, event: Event) -> dict[str, Any]:
        units = self.units[sid]
        return {"type": "trade", "symbol": self.symbol_names[sid], "seq": self.seq[sid],
                "price": units.price(event.price), "size": units.size(event.qty),
                "side": _SIDE_NAMES.get(event.side), "trade_id": event.trade_id,
                "timestamp": self.timestamp(event.ts_ns)}  # fmt: skip

    def heartbeat(self) -> dict[str, Any]:
        return {"type": "heartbeat", "seqs": {self.symbol_names[s]: n for s, n in self.seq.items()},
                "timestamp": time.time()}  # fmt: skip
