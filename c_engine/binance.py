"""``proptrade engine binance``: rebuild a Binance USD-M order book from its diff stream and replay it in the engine.

::

    proptrade engine binance FILE [--symbol BTCUSDT] [--tick 0.1] [--lot 0.001] [--show 5]

The file (plain or gzip, told by its first two bytes) is what a collector wrote: one line per message,
``<receive time, ns since the epoch on the collector's clock> <json>``. One line is a REST depth snapshot
(``lastUpdateId``, ``E``, ``T``, ``bids``, ``asks``); the others are combined-stream messages ``{"stream", "data"}``
of ``<symbol>@depth[@speed]`` (``depthUpdate``: ``U``, ``u``, ``pu``, ``b``, ``a``), ``<symbol>@trade`` and
``<symbol>@bookTicker``. A collector opens the streams first and asks for the snapshot after, as Binance
prescribes, so the snapshot is usually not the first line (line 55 in the BTCUSDT sample).

Choices, in the order they bite:

- **Parsing.** Each line is split at its first space and the JSON parsed by orjson (2.4 times faster than the
  standard library on the sample). Records are ``NamedTuple``s (``Snapshot``, ``DepthUpdate``, ``Trade``,
  ``BookTicker``, ``OtherMessage``): a diff's levels are lists of ``(price ticks, qty lots)``, what the rebuild
  consumes one level at a time, so a numpy array would only add a conversion. A message for another symbol or
  any other stream (partial depth ``@depth20`` included) is an ``OtherMessage``, counted by its stream name.
  Lines are read as bytes (orjson takes them so, and refuses bytes that are not UTF-8); one longer than
  ``MAX_LINE_BYTES`` is refused before it is held whole. Every field a record keeps is checked as it is read:
  times and ids are integers in range, prices and quantities decimal strings within the replay's symbol, ``m``
  a bool; anything else, and damaged gzip data, is a ``BinanceError`` naming the file, the line and the field,
  so the rebuild and the engine only ever see values they can hold.
- **Units.** Prices and quantities are exact integer ticks and lots of the symbol's ``SymbolConfig`` (BTCUSDT
  USD-M: tick 0.1, lot 0.001): each decimal string goes through ``Units.ticks``/``Units.lots`` as a
  ``Decimal``, exact, never a float. A value off the tick or lot is an error naming the file and line. The
  strings repeat (the same prices and sizes all day), so each distinct string is converted once and kept in a
  dict: a converted value costs one dict lookup.
- **Times.** ``E`` (event time, when Binance pushed the message) and ``T`` (transaction time) come in ms and are
  kept as ns. The collector's clock is not the exchange's: ``receive - E`` is the clock offset plus the one-way
  latency (>= 0, with a hard floor and a long tail of queueing) plus up to 1 ms from ``E``'s truncation to the
  ms. ``estimate_clock_offset`` takes a low quantile (1%) of ``receive - E`` in each window of 10 s of receive
  time and fits a line through them: the 1% quantile sits on the latency floor but is not moved by one odd
  stamp as the minimum would be, and the line follows the collector clock's drift (on the sample the offset
  moves by -5.0 ppm, 1.8 ms over its 6 minutes, which one quantile over the whole file would spread into every
  latency). One-way data cannot separate the offset from the floor latency, so the corrected receive time
  ``receive - offset(receive)`` is "as if the fastest messages had taken no time": about 1% of messages land
  before their ``E``. On the sample: the collector is 1270.4 ms behind the exchange; corrected latency p50
  1.6 ms, p99 26 ms.
- **Rebuild** (``DepthBook``), keyed by update ids, never by time: start from the snapshot (``lastUpdateId`` L);
  drop a diff with ``u`` < L; the first diff applied must have ``U`` <= L <= ``u``; every later diff's ``pu``
  must be the previous applied diff's ``u``. Otherwise it is a sequence gap: counted, and the book is stale (no
  diff applied) until a later snapshot in the file resyncs it (diffs held while stale are replayed from it). A
  later diff whose ``u`` is not above the book's id is an old repeat and dropped (its quantities are absolute:
  the book has them). Quantity 0 removes a level (a removal of a level the book lacks is no error: the snapshot
  has 1000 levels a side, the diffs the whole book). Levels deeper than the snapshot's appear only once a diff
  touches them, so the deep book is partial; the top is exact.
- **The check** (``BinanceCheck``): a bookTicker's ``u`` is the book's update id after which it was taken. It
  can be compared exactly when the book at that id is known: ``u`` equal to an applied diff's ``u`` (or to the
  snapshot's L), or strictly between two consecutive diffs (after one's ``u``, before the next one's ``U``: no
  book change there). When ``U`` <= ``u`` of the ticker < ``u`` of a diff, the ticker saw part of that diff,
  which the stream gives only as a whole: not comparable. Tickers and their diffs arrive in either order (on the
  sample a diff comes up to 10 lines after its ticker or up to 82 before it; 126 of the 629 matched tickers come
  after their diff), so early tickers wait in a heap until the book reaches their id and late ones are looked up
  in the tops of the last ``history`` diffs. The engine's top equals the rebuilt one after every diff (checked
  there), so a ticker equal to the rebuilt top equals the engine's too. Every category is
  counted. On the sample: 629 of the 66,089 tickers sit at a diff's final id, all equal to the rebuilt top
  (price and qty both sides); 65,427 fall inside a diff's range, 33 before the snapshot; 0 gaps.
- **Engine replay** (``BinanceReplay``): the rebuilt book is resting orders of one *book client*
  (``BOOK_CLIENT``) in ``c_engine.Engine``. A level is a queue of book orders in time priority. A level's quantity
  going up is a new order for the increase, at the back: Binance's queue there is the old quantity then the new,
  and a modify up would send the whole level behind (docs/ENGINE.md, "Modify"). Going down takes the quantity
  off the back (the newest book quantity first: a modify down, which keeps its place, or cancels): L2 does not
  say who left, and this way no quantity ahead of another client's order at that level vanishes on a diff, the
  risk-averse rule for a strategy's queue place. Quantity 0 cancels the level's book orders. One diff is one
  ``execute_batch``: every decrease first, then every increase, so no new order can cross a level the diff is
  about to remove. Commands carry the diff's ``T`` as their time. After each diff the engine's best bid and ask
  (price and qty) must equal the rebuilt book's.
- **Sharing the engine.** A backtester adds a strategy's orders to the same engine and drives ``apply`` one diff
  at a time. The replay never assumes it owns a level: it keeps its own book orders (order id, open qty, side,
  price) from the events of its batches, and ``observe`` takes the events of everyone else's commands (a book
  order filled by a strategy's taker, or a book order taking a strategy's crossing order). A level's target is
  set against the book client's open quantity there, whoever else rests at it: a level a strategy traded with
  is set back to the file's quantity the next time a diff touches it (the file never saw that trade). With
  ``exclusive=False`` the check compares the book client's own quantity at the rebuilt best prices, not the
  engine's top (which holds the strategy's orders too). The replay reads only its own events (the ACKs and
  FILLs of the book client), never the market data, and finds nothing better to cancel from the rebuilt book's
  top rather than the engine's, so it runs over a client link to a live engine as it runs in process
  (``BinanceEngine``; ``hotpath/agents/market.py``).

The command prints the message counts, diffs applied, gaps, the bookTicker categories, mismatches and the clock
offset, and exits 1 on any gap, mismatch or engine anomaly (a reject, a trade among book orders), 2 on an
unusable input (an unreadable file, a bad line, no snapshot, no depth update of the symbol).
"""

