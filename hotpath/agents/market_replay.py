"""The recorded markets the market agent replays into a live engine: a LOBSTER day and a Binance USD-M capture.

::

    spec = parse_market("lobster:AAPL_..._message_10.csv")    # the order-book file found beside it
    market = open_market(spec)                               # LobsterMarket or BinanceMarket
    market.open(engine, client_id)                           # the book as the recording starts
    while market.next_ns() is not None:
        market.step()                                        # one recorded message

A market runs on anything with the engine calls its replay uses: ``c_engine.Engine`` in process, or a
``LinkEngine`` (``market_link.py``) over a client link to a running engine; the same object, so a test replays
the same file both ways and compares the books. All its orders are one account's (``client_id``): the replays
of ``c_engine`` take the same client id for the book's orders, the seed orders and the takers.

Choices:

- **Sources.** ``lobster:MESSAGE[,ORDERBOOK]``: a LOBSTER message file and its order-book file (plain or gzip);
  without ORDERBOOK it is the message file's name with ``_message_`` replaced by ``_orderbook_``, as LOBSTER
  names them; a Parquet recording (``c_engine.record_lobster``) holds both. ``binance:FILE``: a collector's
  capture (``c_engine/binance.py``) or its recording. The symbol comes from the data: the LOBSTER ticker from
  the file name, one tick ``tick`` LOBSTER units (default 100, $0.01), one lot a share
  (``c_engine.lobster.symbol_config``); the Binance contract, tick and lot as given (default BTCUSDT, 0.1,
  0.001), a recording's own.
- **LOBSTER** is ``LobsterReplay`` in own-events mode (``c_engine/lobster.py``, "Own events only"): seeded from
  the first row, then one message at a time with its refreshes, and the row check run on the account's own
  levels after every message (``mismatches``: 0 while the replay reproduces the day). It streams both files.
- **Binance** is ``BinanceReplay`` (book orders of the account, ``exclusive=False``): the first snapshot, then
  diffs and trades in exchange time (``T``, ms), those of the same millisecond in the order they were received
  (the whole file is read and sorted first). The backtester (``strategies/backtest/binance_source.py``) puts a
  millisecond's trades before its diffs instead; on the BTCUSDT sample receive order leaves the account's top
  different from the rebuilt one after 1 of the 6,547 diffs, trades first after 8 (a trade of the same
  millisecond that came after its diff, whose level change is in the next diff). A diff sets its levels
  (absolute quantities: a level a strategy traded with is set back by the next diff that touches it). A trade
  is replayed so the live market prints it: the account's book quantity better than its price is cancelled
  (``clear_better``), then an IOC of the account at the trade's price and size takes the level's front. Market
  impact is *displace*: the IOC keeps the recorded size, so a strategy quote ahead of the book quantity (or
  better priced) fills first and the book quantity it displaced stays until the next diff of that level; L2
  data cannot say where a strategy order stands among the book's at the same price, so *extend* (as the
  backtester's default, which knows its own strategy's queue places) is not offered live. After each diff the
  account's quantity at the rebuilt best prices is compared with the rebuilt top (``mismatches``). A sequence
  gap leaves the book stale until a later snapshot in the file, which is then loaded.
- **Time.** ``next_ns`` is the recorded time of the next message (LOBSTER: ns after midnight; Binance: the
  exchange's transaction time, ns since the epoch), for the agent's pacing. Commands carry the live clock
  (``LinkEngine``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from c_engine import (
    COMMAND_DTYPE,
    EVENT_DTYPE,
    Command,
    Event,
    Side,
    Stp,
    SymbolConfig,
    Tif,
    iter_recorded_binance,
    iter_recorded_lobster,
    open_recording,
)
from c_engine import binance as binance_data
from c_engine import lobster as lobster_data

__all__ = [
    "BinanceMarket",
    "LobsterMarket",
    "Market",
    "MarketSpec",
    "market_symbol",
    "open_market",
    "parse_market",
]

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_KINDS = ("lobster", "binance")
_COUNTED = {binance_data.DiffResult.GAP: "gaps", binance_data.DiffResult.STALE: "stale",
            binance_data.DiffResult.OLD: "old"}  # fmt: skip
_PARQUET_MAGIC = b"PAR1"


@dataclass(frozen=True)
class MarketSpec:
    """What to replay: ``kind`` (``lobster`` or ``binance``), its files, and the symbol's units when given."""

    kind: str
    paths: tuple[str, ...]  #: lobster: message file and order-book file, or one recording; binance: one file
    symbol: str | None = None  #: the engine symbol's name (default: from the data)
    tick: float | None = None  #: lobster: LOBSTER price units per tick (default 100); binance: the price tick
    lot: float | None = None  #: binance only: the quantity lot (default 0.001)

    def text(self) -> str:
        """The spec as ``parse_market`` reads it."""
        return f"{self.kind}:{','.join(self.paths)}"


