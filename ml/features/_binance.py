"""Feature inputs from a Binance USD-M capture, two routes, so that batch and incremental check each other.

A capture (``c_engine.binance``: a depth snapshot, every ``@depth`` diff, ``@trade`` and ``@bookTicker``, plain,
gzip, or a ``c_engine.record_binance`` Parquet recording) becomes features in two independent ways:

- **Incremental** (``binance_incremental``): the strategies' backtest source ``BinanceSource`` replays the file
  into a ``c_engine.Engine`` (``c_engine.BinanceReplay``: the rebuilt book as resting orders of a book client,
  each trade as an IOC of a taker client) and every BOOK_DELTA and TRADE the engine prints goes to
  ``IncrementalFeatures``: the events a strategy on that replay sees.
- **Batch** (``binance_batch_inputs``): no engine. The same records are applied to a plain L2 book (price ->
  qty per side) by the replay's rules written out as level arithmetic, and the top levels are read after each
  sample point into a ``BookSeries``; the executed trades make the ``TradeSeries``.

Choices:

- **Order and sample points.** Messages in exchange time, as ``BinanceSource`` replays them: a diff at its
  ``T``, a trade at its time, trades before diffs of the same millisecond, diffs of one time in update-id
  order, trades before the snapshot's time dropped. A *sample point* is the end of each distinct exchange
  time (a millisecond) at which the timeline has a message: the source runs all of them at once, and a
  strategy is called once for them.
- **The replay's rules, as L2 arithmetic.** The book starts as the snapshot. A diff is applied under Binance's
  update-id rule (dropped when ``u`` is below the snapshot's id or not above the book's; a break of ``pu``
  stops the book until a later snapshot): each of its levels is set to its quantity (0 removes it). A trade
  at price ``p`` of size ``q`` (``buyer_maker``: the maker was a bid) first removes the maker side's levels
  better than ``p`` (a sweep the diffs report later: ``BinanceReplay.clear_better``), then takes
  ``min(q, qty at p)`` off the level at ``p``: that is what the IOC executes, and the trade the features see.
  The next diff of that level sets it back to the file's quantity.
- **One recorded trade, one trade.** The engine fills an IOC against the replay's book orders at the level,
  one TRADE event per book order (a level's increases are separate orders at its back); those are pieces of
  one recorded trade, so ``binance_incremental`` hands each IOC's TRADE events at one price to ``on_trade`` as
  one trade of their summed quantity. The trade arrival rate counts recorded trades, not the replay's book
  orders.
"""

from __future__ import annotations

from dataclasses import dataclass
from os import PathLike
from typing import Any, NamedTuple

import numpy as np
import numpy.typing as npt

from c_engine import EventType, Side, SymbolConfig
from c_engine.binance import DepthUpdate, Snapshot, Trade, iter_messages, symbol_config
from c_engine.levels import set_level

from ._batch import BookSeries, TradeSeries
from ._incremental import IncrementalFeatures

__all__ = ["BinanceCapture", "BinanceFeatures", "binance_batch_inputs", "binance_incremental", "read_binance"]

StrPath = str | PathLike[str]
F64 = npt.NDArray[np.float64]
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_BOOK_DELTA, _TRADE = int(EventType.BOOK_DELTA), int(EventType.TRADE)
#: the book levels a side ``binance_batch_inputs`` records per sample (at least the spec's depth)
DEFAULT_LEVELS = 10
#: BTCUSDT USD-M: the symbol, tick and lot a capture is read as unless told otherwise
DEFAULT_SYMBOL, DEFAULT_TICK, DEFAULT_LOT = "BTCUSDT", 0.1, 0.001


def _is_recording(path: StrPath) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == b"PAR1"


@dataclass(frozen=True)
class BinanceCapture:
    """A capture's records in replay order: the snapshot, then ``(time ns, message)`` per diff and trade."""

    symbol: SymbolConfig
    snapshot: Snapshot
    timeline: list[tuple[int, DepthUpdate | Trade]]