from __future__ import annotations

import argparse
import enum
import gzip
import heapq
import math
import re
import sys
import zlib
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal, InvalidOperation
from os import PathLike
from pathlib import Path
from typing import Any, NamedTuple, Protocol

import numpy as np
import numpy.typing as npt
import orjson

from ._config import EngineConfig, Level, SymbolConfig
from ._errors import ConversionError, InvalidConfigError
from ._types import COMMAND_STRUCT
from ._units import Units
from ._wire import COMMAND_DTYPE, EVENT_DTYPE, EventType, Flag, Op, OrderType, Side, Stp, Tif
from .levels import set_level

__all__ = [
    "BOOK_CLIENT",
    "BinanceCheck",
    "BinanceEngine",
    "BinanceError",
    "BinanceReplay",
    "BinanceReport",
    "BookTicker",
    "ClockOffset",
    "DepthBook",
    "DepthUpdate",
    "DiffResult",
    "Levels",
    "Message",
    "OtherMessage",
    "Snapshot",
    "Split",
    "Top",
    "Trade",
    "estimate_clock_offset",
    "iter_messages",
    "replay_binance",
    "run",
    "symbol_config",
    "take_from_back",
]

StrPath = str | PathLike[str]
#: ``(price ticks, qty lots)`` per level, in the order of the message
Levels = list[tuple[int, int]]

#: the client of the book orders (one queue of them per price level of the rebuilt book)
BOOK_CLIENT = 1
#: BTCUSDT USD-M futures: tick 0.1 USDT, lot 0.001 BTC
DEFAULT_SYMBOL, DEFAULT_TICK, DEFAULT_LOT = "BTCUSDT", 0.1, 0.001
#: diffs whose tops are kept for tickers that arrive after their diff (82 lines late at most on the sample)
HISTORY_DIFFS = 4096
#: distinct price or size strings kept converted; past this the cache starts again (a bound, never reached
#: by a day of one symbol)
_CACHE_MAX = 1 << 20
_MS = 1_000_000
#: receive times, and event times once in ns, are int64
_INT64_MAX = (1 << 63) - 1
_MAX_MS = _INT64_MAX // _MS
#: the longest line a collector file may have: a 1000-level snapshot has about 50 KB, so a longer one is not a
#: collector line (a binary file, a file without newlines) and is refused before it is held whole
MAX_LINE_BYTES = 1 << 20
#: a price or quantity string longer than this is no contract's decimal
_MAX_DECIMAL_CHARS = 40
_GZIP_MAGIC = b"\x1f\x8b"
#: what ``--symbol`` may be: a USD-M contract's name
_SYMBOL = re.compile(r"[A-Za-z0-9]{1,32}")

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_OP_NEW, _OP_CANCEL, _OP_MODIFY = int(Op.NEW), int(Op.CANCEL), int(Op.MODIFY)
_ACK, _REJECT, _FILL = int(EventType.ACK), int(EventType.REJECT), int(EventType.FILL)
_LIMIT, _GTC, _STP_NONE = int(OrderType.LIMIT), int(Tif.GTC), int(Stp.NONE)
_HAS_PRICE, _HAS_QTY = int(Flag.HAS_PRICE), int(Flag.HAS_QTY)
_pack_command = COMMAND_STRUCT.pack_into
_MSG = COMMAND_STRUCT.size


class BinanceError(ValueError):
    """An input that cannot be replayed exactly: a bad line, a value off the tick or lot, no snapshot."""


# --- records ---------------------------------------------------------------------------------------------------


class Snapshot(NamedTuple):
    """The REST depth snapshot: the book after update id ``last_update_id``."""

    line_no: int
    recv_ns: int
    event_ns: int
    transact_ns: int
    last_update_id: int
    bids: Levels
    asks: Levels


class DepthUpdate(NamedTuple):
    """A ``depthUpdate``: the new quantity of each level changed by updates ``first_id`` (U) .. ``final_id`` (u);
    ``prev_final_id`` (pu) is the ``u`` of the symbol's diff before it."""

    line_no: int
    recv_ns: int
    event_ns: int
    transact_ns: int
    first_id: int
    final_id: int
    prev_final_id: int
    bids: Levels
    asks: Levels


class Trade(NamedTuple):
    """A ``trade``: ``buyer_maker`` true when the buyer rested (a sell took it); ``kind`` is ``X`` (MARKET, ...)."""

    line_no: int
    recv_ns: int
    event_ns: int
    trade_ns: int
    trade_id: int
    price: int
    qty: int
    buyer_maker: bool
    kind: str


class BookTicker(NamedTuple):
    """A ``bookTicker``: the best bid and ask after book update ``update_id``."""

    line_no: int
    recv_ns: int
    event_ns: int
    transact_ns: int
    update_id: int
    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


class OtherMessage(NamedTuple):
    """A message of another stream or symbol: counted by its stream name, not used."""

    line_no: int
    recv_ns: int
    stream: str


Message = Snapshot | DepthUpdate | Trade | BookTicker | OtherMessage


class Top(NamedTuple):
    """Best bid and ask, price in ticks and qty in lots; 0, 0 for an empty side."""

    bid_price: int
    bid_qty: int
    ask_price: int
    ask_qty: int


# --- parsing ---------------------------------------------------------------------------------------------------


