"""The L2 book model that every market-data reader keeps, and the one function that applies a BOOK_DELTA.

A BOOK_DELTA carries a level's new total (qty, order count), so applying one is a dict store (or a delete for
qty 0) and a book kept from deltas is exact at any depth as long as none is missed. ``BookView`` (from the
market-data ring), the ``Bridge`` (which republishes the ring on ZeroMQ) and ``MarketDataSubscriber`` (from
the bridge) all keep ``L2Book``s and all apply deltas through :meth:`L2Book.apply_delta`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence

from c_engine import Side

__all__ = ["L2Book", "LevelList", "SIDE_CODES", "SnapshotSource"]

#: A price level on the wire and in snapshots: [price ticks, qty lots, order_count].
LevelList = list[list[int]]
#: ``snapshot_source(symbol_id) -> (engine_seq, bids, asks)``; levels are (price, qty, order_count), best
#: first (``c_engine.Level`` tuples work), and engine_seq is the engine seq the snapshot includes.
SnapshotSource = Callable[[int], tuple[int, Sequence[Sequence[int]], Sequence[Sequence[int]]]]

_BUY = int(Side.BUY)
_SELL = int(Side.SELL)
#: Side names as JSON market data spells them -> wire codes (what ``apply_delta`` takes).
SIDE_CODES = {"buy": _BUY, "sell": _SELL}


class L2Book:
    """One symbol's price levels: ``bids``/``asks`` map price (ticks) -> (qty lots, order_count).

    Sorting happens only when someone asks for levels (snapshots are rare). The best bid and ask are cached: a
    delta that adds a better level updates them, one that removes the best forgets it, and the next read scans
    the side once, so a reader that asks for the top after every delta of a deep book (thousands of levels)
    pays a scan only when the best level leaves. Change the levels through ``apply_delta`` and ``replace`` only.
    """

    __slots__ = ("bids", "asks", "stale", "engine_seq", "_best_bid", "_best_ask")

    def __init__(self) -> None:
        self.bids: dict[int, tuple[int, int]] = {}
        self.asks: dict[int, tuple[int, int]] = {}
        self.stale = False  #: True after data was lost and no snapshot repaired it
        self.engine_seq = 0  #: engine seq of the last event or snapshot applied
        self._best_bid: int | None = None  # None: not known (the next read scans)
        self._best_ask: int | None = None

    def apply_delta(self, side: int, price: int, qty: int, order_count: int, engine_seq: int) -> None:
        """Applies one BOOK_DELTA (side: wire code): the level's new total; qty <= 0 removes the level."""
        if side == _BUY:
            if qty > 0:
                self.bids[price] = (qty, order_count)
                if self._best_bid is not None and price > self._best_bid:
                    self._best_bid = price
            else:
                self.bids.pop(price, None)
                if price == self._best_bid:
                    self._best_bid = None
        elif side == _SELL:
            if qty > 0:
                self.asks[price] = (qty, order_count)
                if self._best_ask is not None and price < self._best_ask:
                    self._best_ask = price
            else:
                self.asks.pop(price, None)
                if price == self._best_ask:
                    self._best_ask = None
        else:
            raise ValueError(f"bad side {side!r}")
        self.engine_seq = engine_seq

    def apply_deltas(self, deltas: Iterable[tuple[int, int, int, int, int]]) -> None:
        """:meth:`apply_delta` for each of ``deltas`` in turn, each given as (side, engine_seq, order_count,
        price, qty): a BOOK_DELTA's fields in the wire's order, as a struct reads them from the event's bytes
        (``hotpath.run_split``)."""
        apply = self.apply_delta
        for side, seq, count, price, qty in deltas:
            apply(side, price, qty, count, seq)

    def replace(self, bids: Iterable[Sequence[int]], asks: Iterable[Sequence[int]]) -> None:
        """Replaces both sides with (price, qty, order_count) levels; drops empty ones."""
        self.bids = {int(p): (int(q), int(c)) for p, q, c in bids if q > 0}
        self.asks = {int(p): (int(q), int(c)) for p, q, c in asks if q > 0}
        self._best_bid = self._best_ask = None

    def levels(self, side: int | str, depth: int | None = None) -> LevelList:
        """[[price, qty, order_count], ...] best first (bids high to low, asks low to high); side: wire code,
        "buy"/"bids" or "sell"/"asks"."""
        buy = side in (_BUY, "buy", "bids")
        levels = self.bids if buy else self.asks
        prices = sorted(levels, reverse=buy)
        if depth is not None:
            prices = prices[:depth]
        return [[p, *levels[p]] for p in prices]

    def best_bid(self) -> int | None:
        """The best bid price (ticks), None if there is no bid."""
        if self._best_bid is None and self.bids:
            self._best_bid = max(self.bids)
        return self._best_bid

    def best_ask(self) -> int | None:
        """The best ask price (ticks), None if there is no ask."""
        if self._best_ask is None and self.asks:
            self._best_ask = min(self.asks)
        return self._best_ask

    def best(self) -> tuple[tuple[int, int] | None, tuple[int, int] | None]:
        """((bid price, qty) or None, (ask price, qty) or None)."""
        bid = self.best_bid()
        ask = self.best_ask()
        return (
            (bid, self.bids[bid][0]) if bid is not None else None,
            (ask, self.asks[ask][0]) if ask is not None else None,
        )

    def to_dict(self, depth: int | None = None) -> dict[str, LevelList]:
        return {"bids": self.levels("bids", depth), "asks": self.levels("asks", depth)}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, L2Book) and self.bids == other.bids and self.asks == other.asks

    def __repr__(self) -> str:
        return f"L2Book(bids={self.levels('bids')}, asks={self.levels('asks')}, stale={self.stale})"