def read_binance(
    path: StrPath, symbol: str = DEFAULT_SYMBOL, tick: float = DEFAULT_TICK, lot: float = DEFAULT_LOT
) -> BinanceCapture:
    """The capture's first snapshot and its diffs and trades in replay order (module docstring, "Order")."""
    from c_engine import iter_recorded_binance, open_recording

    records: Any
    if _is_recording(path):
        info = open_recording(path)
        if info.kind != "binance":
            raise ValueError(f"{path}: a {info.kind} recording, not a Binance one")
        symbol, tick, lot = str(info.params["symbol"]), float(info.params["tick"]), float(info.params["lot"])
        records = iter_recorded_binance(path)
    else:
        records = iter_messages(path, symbol, tick, lot)
    snapshot: Snapshot | None = None
    keyed: list[tuple[int, int, int, DepthUpdate | Trade]] = []
    for i, msg in enumerate(records):
        if isinstance(msg, Snapshot):
            snapshot = snapshot or msg
        elif isinstance(msg, DepthUpdate):
            keyed.append((msg.transact_ns, 1, i, msg))
        elif isinstance(msg, Trade):
            keyed.append((msg.trade_ns, 0, i, msg))
    if snapshot is None:
        raise ValueError(f"{path}: no depth snapshot of {symbol}")
    keyed.sort(key=lambda item: item[:3])
    start = snapshot.transact_ns
    timeline = [(t, m) for t, _, _, m in keyed if not (isinstance(m, Trade) and t < start)]
    return BinanceCapture(symbol_config(symbol, tick, lot), snapshot, timeline)


class _L2:
    """A plain L2 book (price -> qty per side, sorted keys best first) under Binance's update-id rule."""

    def __init__(self, snapshot: Snapshot) -> None:
        self.levels = {_BUY: {p: q for p, q in snapshot.bids if q}, _SELL: {p: q for p, q in snapshot.asks if q}}
        self.keys = {_BUY: sorted(-p for p in self.levels[_BUY]), _SELL: sorted(self.levels[_SELL])}
        self.update_id = snapshot.last_update_id
        self.awaiting_first = True
        self.synced = True

    def set(self, side: int, price: int, qty: int) -> None:
        set_level(self.levels[side], self.keys[side], price, qty, -price if side == _BUY else price)

    def diff(self, d: DepthUpdate) -> None:
        if not self.synced:
            return
        if self.awaiting_first:
            if d.final_id < self.update_id:
                return
            if d.first_id > self.update_id:
                self.synced = False
                return
            self.awaiting_first = False
        elif d.prev_final_id != self.update_id:
            if d.final_id > self.update_id:
                self.synced = False
            return
        for side, changes in ((_BUY, d.bids), (_SELL, d.asks)):
            for price, qty in changes:
                self.set(side, price, qty)
        self.update_id = d.final_id

    def trade(self, t: Trade) -> int:
        """The qty the replay's IOC executes at ``t.price``, taken off the book (module docstring)."""
        maker = _BUY if t.buyer_maker else _SELL
        keys, levels = self.keys[maker], self.levels[maker]
        bound = -t.price if maker == _BUY else t.price
        while keys and keys[0] < bound:  # better than the trade's price: cleared
            levels.pop(-keys[0] if maker == _BUY else keys[0])
            del keys[0]
        have = levels.get(t.price, 0)
        done = min(have, t.qty)
        if done:
            self.set(maker, t.price, have - done)
        return done

    def top(self, side: int, n: int) -> list[tuple[int, int]]:
        levels = self.levels[side]
        sign = -1 if side == _BUY else 1
        return [(sign * k, levels[sign * k]) for k in self.keys[side][:n]]


def _groups(timeline: list[tuple[int, DepthUpdate | Trade]]) -> list[tuple[int, int, int]]:
    """(time, first, end) of each run of messages with one time."""
    out: list[tuple[int, int, int]] = []
    i = 0
    while i < len(timeline):
        j = i + 1
        while j < len(timeline) and timeline[j][0] == timeline[i][0]:
            j += 1
        out.append((timeline[i][0], i, j))
        i = j
    return out