class _Exact(dict[str, int]):
    """Decimal strings to integer steps through ``Units``, exactly; each distinct string converted once. A value
    that is not a decimal string, is off the step or gives steps outside ``low .. high`` (the replay's symbol)
    is a BinanceError naming ``what``."""

    def __init__(self, convert_decimal: Callable[[Any], int], what: str, step: float, low: int, high: int) -> None:
        super().__init__()
        self._convert = convert_decimal
        self._what = what
        self._step = Decimal(str(step))
        self._low, self._high = low, high

    def __missing__(self, text: str) -> int:
        if type(text) is not str or len(text) > _MAX_DECIMAL_CHARS:
            raise BinanceError(f"{self._what} {_shown(text)} is not a decimal string")
        try:
            value = Decimal(text)
        except InvalidOperation:
            raise BinanceError(f"{self._what} {text!r} is not a decimal number") from None
        if not value.is_finite() or value < 0:
            raise BinanceError(f"{self._what} {text!r} is not a finite number >= 0")
        unit = "tick" if self._what == "price" else "lot"
        try:
            steps = self._convert(value)  # Units.ticks or Units.lots: exact for a Decimal
        except ConversionError:
            raise BinanceError(f"{self._what} {text} is not a multiple of the {unit} ({self._step})") from None
        except ArithmeticError:  # a quotient beyond the decimal context's 28 digits
            steps = self._high + 1
        if not self._low <= steps <= self._high:
            raise BinanceError(f"{self._what} {text} is outside {self._low}..{self._high} {unit}s of {self._step}")
        if len(self) >= _CACHE_MAX:
            self.clear()
        self[text] = steps
        return steps


def _shown(value: Any) -> str:
    """A JSON value as an error shows it: its JSON, cut to 40 characters."""
    text = orjson.dumps(value).decode() if value is not None else "null"
    return text if len(text) <= 40 else text[:40] + "..."


def _int(d: dict[str, Any], key: str, low: int, high: int) -> int:
    value = d[key]
    if type(value) is not int or not low <= value <= high:
        raise BinanceError(f"{key} must be an integer in {low}..{high}, not {_shown(value)}")
    return value


def _diff_stream(stream: str, symbol: str) -> bool:
    """``<symbol>@depth`` or ``<symbol>@depth@<speed>``: the diff stream (``@depth20`` is a partial book)."""
    parts = stream.split("@")
    return parts[0] == symbol and len(parts) in (2, 3) and parts[1] == "depth"


def _lines(path: StrPath) -> Iterator[tuple[int, bytes]]:
    """``(line number, line)`` of a collector file, plain or gzip (told by its first two bytes), as bytes: orjson
    parses them as they are and refuses bytes that are not UTF-8 itself. A line longer than ``MAX_LINE_BYTES``
    is refused before it is held whole, and damaged gzip data is a BinanceError naming its line."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    line_no = 0
    try:
        with gzip.open(path, "rb") if gzipped else open(path, "rb") as f:
            while line := f.readline(MAX_LINE_BYTES + 1):
                line_no += 1
                if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
                    raise BinanceError(f"{path}:{line_no}: a line of more than {MAX_LINE_BYTES >> 20} MiB: not a "
                                       "collector file")  # fmt: skip
                yield line_no, line
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # BadGzipFile is an OSError without a file name
        raise BinanceError(f"{path}:{line_no + 1}: damaged gzip data ({exc})") from None


def iter_messages(
    path: StrPath, symbol: str = DEFAULT_SYMBOL, tick: float = DEFAULT_TICK, lot: float = DEFAULT_LOT
) -> Iterator[Message]:
    """The collector file's messages as typed records, one at a time (gzip or plain text); see the module doc.

    Every field a record keeps is checked: times and ids are integers in range (times in ms, so that they are
    int64 ns), prices and quantities decimal strings on the tick and lot within the replay's symbol
    (:func:`symbol_config`), levels lists of ``[price, qty]`` pairs, ``m`` a bool. Anything else is a
    BinanceError naming the file, the line and the field.
    """
    units = Units(tick, lot)
    cfg = symbol_config(symbol, tick, lot)
    ticks = _Exact(units.ticks, "price", tick, 1, cfg.max_price_ticks).__getitem__
    lots = _Exact(units.lots, "qty", lot, 0, cfg.max_order_lots).__getitem__
    name = symbol.upper()
    lower = symbol.lower()
    depth_stream, trade_stream, ticker_stream = f"{lower}@depth@0ms", f"{lower}@trade", f"{lower}@bookTicker"
    loads = orjson.loads

    def levels(d: dict[str, Any], key: str) -> Levels:
        value = d[key]
        try:
            return [(ticks(p), lots(q)) for p, q in value]
        except BinanceError as exc:
            raise BinanceError(f"{exc} (in {key})") from None
        except (TypeError, ValueError):  # not a list of pairs (an unhashable or unpackable entry)
            raise BinanceError(f"{key} must be a list of [price, qty] pairs, not {_shown(value)}") from None

    for line_no, line in _lines(path):
        try:
            recv, _, text = line.partition(b" ")
            if not (recv.isdigit() and len(recv) <= 19 and int(recv) <= _INT64_MAX):
                shown = _shown(recv.decode("ascii", "backslashreplace"))
                raise BinanceError(f"receive time {shown} is not ns since the epoch (digits)")
            recv_ns = int(recv)
            msg = loads(text)
            if type(msg) is not dict:
                raise BinanceError(f"not a JSON object but {_shown(msg)}")
            stream = msg.get("stream")
            if stream is None:
                if "lastUpdateId" not in msg:
                    raise BinanceError("neither a snapshot (lastUpdateId) nor a stream message")
                yield Snapshot(line_no, recv_ns, _int(msg, "E", 0, _MAX_MS) * _MS, _int(msg, "T", 0, _MAX_MS) * _MS,
                               _int(msg, "lastUpdateId", 0, _INT64_MAX), levels(msg, "bids"),
                               levels(msg, "asks"))  # fmt: skip
                continue
            d = msg["data"]
            if type(stream) is not str or type(d) is not dict:
                raise BinanceError(f"stream {_shown(stream)} and data {_shown(d)}: a string and an object")
            if d.get("s") != name:
                yield OtherMessage(line_no, recv_ns, stream)
            elif stream == ticker_stream:
                yield BookTicker(line_no, recv_ns, _int(d, "E", 0, _MAX_MS) * _MS, _int(d, "T", 0, _MAX_MS) * _MS,
                                 _int(d, "u", 0, _INT64_MAX), ticks(d["b"]), lots(d["B"]), ticks(d["a"]),
                                 lots(d["A"]))  # fmt: skip
            elif stream == trade_stream:
                kind = d.get("X", "MARKET")
                if type(d["m"]) is not bool or type(kind) is not str:
                    raise BinanceError(f"m {_shown(d['m'])} and X {_shown(kind)}: true or false, and a string")
                yield Trade(line_no, recv_ns, _int(d, "E", 0, _MAX_MS) * _MS, _int(d, "T", 0, _MAX_MS) * _MS,
                            _int(d, "t", 0, _INT64_MAX), ticks(d["p"]), lots(d["q"]), d["m"], kind)  # fmt: skip
            elif stream == depth_stream or _diff_stream(stream, lower):
                yield DepthUpdate(line_no, recv_ns, _int(d, "E", 0, _MAX_MS) * _MS, _int(d, "T", 0, _MAX_MS) * _MS,
                                  _int(d, "U", 0, _INT64_MAX), _int(d, "u", 0, _INT64_MAX),
                                  _int(d, "pu", -1, _INT64_MAX), levels(d, "b"), levels(d, "a"))  # fmt: skip
            else:
                yield OtherMessage(line_no, recv_ns, stream)
        except BinanceError as exc:
            raise BinanceError(f"{path}:{line_no}: {exc}") from None
        except KeyError as exc:
            raise BinanceError(f"{path}:{line_no}: no field {exc}") from None
        except orjson.JSONDecodeError as exc:
            raise BinanceError(f"{path}:{line_no}: not JSON ({exc})") from None


# --- clock offset ----------------------------------------------------------------------------------------------


class ClockOffset(NamedTuple):
    """The collector's clock minus the exchange's, as a line in the collector's time; ``exchange_ns`` applies it."""

    #: collector - exchange at ``t0_ns`` (the first sample's receive time), including the floor latency
    offset_ns: int
    #: how fast the offset moves: ns per second of collector time (ppm x 1000)
    drift_ns_per_s: float
    t0_ns: int
    samples: int
    windows: int
    quantile: float
    window_ns: int
    #: corrected receive time - E over the samples: p50 and p99 (the latency above the floor)
    latency_p50_ns: int
    latency_p99_ns: int

    def offset_at(self, recv_ns: int) -> int:
        return self.offset_ns + round(self.drift_ns_per_s * (recv_ns - self.t0_ns) / 1e9)

    def exchange_ns(self, recv_ns: int) -> int:
        """A receive time on the exchange's clock (``recv_ns`` - the offset then)."""
        return recv_ns - self.offset_at(recv_ns)

    @property
    def drift_ppm(self) -> float:
        return self.drift_ns_per_s / 1000.0