def _is_recording(path: str) -> bool:
    with open(path, "rb") as f:
        return f.read(4) == _PARQUET_MAGIC


def parse_market(text: str, *, symbol: str | None = None, tick: float | None = None,
                 lot: float | None = None) -> MarketSpec:  # fmt: skip
    """``lobster:MESSAGE[,ORDERBOOK]`` or ``binance:FILE`` (module docstring), checked: the files exist and are
    readable (their content is read when the market opens); ValueError saying what is wrong."""
    kind, sep, rest = text.partition(":")
    if not sep or kind not in _KINDS:
        raise ValueError(f"market {text[:80]!r}: give lobster:MESSAGE[,ORDERBOOK] or binance:FILE")
    paths = [p for p in rest.split(",")] if rest else []
    if not paths or any(not p for p in paths) or len(paths) > (2 if kind == "lobster" else 1):
        raise ValueError(f"market {text[:80]!r}: give lobster:MESSAGE[,ORDERBOOK] or binance:FILE")
    for path in paths:
        if not Path(path).is_file():
            raise ValueError(f"market {kind}: no file {path!r}")
        try:
            recording = _is_recording(path)
        except OSError as e:
            raise ValueError(f"market {kind}: cannot read {path!r}: {e.strerror}") from None
    if kind == "lobster" and len(paths) == 1 and not recording:
        name = Path(paths[0]).name
        if "_message_" not in name:
            raise ValueError(f"market lobster: {paths[0]!r} is no LOBSTER message file name (NAME_..._message_N.csv"
                             "): give the order-book file too, lobster:MESSAGE,ORDERBOOK")  # fmt: skip
        book = str(Path(paths[0]).with_name(name.replace("_message_", "_orderbook_")))
        if not Path(book).is_file():
            raise ValueError(f"market lobster: no order-book file {book!r} beside the message file")
        paths.append(book)
    if kind == "lobster" and lot is not None:
        raise ValueError("market lobster: one lot is one share (no lot to give)")
    if tick is not None and not tick > 0:
        raise ValueError(f"market {kind}: tick must be > 0, not {tick!r}")
    if lot is not None and not lot > 0:
        raise ValueError(f"market {kind}: lot must be > 0, not {lot!r}")
    if kind == "lobster" and tick is not None and (tick != int(tick) or not 1 <= tick <= lobster_data.MAX_TICK):
        raise ValueError(f"market lobster: tick is a whole number of LOBSTER price units in 1..{lobster_data.MAX_TICK}")
    if symbol is not None and not re.fullmatch(r"[A-Za-z0-9_.-]{1,64}", symbol):
        raise ValueError(f"market {kind}: symbol must be 1-64 letters, digits, '_', '.' or '-', not {symbol!r}")
    return MarketSpec(kind, tuple(paths), symbol, tick, lot)


class Market(Protocol):
    """A recorded market being replayed (module docstring); ``LobsterMarket`` and ``BinanceMarket``."""

    kind: str
    symbol: SymbolConfig
    #: messages replayed (``step`` calls), and how many the recording has (None: not known before the end)
    done: int
    total: int | None

    def open(self, engine: Any, client_id: int) -> None:
        """Builds the recording's opening book in ``engine`` as orders of ``client_id``."""

    def next_ns(self) -> int | None:
        """The recorded time of the next message; None at the end."""

    def step(self) -> None:
        """Replays the next message."""

    def observe(self, events: list[Event]) -> None:
        """The account's events that other clients' commands caused (fills of its orders)."""

    def counts(self) -> dict[str, int]:
        """What the replay did and found so far: ``mismatches`` and ``anomalies`` among them."""

    def lines(self) -> list[str]:
        """The replay's report, for a person."""


def market_symbol(spec: MarketSpec) -> SymbolConfig:
    """The engine symbol of ``spec``'s recording, read from its file names or a recording's metadata only (the
    data is read when the market opens): what the launcher adds to the platform's symbols."""
    path = spec.paths[0]
    if spec.kind == "lobster":
        if len(spec.paths) == 1:  # a recording of both files
            info = open_recording(path)
            if info.kind != "lobster":
                raise ValueError(f"{path}: a {info.kind} recording, not a LOBSTER one")
            return lobster_data.symbol_config(spec.symbol or info.symbols[0].name, int(info.params["tick"]))
        return lobster_data.symbol_config(spec.symbol or Path(path).name.split("_")[0] or "LOBSTER",
                                          int(spec.tick or 100))  # fmt: skip
    if _is_recording(path):
        info = open_recording(path)
        if info.kind != "binance":
            raise ValueError(f"{path}: a {info.kind} recording, not a Binance one")
        name, tick, lot = str(info.params["symbol"]), float(info.params["tick"]), float(info.params["lot"])
        if (spec.symbol and spec.symbol.upper() != name) or (spec.tick and spec.tick != tick) or \
                (spec.lot and spec.lot != lot):  # fmt: skip
            raise ValueError(f"{path}: a recording of {name} (tick {tick}, lot {lot}): give no other symbol or units")
        return binance_data.symbol_config(name, tick, lot)
    name = (spec.symbol or binance_data.DEFAULT_SYMBOL).upper()  # the contract, as its streams name it
    return binance_data.symbol_config(
        name, spec.tick or binance_data.DEFAULT_TICK, spec.lot or binance_data.DEFAULT_LOT
    )