def binance_batch_inputs(capture: BinanceCapture, levels: int = DEFAULT_LEVELS) -> tuple[BookSeries, TradeSeries]:
    """The capture as batch inputs: the L2 book's top ``levels`` a side after each sample point, and the
    executed trades (module docstring, "The replay's rules")."""
    book = _L2(capture.snapshot)
    groups = _groups(capture.timeline)
    n = len(groups)
    ts = np.empty(n, dtype=np.int64)
    arrays = [np.zeros((n, levels), dtype=np.int64) for _ in range(4)]
    trades: list[tuple[int, int, int, int, int]] = []
    timeline = capture.timeline
    for j, (t, first, end) in enumerate(groups):
        for _, msg in timeline[first:end]:
            if isinstance(msg, Trade):
                done = book.trade(msg)
                if done:
                    trades.append((j, t, _SELL if msg.buyer_maker else _BUY, msg.price, done))
            else:
                book.diff(msg)
        ts[j] = t
        for side, (prices, qtys) in ((_BUY, (arrays[0], arrays[1])), (_SELL, (arrays[2], arrays[3]))):
            for k, (p, q) in enumerate(book.top(side, levels)):
                prices[j, k], qtys[j, k] = p, q
    tr = np.array(trades, dtype=np.int64).reshape(-1, 5)
    return (BookSeries(ts, *arrays), TradeSeries(tr[:, 0], tr[:, 1], tr[:, 2], tr[:, 3], tr[:, 4]))


class BinanceFeatures(NamedTuple):
    """What ``binance_incremental`` gives: the rows, the trades as fed to the features, the source's counts."""

    rows: F64
    trades: TradeSeries
    counts: dict[str, int]


def _engine_class() -> type[Any]:
    from c_engine import Engine

    return Engine


class _FeedEngine(_engine_class()):  # type: ignore[misc]
    """An engine whose every batch's BOOK_DELTA and TRADE events go to ``features`` (one IOC's TRADEs at one
    price as one trade)."""

    def __init__(self, config: Any, features: IncrementalFeatures) -> None:
        super().__init__(config)
        self.features = features
        self.samples = 0
        self.trades: list[tuple[int, int, int, int, int]] = []

    def execute_batch(self, commands: npt.NDArray[np.void]) -> npt.NDArray[np.void]:
        events: npt.NDArray[np.void] = super().execute_batch(commands)
        market = events[(events["type"] == _BOOK_DELTA) | (events["type"] == _TRADE)]
        if not len(market):
            return events
        f = self.features
        pending: list[int] = []  # the trade being summed: order id, side, price, qty, ts
        fields = ("type", "side", "price", "qty", "ts_ns", "order_id")
        for typ, side, price, qty, ts, oid in zip(*(market[k].tolist() for k in fields), strict=True):
            if typ == _BOOK_DELTA:
                f.on_book_delta(side, price, qty)
            elif pending and pending[0] == oid and pending[2] == price:
                pending[3] += qty
            else:
                self._trade(pending)
                pending = [oid, side, price, qty, ts]
        self._trade(pending)
        return events

    def _trade(self, t: list[int]) -> None:
        if t:
            self.features.on_trade(t[1], t[2], t[3], t[4])
            self.trades.append((self.samples, t[4], t[1], t[2], t[3]))


def binance_incremental(
    features: IncrementalFeatures,
    path: StrPath,
    symbol: str = DEFAULT_SYMBOL,
    tick: float = DEFAULT_TICK,
    lot: float = DEFAULT_LOT,
) -> BinanceFeatures:
    """The incremental rows of a capture: ``BinanceSource`` on an engine whose BOOK_DELTA and TRADE events feed
    ``features``, one sample after each exchange time's messages."""
    from strategies.backtest.binance_source import BinanceSource

    source = BinanceSource(path, symbol=symbol, tick=tick, lot=lot)
    engine = _FeedEngine(source.engine_config(), features)
    for sym in source.symbols():
        engine.add_symbol(sym)
    source.open(engine)
    rows: list[F64] = []
    while (t := source.peek_ns()) is not None:
        source.run_until(engine, t)
        rows.append(features.sample(t))
        engine.samples += 1
    tr = np.array(engine.trades, dtype=np.int64).reshape(-1, 5)
    return BinanceFeatures(
        np.array(rows) if rows else np.empty((0, features.spec.width)),
        TradeSeries(tr[:, 0], tr[:, 1], tr[:, 2], tr[:, 3], tr[:, 4]),
        dict(source.counts),
    )