def estimate_clock_offset(
    recv_ns: npt.ArrayLike, event_ns: npt.ArrayLike, *, quantile: float = 0.01, window_ns: int = 10_000_000_000
) -> ClockOffset:
    """The collector's clock offset from pairs (receive time, ``E``); see the module docstring for why so.

    The ``quantile`` of ``receive - E`` in each ``window_ns`` of receive time (windows of fewer than 20 samples
    are left out), then a least-squares line through (window's median receive time, that quantile). One window:
    a constant.
    """
    recv = np.asarray(recv_ns, dtype=np.int64)
    event = np.asarray(event_ns, dtype=np.int64)
    if recv.shape != event.shape or recv.size == 0:
        raise BinanceError("no messages with an event time to estimate the clock offset from")
    order = np.argsort(recv, kind="stable")
    recv, event = recv[order], event[order]
    delta = recv - event
    t0 = int(recv[0])
    bounds = np.searchsorted(recv, np.arange(t0, int(recv[-1]) + window_ns, window_ns), side="left")
    xs, ys = [], []
    for lo, hi in zip(bounds[:-1].tolist(), bounds[1:].tolist(), strict=True):
        if hi - lo >= 20:
            xs.append(float(np.median(recv[lo:hi] - t0)) / 1e9)
            ys.append(float(np.quantile(delta[lo:hi], quantile)))
    if len(xs) >= 2:
        slope, intercept = np.polyfit(xs, ys, 1)
    else:
        slope, intercept = 0.0, float(np.quantile(delta, quantile))
    latency = delta - (intercept + slope * (recv - t0) / 1e9)
    p50, p99 = np.quantile(latency, [0.5, 0.99])
    return ClockOffset(round(intercept), float(slope), t0, int(recv.size), len(xs), quantile, window_ns,
                       round(p50), round(p99))  # fmt: skip


# --- the book from update ids ----------------------------------------------------------------------------------


class DiffResult(enum.IntEnum):
    """What ``DepthBook.apply`` did with a diff."""

    #: applied: the book is now at its ``u``
    APPLIED = 1
    #: dropped: ``u`` is below the snapshot's id, or not above the book's (a repeat)
    OLD = 2
    #: not applied: it does not continue the book (a sequence gap); the book is stale from now on
    GAP = 3
    #: not applied: the book is stale (after a gap) or has no snapshot yet
    STALE = 4


class DepthBook:
    """The L2 book of one symbol rebuilt from a snapshot and diffs, keyed by update ids (module docstring)."""

    def __init__(self) -> None:
        #: price -> qty, per side
        self.bids: dict[int, int] = {}
        self.asks: dict[int, int] = {}
        # The prices as sort keys, best first: -price for bids, price for asks.
        self._bid_keys: list[int] = []
        self._ask_keys: list[int] = []
        #: the update id the book is at (the snapshot's, then each applied diff's ``u``); None before a snapshot
        self.update_id: int | None = None
        #: a snapshot is loaded and no gap came since
        self.synced = False
        #: the snapshot is loaded but no diff applied yet (the first one must straddle its id)
        self.awaiting_first = False

    def load(self, snapshot: Snapshot) -> None:
        """Start (again) from ``snapshot``: the whole book is replaced."""
        self.bids = {p: q for p, q in snapshot.bids if q}
        self.asks = {p: q for p, q in snapshot.asks if q}
        self._bid_keys = sorted(-p for p in self.bids)
        self._ask_keys = sorted(self.asks)
        self.update_id = snapshot.last_update_id
        self.synced = True
        self.awaiting_first = True

    def apply(self, diff: DepthUpdate) -> DiffResult:
        """Apply ``diff`` if it continues the book; see ``DiffResult``."""
        if not self.synced:
            return DiffResult.STALE
        last = self.update_id
        assert last is not None
        if self.awaiting_first:
            if diff.final_id < last:
                return DiffResult.OLD
            if diff.first_id > last:
                self.synced = False
                return DiffResult.GAP
            self.awaiting_first = False
        elif diff.prev_final_id != last:
            if diff.final_id <= last:
                return DiffResult.OLD
            self.synced = False
            return DiffResult.GAP
        self._set(self.bids, self._bid_keys, diff.bids, -1)
        self._set(self.asks, self._ask_keys, diff.asks, 1)
        self.update_id = diff.final_id
        return DiffResult.APPLIED

    @staticmethod
    def _set(book: dict[int, int], keys: list[int], levels: Levels, sign: int) -> None:
        for price, qty in levels:
            set_level(book, keys, price, qty, sign * price)

    def top(self) -> Top:
        bid = -self._bid_keys[0] if self._bid_keys else 0
        ask = self._ask_keys[0] if self._ask_keys else 0
        return Top(bid, self.bids[bid] if bid else 0, ask, self.asks[ask] if ask else 0)

    def depth(self, levels: int) -> tuple[Levels, Levels]:
        """The best ``levels`` of each side, best first: (bids, asks)."""
        bids = [(-k, self.bids[-k]) for k in self._bid_keys[:levels]]
        asks = [(k, self.asks[k]) for k in self._ask_keys[:levels]]
        return bids, asks