def open_market(spec: MarketSpec, max_messages: int | None = None) -> LobsterMarket | BinanceMarket:
    """The market of ``spec``, its files opened (``max_messages``: replay only that many messages)."""
    if spec.kind == "lobster":
        return LobsterMarket(spec, max_messages)
    return BinanceMarket(spec, max_messages)


class LobsterMarket:
    """A LOBSTER day (module docstring, "LOBSTER")."""

    kind = "lobster"

    def __init__(self, spec: MarketSpec, max_messages: int | None = None) -> None:
        message = spec.paths[0]
        self.symbol = market_symbol(spec)
        self.tick = round(self.symbol.tick_size * 10000)  # LOBSTER price units a tick
        self._messages: Iterator[lobster_data.Message]
        self._lines: Iterator[list[int]]
        if len(spec.paths) == 1:  # a recording of both files
            self._messages, self._lines = iter_recorded_lobster(message)
        else:
            self._messages = lobster_data.iter_messages(message, self.tick)
            self._lines = lobster_data.iter_book_lines(spec.paths[1], self.tick)
        self.spec = spec
        self.max_messages = max_messages
        self.replay: lobster_data.LobsterReplay | None = None
        self.done = 0
        self.total: int | None = None
        self._next: tuple[lobster_data.Message, list[int]] | None = None
        self._previous: list[int] = []

    def open(self, engine: Any, client_id: int) -> None:
        first, first_line = next(self._messages, None), next(self._lines, None)
        if first is None or first_line is None:
            raise lobster_data.LobsterError(f"{self.spec.text()}: a file is empty")
        self.replay = lobster_data.LobsterReplay(engine, self.symbol.name, len(first_line) // 4, tick=self.tick,
                                                 clients=(client_id, client_id, client_id),
                                                 own_events_only=True)  # fmt: skip
        if hasattr(engine, "observer"):  # a link: other clients' fills of the book's orders, as they come
            engine.observer = self.replay.observe
        self.replay.seed_line(first_line, first.ts_ns)
        self._previous = first_line
        self.done = 1  # the first message is in the first row
        self._advance()

    def _advance(self) -> None:
        if self.max_messages is not None and self.done >= self.max_messages:
            self._next = None
        else:
            msg, line = next(self._messages, None), next(self._lines, None)
            if (msg is None) != (line is None):
                raise lobster_data.LobsterError(f"{self.spec.text()}: the message and order-book files have "
                                                "different numbers of lines")  # fmt: skip
            self._next = None if msg is None or line is None else (msg, line)
        if self._next is None:
            self.total = self.done
            if self.replay is not None:
                self.replay.report.messages = self.done

    def next_ns(self) -> int | None:
        return None if self._next is None else self._next[0].ts_ns

    def step(self) -> None:
        assert self.replay is not None and self._next is not None
        msg, line = self._next
        self.replay.step(msg, self._previous, line)
        self._previous = line
        self.done += 1
        self._advance()

    def observe(self, events: list[Event]) -> None:
        if self.replay is not None and events:
            self.replay.observe(events, "another client's order")

    def counts(self) -> dict[str, int]:
        r = self.replay.report if self.replay is not None else lobster_data.LobsterReport(self.symbol.name, 0)
        return {"rows_compared": r.rows_compared, "mismatches": r.mismatches, "anomalies": len(r.anomalies),
                "refreshes": r.refreshes, "unknown_ids": r.seed_applied, "displaced": r.displaced,
                "crossed_others": r.crossed_others}  # fmt: skip

    def lines(self) -> list[str]:
        return self.replay.report.lines() if self.replay is not None else []


