"""``BinanceSource``: a Binance USD-M capture (depth diffs and trades) as the backtest's market.

The book is rebuilt by update ids and held in the engine as resting orders of a book client
(``c_engine.binance.BinanceReplay``: a level's increase is a new order at its back). L2 data does not say which
orders left a level or which traded, so two assumptions are named and chosen per run:

- **Queue model** (how a shrinking level moves a strategy's queue place; hftbacktest's queue models are the
  reference): ``risk_averse`` takes every decrease off the back of the level, so the quantity ahead of the
  strategy only shrinks by trades (its place advances only when the market trades through it);
  ``optimistic`` takes it off the front (cancels come from ahead of it); ``power:N`` splits each decrease
  between the book quantity ahead of the strategy's first order there (A) and behind it (B) in proportion
  ``A^N : B^N`` (``power:1`` is proportional; higher N puts more of the cancels on the larger side), a
  deterministic form of hftbacktest's probabilistic queue model. A level without a strategy order loses
  quantity off its back under every model.
- **Trades** are replayed as IOC orders of a taker client at the trade's price, for the trade's quantity, on
  the aggressor's side (``buyer_maker``: a sell took the bid). A trade at a price says nothing rested better on
  the maker's side at that moment: book quantity the rebuilt book still holds there (a sweep's earlier levels,
  whose diff comes later) is cancelled first (``BinanceReplay.clear_better``; the strategy's own quotes stay).
  The engine takes the level's front first, so a
  strategy order fills only once the book quantity ahead of it has traded. Market impact ``extend`` (default):
  the IOC is enlarged by the strategy's quantity at better prices, and by its quantity at the trade's price if
  the trade reached past the book quantity ahead of it, so the book still loses exactly what the trade took and
  the strategy is filled where the recorded aggressor passed its quote (optimistic in assuming the aggressor
  would have taken that quantity too). ``displace``: the IOC keeps the recorded size, so the strategy's fill
  displaces book quantity, which the next diff of that level restores.

Messages are replayed in exchange time (``T``: a diff's transaction time, a trade's time), trades before a diff
of the same millisecond (a diff's ``T`` is that of the last update it carries, so it includes trades of its
millisecond); diffs of the same time keep their update-id order. Diffs before the snapshot, and trades before
its time, are skipped; a sequence gap stops the book (the run reports it).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from os import PathLike
from typing import Any

import numpy as np

from c_engine import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    Command,
    Engine,
    EngineConfig,
    Event,
    EventType,
    Side,
    Stp,
    SymbolConfig,
    Tif,
    iter_recorded_binance,
    open_recording,
)
from c_engine.binance import (
    BinanceReplay,
    DepthUpdate,
    DiffResult,
    Snapshot,
    Trade,
    iter_messages,
    symbol_config,
    take_from_back,
)

from .own_orders import StrategyOrders


def _is_recording(path: str | PathLike[str]) -> bool:
    """A Parquet file (its magic bytes), i.e. a recording rather than a capture."""
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


__all__ = ["BinanceSource", "QUEUE_MODELS"]

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_TRADE = int(EventType.TRADE)
#: the queue models' names (``power:N`` takes a number)
QUEUE_MODELS = ("risk_averse", "optimistic", "power:N")
_COUNTED = {DiffResult.GAP: "gaps", DiffResult.STALE: "stale", DiffResult.OLD: "old"}
#: the clients of the book's orders and of the trades' IOCs (below the strategies' ids)
BOOK_CLIENT, TAKER_CLIENT = 1, 3


def _parse_queue(spec: str) -> tuple[str, float]:
    if spec in ("risk_averse", "optimistic"):
        return spec, 0.0
    if spec.startswith("power:"):
        try:
            n = float(spec.removeprefix("power:"))
        except ValueError:
            n = math.nan
        if n > 0 and math.isfinite(n):
            return "power", n
    raise ValueError(f"unknown queue model {spec!r}: choose risk_averse, optimistic or power:N (N > 0)")


class BinanceSource:
    """A capture file (plain or gzip) of one symbol's ``@depth`` and ``@trade`` streams with a snapshot."""

    name = "binance"

    def __init__(
        self,
        path: str | PathLike[str],
        *,
        symbol: str = "BTCUSDT",
        tick: float = 0.1,
        lot: float = 0.001,
        queue: str = "risk_averse",
        impact: str = "extend",
    ) -> None:
        self.queue_model, self.power = _parse_queue(queue)
        if impact not in ("extend", "displace"):
            raise ValueError(f"unknown market impact policy {impact!r}: extend or displace")
        self.impact = impact
        self.queue_spec = queue
        self.symbol = symbol
        self._config = symbol_config(symbol, tick, lot)
        snapshot: Snapshot | None = None
        timeline: list[tuple[int, int, int, Any]] = []
        records: Iterable[Any]
        if _is_recording(path):  # c_engine.record_binance: the parsed records, read back far faster
            info = open_recording(path)
            if info.kind != "binance":
                raise ValueError(f"{path}: a {info.kind} recording, not a Binance one")
            symbol, tick, lot = str(info.params["symbol"]), float(info.params["tick"]), float(info.params["lot"])
            self.symbol, self._config = symbol, symbol_config(symbol, tick, lot)
            records = iter_recorded_binance(path)
        else:
            records = iter_messages(path, symbol, tick, lot)
        for i, msg in enumerate(records):
            if isinstance(msg, Snapshot):
                if snapshot is None:
                    snapshot = msg
            elif isinstance(msg, DepthUpdate):
                timeline.append((msg.transact_ns, 1, i, msg))
            elif isinstance(msg, Trade):
                timeline.append((msg.trade_ns, 0, i, msg))
        if snapshot is None:
            raise ValueError(f"{path}: no depth snapshot of {symbol}")
        self.snapshot = snapshot
        timeline.sort(key=lambda item: item[:3])
        start = snapshot.transact_ns
        self._timeline = [(t, msg) for t, kind, _, msg in timeline
                          if not (isinstance(msg, Trade) and t < start)]  # fmt: skip
        self._pos = 0
        self.total = len(self._timeline)
        self.executed = 0
        self.orders = StrategyOrders()
        self.replay: BinanceReplay | None = None
        self.counts = {"diffs": 0, "gaps": 0, "old": 0, "stale": 0, "trades": 0, "cleared": 0, "trades_off_price": 0}

    @property
    def assumptions(self) -> list[str]:
        return [f"binance: queue model {self.queue_spec}, market impact {self.impact}; diffs and trades in "
                f"exchange time"]  # fmt: skip

    def symbols(self) -> list[SymbolConfig]:
        return [self._config]

    def engine_config(self) -> EngineConfig:
        """Room for the whole rebuilt book (thousands of levels a side, an order or more each)."""
        return EngineConfig(max_orders=1 << 20, max_levels_per_side=1 << 16)

    def open(self, engine: Engine) -> None:
        self.replay = BinanceReplay(engine, self.symbol, book_client=BOOK_CLIENT, exclusive=False,
                                    split=self._split)  # fmt: skip
        self.orders.observe_market_rows(self.replay.load(self.snapshot))

    def peek_ns(self) -> int | None:
        return self._timeline[self._pos][0] if self._pos < len(self._timeline) else None

    def run_until(self, engine: Engine, limit_ns: int) -> None:
        replay = self.replay
        assert replay is not None
        timeline = self._timeline
        while self._pos < len(timeline) and timeline[self._pos][0] <= limit_ns:
            _, msg = timeline[self._pos]
            self._pos += 1
            self.executed += 1
            if isinstance(msg, DepthUpdate):
                applied = replay.apply(msg)
                result = applied.result
                if result == DiffResult.APPLIED:
                    self.counts["diffs"] += 1
                    self.orders.observe_market_rows(applied.events)
                else:
                    self.counts[_COUNTED[result]] += 1
            else:
                self._trade(engine, msg)

    def _trade(self, engine: Engine, trade: Trade) -> None:
        self.counts["trades"] += 1
        maker_side = _BUY if trade.buyer_maker else _SELL
        assert self.replay is not None
        cleared = self.replay.clear_better(maker_side, trade.price, trade.trade_ns)
        if len(cleared):
            self.counts["cleared"] += 1
            self.orders.observe_market_rows(cleared)
        extra = 0
        if self.impact == "extend":
            extra = self.orders.qty_better(maker_side, trade.price)
            place = self.orders.first_place(maker_side, trade.price)
            if place is not None and trade.qty > self._book_ahead(maker_side, trade.price, place):
                extra += self.orders.qty_at(maker_side, trade.price)
        assert self.replay is not None
        taker_side = _SELL if maker_side == _BUY else _BUY
        cmd = Command.new(TAKER_CLIENT, self.replay.symbol_id, taker_side, trade.qty + extra, trade.price,
                          tif=Tif.IOC, stp=Stp.NONE, ts_ns=trade.trade_ns)  # fmt: skip
        rows = engine.execute_batch(np.frombuffer(cmd.pack(), dtype=COMMAND_DTYPE))
        self.replay.observe(rows)
        self.orders.observe_market_rows(rows)
        book_trades = rows[(rows["type"] == _TRADE) & (rows["maker_client"] == BOOK_CLIENT)]
        if bool((book_trades["price"] != trade.price).any()):
            self.counts["trades_off_price"] += 1  # cannot happen after clear_better: a check

    def _book_ahead(self, side: int, price: int, place: int) -> int:
        """Book quantity at the level ahead of the strategy order whose priority seq is ``place``."""
        assert self.replay is not None
        queue = self.replay.levels[side].get(price, [])
        others = self.orders.others
        return sum(entry[1] for entry in queue if others.get(entry[0], 0) < place)

    def _split(self, side: int, price: int, queue: list[list[int]], cut: int) -> list[tuple[list[int], int]]:
        place = self.orders.first_place(side, price)
        if place is None or self.queue_model == "risk_averse":
            return take_from_back(side, price, queue, cut)
        others = self.orders.others
        ahead = [e for e in queue if others.get(e[0], 0) < place]
        behind = [e for e in queue if others.get(e[0], 0) >= place]
        a, b = sum(e[1] for e in ahead), sum(e[1] for e in behind)
        if self.queue_model == "optimistic":
            cut_ahead = min(cut, a)
        else:
            weight = a**self.power / (a**self.power + b**self.power) if a + b else 0.0
            cut_ahead = min(a, math.floor(cut * weight))
        cut_behind = cut - cut_ahead
        if cut_behind > b:  # the rest does not fit behind: from ahead too
            cut_ahead, cut_behind = cut - b, b
        # Within each part, off its back.
        return take_from_back(side, price, ahead, cut_ahead) + take_from_back(side, price, behind, cut_behind)

    def observe(self, events: list[Event]) -> None:
        """The strategy's commands' events: its orders' places, and book orders its takers filled."""
        self.orders.observe_strategy(events)
        if self.replay is not None and events:
            rows = np.frombuffer(b"".join(e.pack() for e in events), dtype=EVENT_DTYPE)
            self.replay.observe(rows)

    def lines(self) -> list[str]:
        c = self.counts
        return [f"binance {self.symbol}: {self.executed} of {self.total} messages; diffs applied {c['diffs']}, "
                f"gaps {c['gaps']}, stale {c['stale']}, old {c['old']}; trades {c['trades']} ({c['cleared']} found "
                f"book levels better than their price, cleared first; {c['trades_off_price']} traded off their "
                f"price)"]  # fmt: skip