# --- the engine replay -----------------------------------------------------------------------------------------


def symbol_config(symbol: str = DEFAULT_SYMBOL, tick: float = DEFAULT_TICK, lot: float = DEFAULT_LOT) -> SymbolConfig:
    """The engine symbol of a Binance USD-M contract: prices up to 10^9 ticks, orders up to 10^9 lots, no band
    (the book's levels reach far from the touch: bids at 1000.00 under BTC at 61,800)."""
    return SymbolConfig(name=symbol, tick_size=tick, lot_size=lot, min_price_ticks=1, max_price_ticks=10**9,
                        max_order_lots=10**9)  # fmt: skip


#: the engine the command builds: one symbol, and room for the levels a day of diffs adds
ENGINE_CONFIG = EngineConfig(max_orders=1 << 20, max_levels_per_side=1 << 16, max_symbols=1)


class Applied(NamedTuple):
    """What ``BinanceReplay.apply`` did: the rebuild's verdict and the engine's events (empty if nothing ran)."""

    result: DiffResult
    events: npt.NDArray[np.void]


_NO_EVENTS = np.zeros(0, dtype=EVENT_DTYPE)


#: ``split(side, price, queue, cut) -> [(entry, amount), ...]``: which of a level's book orders (``queue``: its
#: ``[order id, open qty, side, price]`` entries in time priority) a decrease of ``cut`` lots comes off, and how
#: much of each (amounts > 0, summing to ``cut``). L2 data does not say who left a level: this is the queue
#: assumption a backtester chooses (strategies/backtest/binance_source.py offers several).
Split = Callable[[int, int, list[list[int]], int], list[tuple[list[int], int]]]


def take_from_back(side: int, price: int, queue: list[list[int]], cut: int) -> list[tuple[list[int], int]]:
    """The decrease comes off the back of the level, newest quantity first: no quantity ahead of another
    client's order there ever vanishes on a diff (the risk-averse rule for its queue place)."""
    out = []
    for entry in reversed(queue):
        if not cut:
            break
        amount = min(cut, entry[1])
        out.append((entry, amount))
        cut -= amount
    return out


class BinanceEngine(Protocol):
    """What :class:`BinanceReplay` uses of an engine: ``c_engine.Engine``, or a client link to a running engine
    (``hotpath.agents.market_link.LinkEngine``). ``execute_batch`` returns the batch's events (in process: all
    of them; over a link: the link's own, up to each command's LAST); ``l1`` is read only by ``engine_top``."""

    def symbol_id(self, symbol: str | int, /) -> int: ...

    def execute_batch(self, commands: npt.NDArray[np.void], /) -> npt.NDArray[np.void]: ...

    def l1(self, symbol: str | int, /) -> tuple[Level | None, Level | None]: ...


