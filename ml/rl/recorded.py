"""Recorded market data as episodes: a data set loaded once, and a fresh backtest source for each episode.

``RecordedMarketEnv`` (``ml.rl.recorded_env``) replays recorded data through the backtest's market sources
(``strategies.backtest``): the same engine-side replays and queue-position models as ``proptrade backtest``.
An episode is a window of the data, so a data set here is loaded (parsed) once per process and hands out, per
episode, a fresh ``MarketSource`` that starts at or before the window. Choices, and why:

- **LOBSTER (a day's message and order-book files, plain or gzip, or their recording).** The messages and the
  order-book lines are held in memory (two int64 arrays) and a window starts at any row:
  ``LobsterWindowSource`` is ``strategies.backtest.LobsterSource``'s replay (``c_engine.lobster.LobsterReplay``
  with the strategy's orders in a ``StrategyOrders``, market impact "extend") seeded from the order-book line of
  the window's first row, as ``LobsterSource`` seeds from the day's first row; so a window of row 1 is
  ``LobsterSource`` exactly (tested), and a later window costs no replay of the rows before it. Orders resting
  before the window are its seed orders, one per level (as at the day's open).
- **Binance (a USD-M capture, or its recording).** ``strategies.backtest.BinanceSource`` itself, with its queue
  model (``risk_averse``, ``optimistic``, ``power:N``) and impact policy: the capture is parsed once into a
  prototype, and each episode gets a shallow copy with fresh replay state (its own ``StrategyOrders``, counters,
  no replay yet: ``open`` builds it), so the parsed timeline is shared, never re-read. The book exists only from
  the capture's one depth snapshot on, so the env replays from there to the window.
- **Engine commands (a recording of ``c_engine.record_commands``: a journal, synthetic flow).**
  ``strategies.backtest.CommandSource`` over the recorded array, replayed from its start to the window in C.
- **Caching.** A data set is loaded once per process and arguments (``load_market_data``), so the envs of one
  ``DummyVecEnv`` share it.
"""

from __future__ import annotations

import copy
import functools
from dataclasses import dataclass
from itertools import zip_longest
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from c_engine import (
    Engine,
    Event,
    SymbolConfig,
    iter_recorded_binance,
    open_recording,
    read_recorded_commands,
)
from c_engine.binance import DepthUpdate, Trade
from c_engine.binance import iter_messages as binance_messages
from c_engine.lobster import LobsterReplay, Message, symbol_config
from strategies.backtest import CommandSource, MarketSource
from strategies.backtest.binance_source import BinanceSource
from strategies.backtest.lobster_source import OrdersTap, open_lobster
from strategies.backtest.own_orders import StrategyOrders

__all__ = [
    "BinanceCapture",
    "CommandRecording",
    "LobsterDay",
    "LobsterWindowSource",
    "MarketData",
    "load_market_data",
]


class MarketData(Protocol):
    """A recorded data set that hands out one fresh source per episode."""

    #: what the data is, in words (kind and file)
    name: str
    #: the data's first and last message times (ns)
    start_ns: int
    end_ns: int

    def source(self, start_ns: int) -> MarketSource:
        """A fresh source whose replay reaches ``start_ns`` (at or before it)."""
        ...


class LobsterDay:
    """A LOBSTER day in memory: ``message`` and ``orderbook`` files, or one recording (``orderbook`` None)."""

    def __init__(self, message: str | Path, orderbook: str | Path | None = None, *, tick: int = 100) -> None:
        path = Path(message)
        self.symbol, self.tick, messages, lines = open_lobster(message, orderbook, tick)
        # messages and lines as int64 blocks of 8,192 rows: a day's as Python objects would take a quarter of a GB
        msg_blocks, line_blocks = [], []
        pending: list[tuple[Message, list[int]]] = []
        for pair in zip_longest(messages, lines):
            if pair[0] is None or pair[1] is None:
                raise ValueError(f"{path}: its order-book lines do not pair with its messages")
            pending.append(pair)
            if len(pending) == 8192:
                msg_blocks.append(np.array([m for m, _ in pending], dtype=np.int64))
                line_blocks.append(np.array([line for _, line in pending], dtype=np.int64))
                pending = []
        if pending:
            msg_blocks.append(np.array([m for m, _ in pending], dtype=np.int64))
            line_blocks.append(np.array([line for _, line in pending], dtype=np.int64))
        if not msg_blocks:
            raise ValueError(f"{path} is empty")
        #: message i's fields (``c_engine.lobster.Message``'s, in order)
        self.message_rows: npt.NDArray[np.int64] = np.concatenate(msg_blocks)
        #: order-book line i (the book after message i), LOBSTER units
        self.lines: npt.NDArray[np.int64] = np.concatenate(line_blocks)
        self.rows = len(self.lines)
        self.levels = self.lines.shape[1] // 4
        self.times: npt.NDArray[np.int64] = self.message_rows[:, 1].copy()
        self.start_ns, self.end_ns = int(self.times[0]), int(self.times[-1])
        self.name = f"lobster {path.name}"

    def symbol_config(self) -> SymbolConfig:
        return symbol_config(self.symbol, self.tick)

    def message(self, row: int) -> Message:
        return Message(*self.message_rows[row].tolist())

    def source(self, start_ns: int) -> LobsterWindowSource:
        """The replay seeded from the last row at or before ``start_ns`` (the first row if none)."""
        row = max(0, int(np.searchsorted(self.times, start_ns, side="right")) - 1)
        return LobsterWindowSource(self, row)