class BinanceMarket:
    """A Binance USD-M capture (module docstring, "Binance")."""

    kind = "binance"

    def __init__(self, spec: MarketSpec, max_messages: int | None = None) -> None:
        path = spec.paths[0]
        self.symbol = market_symbol(spec)
        name = self.symbol.name
        records: Any
        if _is_recording(path):
            records = iter_recorded_binance(path)
        else:
            records = binance_data.iter_messages(path, name, self.symbol.tick_size, self.symbol.lot_size)
        self.spec = spec
        snapshot: binance_data.Snapshot | None = None
        timeline: list[tuple[int, int, int, Any]] = []
        for i, msg in enumerate(records):
            if isinstance(msg, binance_data.Snapshot):
                if snapshot is None:
                    snapshot = msg
                else:  # a later one: loaded if a gap left the book stale
                    timeline.append((msg.transact_ns, 2, i, msg))
            elif isinstance(msg, binance_data.DepthUpdate):
                timeline.append((msg.transact_ns, 1, i, msg))
            elif isinstance(msg, binance_data.Trade):
                timeline.append((msg.trade_ns, 0, i, msg))
        if snapshot is None:
            raise binance_data.BinanceError(f"{path}: no depth snapshot of {name}: the book cannot be rebuilt")
        self.snapshot = snapshot
        timeline.sort(key=lambda item: (item[0], item[2]))  # exchange time, then receive order
        start = snapshot.transact_ns  # trades before the snapshot are in it already
        self._timeline = [(t, msg) for t, kind, _, msg in timeline if not (kind == 0 and t < start)]
        if max_messages is not None:
            del self._timeline[max(0, max_messages - 1) :]  # the snapshot is the first message
        self._pos = 0
        self.total: int | None = len(self._timeline) + 1
        self.done = 0
        self.replay: binance_data.BinanceReplay | None = None
        self._engine: Any = None
        self._client = 0
        self._counts = {"diffs": 0, "trades": 0, "gaps": 0, "stale": 0, "old": 0, "reloads": 0, "cleared": 0,
                        "mismatches": 0}  # fmt: skip
        self.first_mismatches: list[str] = []

    def open(self, engine: Any, client_id: int) -> None:
        self._engine, self._client = engine, client_id
        self.replay = binance_data.BinanceReplay(engine, self.symbol.name, book_client=client_id, exclusive=False)
        self.replay.load(self.snapshot)
        self.done = 1

    def next_ns(self) -> int | None:
        return self._timeline[self._pos][0] if self._pos < len(self._timeline) else None

    def step(self) -> None:
        replay = self.replay
        assert replay is not None
        _, msg = self._timeline[self._pos]
        self._pos += 1
        self.done += 1
        c = self._counts
        if isinstance(msg, binance_data.DepthUpdate):
            result = replay.apply(msg).result
            if result == binance_data.DiffResult.APPLIED:
                c["diffs"] += 1
                rebuilt, own = replay.check()
                if rebuilt != own:
                    c["mismatches"] += 1
                    if len(self.first_mismatches) < 5:
                        self.first_mismatches.append(f"diff line {msg.line_no}: book {own} != rebuilt {rebuilt}")
            else:
                c[_COUNTED[result]] += 1
        elif isinstance(msg, binance_data.Trade):
            self._trade(msg)
        elif not replay.book.synced:
            replay.load(msg)
            c["reloads"] += 1

    def _trade(self, trade: binance_data.Trade) -> None:
        replay = self.replay
        assert replay is not None
        self._counts["trades"] += 1
        if not replay.book.synced:
            return  # no book to trade with until a snapshot
        maker_side = _BUY if trade.buyer_maker else _SELL
        if len(replay.clear_better(maker_side, trade.price, trade.trade_ns)):
            self._counts["cleared"] += 1
        taker_side = _SELL if maker_side == _BUY else _BUY
        cmd = Command.new(self._client, replay.symbol_id, taker_side, trade.qty, trade.price, tif=Tif.IOC,
                          stp=Stp.NONE, ts_ns=trade.trade_ns)  # fmt: skip
        replay.observe(self._engine.execute_batch(np.frombuffer(cmd.pack(), dtype=COMMAND_DTYPE)))

    def observe(self, events: list[Event]) -> None:
        if self.replay is not None and events:
            self.replay.observe(np.frombuffer(b"".join(e.pack() for e in events), dtype=EVENT_DTYPE))

    def counts(self) -> dict[str, int]:
        anomalies = self.replay.anomalies if self.replay is not None else 0
        return {**self._counts, "anomalies": anomalies}

    def lines(self) -> list[str]:
        c = self.counts()
        out = [f"binance {self.symbol.name}: {self.done} of {self.total} messages; diffs applied {c['diffs']} (gaps "
               f"{c['gaps']}, stale {c['stale']}, old {c['old']}, snapshots reloaded {c['reloads']}); trades "
               f"{c['trades']} ({c['cleared']} cleared better book levels first); top of book != rebuilt after a "
               f"diff: {c['mismatches']}; anomalies {c['anomalies']}"]  # fmt: skip
        out += [f"  mismatch: {m}" for m in self.first_mismatches]
        if self.replay is not None:
            out += [f"  anomaly: {a}" for a in self.replay.first_anomalies]
        return out