class BinanceReplay:
    """The rebuilt book as resting orders of ``book_client`` in ``engine``: ``load`` a snapshot, then ``apply``
    each diff in file order (module docstring, "Engine replay" and "Sharing the engine")."""

    def __init__(
        self,
        engine: BinanceEngine,
        symbol: str = DEFAULT_SYMBOL,
        *,
        book_client: int = BOOK_CLIENT,
        exclusive: bool = True,
        split: Split | None = None,
    ) -> None:
        self.engine = engine
        #: how a level's decrease is taken from its book orders (default: off the back, newest first)
        self.split: Split = split or take_from_back
        self.symbol_id = engine.symbol_id(symbol)
        self.book_client = book_client
        #: the engine holds only the book client's orders: its top must equal the rebuilt book's
        self.exclusive = exclusive
        self.book = DepthBook()
        #: per side, price -> the level's book orders in time priority, each ``[order id, open qty]``
        self.levels: dict[int, dict[int, list[list[int]]]] = {_BUY: {}, _SELL: {}}
        #: per side, price -> the book client's open qty there
        self.held: dict[int, dict[int, int]] = {_BUY: {}, _SELL: {}}
        #: order id -> ``[order id, open qty, side, price]`` (the same list as in ``levels``)
        self.orders: dict[int, list[int]] = {}
        self._acks: dict[int, list[int]] = {}  # cloid -> its order's entry, until the ACK names the order
        self._cloid = 0
        self._buffer = bytearray(_MSG * 256)
        self.commands = 0
        #: rejects, and trades among the book's own orders when exclusive
        self.anomalies = 0
        self.first_anomalies: list[str] = []

    # --- driving ------------------------------------------------------------------------------------------

    def load(self, snapshot: Snapshot) -> npt.NDArray[np.void]:
        """Start (again) from ``snapshot``: every level set to the snapshot's, the others emptied."""
        self.book.load(snapshot)
        targets: dict[int, dict[int, int]] = {
            _BUY: dict.fromkeys(self.held[_BUY], 0),
            _SELL: dict.fromkeys(self.held[_SELL], 0),
        }
        targets[_BUY].update(self.book.bids)
        targets[_SELL].update(self.book.asks)
        return self._run(list(targets[_BUY].items()), list(targets[_SELL].items()), snapshot.transact_ns,
                         f"snapshot line {snapshot.line_no}")  # fmt: skip

    def apply(self, diff: DepthUpdate) -> Applied:
        """One diff: the rebuild's verdict, and when applied, its level changes run in the engine as one batch."""
        result = self.book.apply(diff)
        if result != DiffResult.APPLIED:
            return Applied(result, _NO_EVENTS)
        return Applied(result, self._run(diff.bids, diff.asks, diff.transact_ns, f"diff line {diff.line_no}"))

    def clear_better(self, side: int, price: int, ts_ns: int) -> npt.NDArray[np.void]:
        """Cancels the book client's quantity at prices better than ``price`` on ``side``: a trade printed at
        ``price`` says nothing rested better on the maker's side then (a sweep took it, and the diff saying so
        may come later). A later diff that still has such a level sets it again."""
        # The book client's levels are the rebuilt book's prices (or fewer: trades and this take some away), so
        # when the rebuilt best is not better than ``price`` none of them is: the usual case, with no scan.
        top = self.book.top()
        best = top.bid_price if side == _BUY else top.ask_price
        if not best or (best <= price if side == _BUY else best >= price):
            return _NO_EVENTS
        held = self.held[side]
        better = [p for p in held if (p > price if side == _BUY else p < price)]
        if not better:
            return _NO_EVENTS
        zeros = [(p, 0) for p in better]
        return self._run(zeros if side == _BUY else (), zeros if side == _SELL else (), ts_ns,
                         f"levels better than a trade at {price}")  # fmt: skip

    def observe(self, events: npt.NDArray[np.void]) -> None:
        """Events of commands run on the same engine by someone else: fills of book orders update the levels."""
        self._fills(events)

    # --- checks -------------------------------------------------------------------------------------------

    def engine_top(self) -> Top:
        bid, ask = self.engine.l1(self.symbol_id)
        return Top(bid.price if bid else 0, bid.qty if bid else 0, ask.price if ask else 0, ask.qty if ask else 0)

    def own_top(self) -> Top:
        """The book client's quantity at the rebuilt best prices (with the rebuilt prices)."""
        top = self.book.top()
        return Top(top.bid_price, self.held[_BUY].get(top.bid_price, 0), top.ask_price,
                   self.held[_SELL].get(top.ask_price, 0))  # fmt: skip

    def check(self) -> tuple[Top, Top]:
        """(the rebuilt top, the engine's): its top when ``exclusive``, else the book client's own quantities."""
        return self.book.top(), self.engine_top() if self.exclusive else self.own_top()

    # --- commands -----------------------------------------------------------------------------------------

    def _run(self, bids: Iterable[tuple[int, int]], asks: Iterable[tuple[int, int]], ts_ns: int,
             what: str) -> npt.NDArray[np.void]:  # fmt: skip
        """Set each level to its new quantity: decreases first, then increases, as one engine batch."""
        buf = self._buffer
        cap = len(buf)
        off = 0  # bytes of commands packed
        adds: list[tuple[int, int, int]] = []
        sid, client, orders = self.symbol_id, self.book_client, self.orders
        for side, changes in ((_BUY, bids), (_SELL, asks)):
            held, levels = self.held[side], self.levels[side]
            for price, qty in changes:
                have = held.get(price, 0)
                if qty == have:
                    continue
                if qty > have:
                    adds.append((side, price, qty - have))
                    continue
                # Down: the split says how much comes off which book order (default: off the back).
                queue = levels[price]
                for entry, amount in self.split(side, price, queue, have - qty):
                    if off == cap:
                        buf.extend(bytes(cap))
                        cap *= 2
                    if amount >= entry[1]:
                        _pack_command(buf, off, _OP_CANCEL, 0, sid, client, 0, 0, 0, 0, 0, 0, ts_ns, entry[0], 0, 0,
                                      0, 0)  # fmt: skip
                        queue.remove(entry)
                        del orders[entry[0]]
                    else:
                        entry[1] -= amount
                        _pack_command(buf, off, _OP_MODIFY, 0, sid, client, 0, 0, 0, _HAS_QTY, 0, 0, ts_ns,
                                      entry[0], 0, 0, entry[1], 0)  # fmt: skip
                    off += _MSG
                if qty:
                    held[price] = qty
                else:
                    del held[price]
                    del levels[price]
        if adds:
            acks, cloid = self._acks, self._cloid
            for side, price, qty in adds:
                if off == cap:
                    buf.extend(bytes(cap))
                    cap *= 2
                cloid += 1
                entry = [0, qty, side, price]
                acks[cloid] = entry
                levels = self.levels[side]
                behind = levels.get(price)
                if behind is None:
                    levels[price] = [entry]
                else:
                    behind.append(entry)
                held = self.held[side]
                held[price] = held.get(price, 0) + qty
                _pack_command(buf, off, _OP_NEW, side, sid, client, _LIMIT, _GTC, _STP_NONE, _HAS_PRICE, 0, 0,
                              ts_ns, 0, cloid, price, qty, 0)  # fmt: skip
                off += _MSG
            self._cloid = cloid
        n = off // _MSG
        if not n:
            return _NO_EVENTS
        self.commands += n
        events = self.engine.execute_batch(np.frombuffer(buf, dtype=COMMAND_DTYPE, count=n))
        self._settle(events, what)
        return events

    def _settle(self, events: npt.NDArray[np.void], what: str) -> None:
        """Order ids from the ACKs; rejects and (when exclusive) fills are anomalies; fills update the levels.
        Fills, not TRADEs, since a link returns no market data: every trade gives both sides a FILL."""
        types = events["type"]
        acks = (types == _ACK) & (events["acked_op"] == _OP_NEW) & (events["client_id"] == self.book_client)
        for cloid, order_id in zip(events["cloid"][acks].tolist(), events["order_id"][acks].tolist(), strict=True):
            entry = self._acks.pop(cloid, None)
            if entry is not None:
                entry[0] = order_id
                self.orders[order_id] = entry
        rejects = types == _REJECT
        if rejects.any():
            for reason in events["reason"][rejects].tolist():
                self._anomaly(f"{what}: the engine rejected a book command (reason {reason})")
            self._drop_unacked()
        if (types == _FILL).any():
            if self.exclusive:
                self._anomaly(f"{what}: book orders traded with each other (the rebuilt book crossed)")
            self._fills(events)

    def _drop_unacked(self) -> None:
        """New orders the engine refused: out of the levels (their quantity is not in the engine)."""
        for entry in self._acks.values():
            _, qty, side, price = entry
            self.levels[side][price].remove(entry)
            held = self.held[side]
            held[price] -= qty
            if not held[price]:
                del held[price]
                del self.levels[side][price]
        self._acks.clear()

    def _fills(self, events: npt.NDArray[np.void]) -> None:
        mine = (events["type"] == _FILL) & (events["client_id"] == self.book_client)
        if not mine.any():
            return
        for order_id, leaves in zip(events["order_id"][mine].tolist(), events["leaves"][mine].tolist(), strict=True):
            entry = self.orders.get(order_id)
            if entry is None:
                continue
            _, qty, side, price = entry
            held = self.held[side]
            held[price] -= qty - leaves
            entry[1] = leaves
            if leaves == 0:
                del self.orders[order_id]
                queue = self.levels[side][price]
                queue.remove(entry)
                if not queue:
                    del self.levels[side][price]
            if not held[price]:
                del held[price]

    def _anomaly(self, text: str) -> None:
        self.anomalies += 1
        if len(self.first_anomalies) < 5:
            self.first_anomalies.append(text)


# --- the check over a file -------------------------------------------------------------------------------------