class LobsterWindowSource:
    """``LobsterSource``'s replay of ``day`` from row ``row`` (0-based): seeded from that row's order-book line,
    then message by message. A ``strategies.backtest.MarketSource``."""

    name = "lobster"

    def __init__(self, day: LobsterDay, row: int) -> None:
        if not 0 <= row < day.rows:
            raise ValueError(f"row {row} outside the day's {day.rows} rows")
        self.day, self.row = day, row
        self.orders = StrategyOrders()
        self.replay: LobsterReplay | None = None
        self.executed = 0
        self._pos = row
        self._previous: list[int] = []

    def symbols(self) -> list[SymbolConfig]:
        return [self.day.symbol_config()]

    def open(self, engine: Engine) -> None:
        day = self.day
        self.replay = LobsterReplay(OrdersTap(engine, self.orders), day.symbol, day.levels, show=5,
                                    tick=day.tick, own=self.orders)  # fmt: skip
        first = day.lines[self.row].tolist()
        self.replay.seed_line(first, int(day.times[self.row]))
        self._previous = first
        self._pos = self.row + 1
        self.executed = 1

    def peek_ns(self) -> int | None:
        return int(self.day.times[self._pos]) if self._pos < self.day.rows else None

    def run_until(self, engine: Engine, limit_ns: int) -> None:
        replay, day = self.replay, self.day
        assert replay is not None
        n = day.rows
        pos = self._pos
        while pos < n and day.times[pos] <= limit_ns:
            line = day.lines[pos].tolist()
            replay.step(day.message(pos), self._previous, line)
            self._previous = line
            pos += 1
        self.executed += pos - self._pos
        self._pos = pos

    def observe(self, events: list[Event]) -> None:
        """The strategy's commands' events: the replay's view of the engine and the strategy's orders."""
        self.orders.observe_strategy(events)
        if self.replay is not None:
            self.replay.observe(events)


class BinanceCapture:
    """A Binance USD-M capture (or its recording), parsed once; each episode replays a copy from the snapshot."""

    def __init__(self, path: str | Path, *, symbol: str = "BTCUSDT", tick: float = 0.1, lot: float = 0.001,
                 queue: str = "risk_averse", impact: str = "extend") -> None:  # fmt: skip
        self._prototype = BinanceSource(path, symbol=symbol, tick=tick, lot=lot, queue=queue, impact=impact)
        self.start_ns = int(self._prototype.snapshot.transact_ns)
        self.end_ns = _binance_end_ns(path, symbol, tick, lot)
        self.name = f"binance {Path(path).name} (queue {queue}, impact {impact})"

    def source(self, start_ns: int) -> BinanceSource:
        src = copy.copy(self._prototype)
        src.orders = StrategyOrders()
        src.replay = None
        src.executed = 0
        src.counts = dict.fromkeys(self._prototype.counts, 0)
        return src


def _binance_end_ns(path: str | Path, symbol: str, tick: float, lot: float) -> int:
    """The time of the capture's last diff or trade (what the source replays last); one more parse of the
    capture, as the source keeps its timeline to itself."""
    with Path(path).open("rb") as f:
        parquet = f.read(4) == b"PAR1"
    records = iter_recorded_binance(path) if parquet else binance_messages(path, symbol, tick, lot)
    end = 0
    for msg in records:
        if isinstance(msg, DepthUpdate):
            end = max(end, msg.transact_ns)
        elif isinstance(msg, Trade):
            end = max(end, msg.trade_ns)
    return end


class CommandRecording:
    """A recording of engine commands (``c_engine.record_commands``), replayed by ``CommandSource``."""

    def __init__(self, path: str | Path) -> None:
        self.symbols, self.commands = read_recorded_commands(path)
        if not len(self.commands):
            raise ValueError(f"{path}: no commands")
        times = np.maximum.accumulate(self.commands["ts_ns"].astype(np.int64))
        self.start_ns, self.end_ns = int(times[0]), int(times[-1])
        self.name = f"commands {Path(path).name}"

    def source(self, start_ns: int) -> CommandSource:
        return CommandSource(self.symbols, self.commands)


@dataclass(frozen=True)
class _Key:
    path: str
    tick: int
    symbol: str
    queue: str
    impact: str


@functools.lru_cache(maxsize=4)
def _load(key: _Key) -> MarketData:
    path = Path(key.path)
    with path.open("rb") as f:
        parquet = f.read(4) == b"PAR1"
    if parquet:
        kind = open_recording(path).kind
        if kind == "lobster":
            return LobsterDay(path)
        if kind == "commands":
            return CommandRecording(path)
        return BinanceCapture(path, queue=key.queue, impact=key.impact)
    if "_message_" in path.name:
        orderbook = path.with_name(path.name.replace("_message_", "_orderbook_"))
        if not orderbook.exists():
            raise FileNotFoundError(f"{orderbook} not found beside the LOBSTER message file {path}")
        return LobsterDay(path, orderbook, tick=key.tick)
    return BinanceCapture(path, symbol=key.symbol, queue=key.queue, impact=key.impact)


def load_market_data(path: str | Path, *, tick: int = 100, symbol: str = "BTCUSDT", queue: str = "risk_averse",
                     impact: str = "extend") -> MarketData:  # fmt: skip
    """The data set at ``path``, loaded once per process: a LOBSTER message file (its order-book file is found
    beside it by name: ``_message_`` -> ``_orderbook_``), a Binance capture, or a recording of either or of
    engine commands (told by its metadata). ``tick``: LOBSTER units per tick; ``symbol``, ``queue``, ``impact``:
    a Binance capture's symbol, queue model and market impact policy."""
    return _load(_Key(str(Path(path).resolve()), tick, symbol.upper(), queue, impact))