@dataclass
class BinanceReport:
    """What a replay of a collector file found; ``lines()`` is what the command prints."""

    path: str
    symbol: str
    messages: int = 0
    snapshots: int = 0
    diffs: int = 0
    trades: int = 0
    tickers: int = 0
    #: other streams or symbols, by stream name
    other: dict[str, int] = field(default_factory=dict)
    snapshot_lines: list[int] = field(default_factory=list)
    applied: int = 0
    #: diffs dropped: ``u`` below the snapshot's id, or a repeat
    dropped: int = 0
    gaps: int = 0
    first_gaps: list[str] = field(default_factory=list)
    #: diffs not applied because the book was stale (after a gap, no snapshot since)
    stale: int = 0
    #: tickers compared with the book: at a diff's ``u`` (or the snapshot's id), or between two diffs
    at_final_id: int = 0
    between: int = 0
    #: tickers that cannot be compared, by why
    inside: int = 0
    before_snapshot: int = 0
    while_stale: int = 0
    after_last_diff: int = 0
    too_late: int = 0
    #: tickers whose best bid/ask (price and qty) differ from the rebuilt book's
    mismatches: int = 0
    first_mismatches: list[str] = field(default_factory=list)
    #: with the engine: diffs after which its top differed from the rebuilt one, its commands and anomalies
    engine: bool = False
    engine_mismatches: int = 0
    engine_commands: int = 0
    engine_orders: int = 0
    anomalies: int = 0
    first_anomalies: list[str] = field(default_factory=list)
    clock: ClockOffset | None = None
    final_top: Top | None = None

    @property
    def compared(self) -> int:
        return self.at_final_id + self.between

    @property
    def failed(self) -> bool:
        return bool(self.gaps or self.mismatches or self.engine_mismatches or self.anomalies)

    def lines(self) -> list[str]:
        other = sum(self.other.values())
        out = [
            f"binance {self.symbol} {self.path}: {self.messages} messages: {self.snapshots} snapshot, {self.diffs} "
            f"depth updates, {self.trades} trades, {self.tickers} book tickers, {other} other",
            f"snapshot at line {', '.join(map(str, self.snapshot_lines))}; depth updates: {self.applied} applied, "
            f"{self.dropped} dropped (before the snapshot's id), {self.stale} not applied (stale book); "
            f"sequence gaps: {self.gaps}",
            f"book tickers: {self.compared} comparable and compared ({self.at_final_id} at a diff's final id, "
            f"{self.between} between diffs), mismatches: {self.mismatches}; not comparable: {self.inside} inside a "
            f"diff's id range, {self.before_snapshot} before the snapshot, {self.while_stale} while stale, "
            f"{self.after_last_diff} after the last diff, {self.too_late} older than the kept history",
        ]
        if self.engine:
            out.append(
                f"engine: {self.engine_commands} commands, {self.engine_orders} book orders resting at the end; "
                f"top-of-book mismatches after a diff: {self.engine_mismatches}, anomalies: {self.anomalies}"
            )
        if self.clock is not None:
            c = self.clock
            out.append(
                f"clock: collector - exchange = {c.offset_ns / 1e6:.3f} ms at the start, drift {c.drift_ppm:+.2f} "
                f"ppm ({c.quantile:g} quantile of receive - E per {c.window_ns / 1e9:g} s window, line fit over "
                f"{c.windows} windows); latency above the floor p50 {c.latency_p50_ns / 1e6:.2f} ms, "
                f"p99 {c.latency_p99_ns / 1e6:.2f} ms"
            )
        out += [f"  gap: {g}" for g in self.first_gaps]
        out += [f"  mismatch: {m}" for m in self.first_mismatches]
        out += [f"  anomaly: {a}" for a in self.first_anomalies]
        for stream, count in sorted(self.other.items()):
            out.append(f"  other stream {stream}: {count}")
        return out


def _show(top: Top) -> str:
    return f"bid {top.bid_qty}@{top.bid_price} ask {top.ask_qty}@{top.ask_price}"


class BinanceCheck:
    """Messages in file order -> the rebuild (and the engine replay when given), with every check counted.

    Diffs wait while the book is not synced (before a snapshot, or stale after a gap) and are replayed when a
    snapshot comes; book tickers are matched to the book by update id (module docstring, "The check").
    """

    def __init__(self, report: BinanceReport, replay: BinanceReplay | None = None, show: int = 5,
                 history: int = HISTORY_DIFFS) -> None:  # fmt: skip
        self.report = report
        self.replay = replay
        self.book = replay.book if replay is not None else DepthBook()
        self.show = show
        self.history = history
        self._held: list[DepthUpdate] = []  # diffs that came while the book was not synced
        self._pending: list[tuple[int, int, BookTicker]] = []  # heap of (u, line, ticker) not yet reached
        # The tops after the last diffs (the snapshot first): their U, u and top.
        self._hist_first: list[int] = []
        self._hist_final: list[int] = []
        self._hist_top: list[Top] = []
        self._first_id: int | None = None  # the first snapshot's id
        self._recv: list[int] = []
        self._event: list[int] = []

    def feed(self, msg: Message) -> None:
        r = self.report
        r.messages += 1
        kind = type(msg)
        if kind is DepthUpdate:
            assert isinstance(msg, DepthUpdate)
            r.diffs += 1
            self._recv.append(msg.recv_ns)
            self._event.append(msg.event_ns)
            if self.book.synced:
                self._diff(msg)
            else:
                self._held.append(msg)
        elif kind is BookTicker:
            assert isinstance(msg, BookTicker)
            r.tickers += 1
            self._recv.append(msg.recv_ns)
            self._event.append(msg.event_ns)
            self._ticker(msg)
        elif kind is Trade:
            assert isinstance(msg, Trade)
            r.trades += 1
            self._recv.append(msg.recv_ns)
            self._event.append(msg.event_ns)
        elif kind is Snapshot:
            assert isinstance(msg, Snapshot)
            self._snapshot(msg)
        else:
            assert isinstance(msg, OtherMessage)
            r.other[msg.stream] = r.other.get(msg.stream, 0) + 1

    # --- diffs and snapshots ------------------------------------------------------------------------------

    def _snapshot(self, snap: Snapshot) -> None:
        r = self.report
        r.snapshots += 1
        r.snapshot_lines.append(snap.line_no)
        if self.replay is not None:
            self.replay.load(snap)
        else:
            self.book.load(snap)
        if self._first_id is None:
            self._first_id = snap.last_update_id
        top = self.book.top()
        self._hist_first, self._hist_final, self._hist_top = [snap.last_update_id], [snap.last_update_id], [top]
        self._check_engine(f"snapshot line {snap.line_no}")
        # Tickers waiting for ids up to the snapshot's: before it (or while stale), or at it.
        pending = self._pending
        while pending and pending[0][0] <= snap.last_update_id:
            u, _, ticker = heapq.heappop(pending)
            if u == snap.last_update_id:
                self._compare(ticker, top, "the snapshot")
                r.at_final_id += 1
            elif r.snapshots == 1:
                r.before_snapshot += 1
            else:
                r.while_stale += 1
        held, self._held = self._held, []
        for diff in held:
            if self.book.synced:
                self._diff(diff)
            else:
                self._held.append(diff)

    def _diff(self, diff: DepthUpdate) -> None:
        r = self.report
        pending = self._pending
        # Tickers between the book's id and this diff's U saw the book as it is now (when the diff continues it:
        # after a gap, the missing diffs may lie there).
        book = self.book
        if (pending and pending[0][0] < diff.first_id and book.synced and not book.awaiting_first
                and diff.prev_final_id == book.update_id):  # fmt: skip
            top = self.book.top()
            while pending and pending[0][0] < diff.first_id:
                _, _, ticker = heapq.heappop(pending)
                self._compare(ticker, top, f"before diff line {diff.line_no}")
                r.between += 1
        if self.replay is not None:
            result = self.replay.apply(diff).result
        else:
            result = self.book.apply(diff)
        if result == DiffResult.APPLIED:
            r.applied += 1
            top = self.book.top()
            self._check_engine(f"diff line {diff.line_no}")
            self._hist_first.append(diff.first_id)
            self._hist_final.append(diff.final_id)
            self._hist_top.append(top)
            if len(self._hist_final) > 2 * self.history:
                del self._hist_first[: -self.history], self._hist_final[: -self.history]
                del self._hist_top[: -self.history]
            while pending and pending[0][0] <= diff.final_id:
                u, _, ticker = heapq.heappop(pending)
                if u == diff.final_id:
                    self._compare(ticker, top, f"diff line {diff.line_no}")
                    r.at_final_id += 1
                else:
                    r.inside += 1
        elif result == DiffResult.OLD:
            r.dropped += 1
        elif result == DiffResult.GAP:
            r.gaps += 1
            if len(r.first_gaps) < self.show:
                r.first_gaps.append(f"line {diff.line_no}: U {diff.first_id} u {diff.final_id} pu "
                                    f"{diff.prev_final_id}, the book is at {self.book.update_id}")  # fmt: skip
            self._held.append(diff)  # a later snapshot may start at it
        else:
            self._held.append(diff)

    def _check_engine(self, what: str) -> None:
        if self.replay is None:
            return
        rebuilt, engine = self.replay.check()
        if engine != rebuilt:
            r = self.report
            r.engine_mismatches += 1
            if len(r.first_mismatches) < self.show:
                r.first_mismatches.append(f"{what}: engine {_show(engine)} != rebuilt {_show(rebuilt)}")

    # --- tickers ------------------------------------------------------------------------------------------

    def _ticker(self, ticker: BookTicker) -> None:
        r = self.report
        u = ticker.update_id
        at = self.book.update_id
        if at is None or u > at or not self._hist_final:
            heapq.heappush(self._pending, (u, ticker.line_no, ticker))
            return
        # The book has passed this id: look it up in the kept tops.
        finals = self._hist_final
        if u < finals[0]:
            if self._first_id is not None and u < self._first_id:
                r.before_snapshot += 1
            else:
                r.too_late += 1
            return
        k = bisect_left(finals, u)
        if k == len(finals):  # beyond the last applied diff while the book is stale
            r.while_stale += 1
        elif finals[k] == u:
            self._compare(ticker, self._hist_top[k], "a kept diff")
            r.at_final_id += 1
        elif self._hist_first[k] <= u:
            r.inside += 1
        else:
            self._compare(ticker, self._hist_top[k - 1], "between kept diffs")
            r.between += 1

    def _compare(self, ticker: BookTicker, top: Top, what: str) -> None:
        if ticker[5:] != top:
            r = self.report
            r.mismatches += 1
            if len(r.first_mismatches) < self.show:
                theirs = Top(*ticker[5:])
                r.first_mismatches.append(f"book ticker line {ticker.line_no} (u {ticker.update_id}) vs {what}: "
                                          f"ticker {_show(theirs)} != rebuilt {_show(top)}")  # fmt: skip

    def finish(self) -> BinanceReport:
        """Close the counts at the end of the file."""
        r = self.report
        for _, _, _ticker in self._pending:
            if self.book.synced:
                r.after_last_diff += 1
            elif r.snapshots:
                r.while_stale += 1
            else:
                r.before_snapshot += 1
        self._pending = []
        r.stale += len(self._held)
        self._held = []
        if self._recv:
            r.clock = estimate_clock_offset(self._recv, self._event)
        if self.book.update_id is not None:
            r.final_top = self.book.top()
        if self.replay is not None:
            r.engine_commands = self.replay.commands
            r.engine_orders = len(self.replay.orders)
            r.anomalies = self.replay.anomalies
            r.first_anomalies = list(self.replay.first_anomalies)
        return r


def replay_binance(
    path: StrPath,
    symbol: str = DEFAULT_SYMBOL,
    tick: float = DEFAULT_TICK,
    lot: float = DEFAULT_LOT,
    *,
    engine: bool = True,
    show: int = 5,
    history: int = HISTORY_DIFFS,
) -> BinanceReport:
    """Rebuild the book of a collector file, check it against its book tickers and, with ``engine``, replay it
    in a fresh ``c_engine.Engine`` checking the engine's top after every diff; see the module docstring."""
    if tick <= 0 or lot <= 0:
        raise BinanceError(f"tick {tick} and lot {lot} must be positive")
    symbol = symbol.upper()
    replay = None
    if engine:
        from ._engine import Engine

        eng = Engine(ENGINE_CONFIG)
        eng.add_symbol(symbol_config(symbol, tick, lot))
        replay = BinanceReplay(eng, symbol)
    check = BinanceCheck(BinanceReport(Path(path).name, symbol, engine=engine), replay, show, history)
    for msg in iter_messages(path, symbol, tick, lot):
        check.feed(msg)
    report = check.finish()
    if not report.snapshots:
        raise BinanceError(f"{path}: no depth snapshot (a line with lastUpdateId): the book cannot be rebuilt")
    if not report.diffs:
        raise BinanceError(f"{path}: no depth update of {symbol} (streams: {sorted(report.other) or 'none'})")
    return report


def run(args: argparse.Namespace) -> int:
    """The ``engine binance`` subcommand; returns the exit code (1 on a gap, mismatch or anomaly)."""
    if not _SYMBOL.fullmatch(args.symbol):
        print(f"--symbol {args.symbol[:40]!r}: a contract is 1-32 letters and digits (BTCUSDT)", file=sys.stderr)
        return 2
    for flag, value in (("--tick", args.tick), ("--lot", args.lot)):
        if not (math.isfinite(value) and value > 0):
            print(f"{flag} {value}: must be a finite number > 0", file=sys.stderr)
            return 2
    try:
        symbol_config(args.symbol, args.tick, args.lot).check()
    except InvalidConfigError as exc:  # a step whose reciprocal overflows, as 1e-320
        print(f"--{str(exc).split('_', 1)[0]}: {exc}", file=sys.stderr)
        return 2
    try:
        report = replay_binance(args.file, args.symbol, args.tick, args.lot, show=args.show)
    except (BinanceError, OSError) as exc:
        print(exc if isinstance(exc, BinanceError) else f"{exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    return 1 if report.failed else 0
