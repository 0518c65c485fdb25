"""``proptrade engine lobster``: replay a LOBSTER day through the engine's own matching and check every book row.

::

    proptrade engine lobster MESSAGE.csv ORDERBOOK.csv [--tick 100] [--show 5] [--engine c|reference]

LOBSTER (lobsterdata.com) gives, for one stock and day, a message file (time, type, order id, size, price in
dollars x 10000, direction) and an order-book file whose row i is the top N levels a side *after* message i.
This module rebuilds the book in the engine from the messages and compares the engine's ``l2`` with every row.

Choices, in the order they bite:

- **Files.** Both files are read as text, plain or gzip (told by the first two bytes, so ``.csv.gz`` as LOBSTER
  ships it is read directly), and streamed side by side: one message and its row at a time.
- **Bad input.** Every field is checked against its range as it is read; anything else is a
  :class:`LobsterError` naming the file, the line and the field: a line of more than ``MAX_LINE_CHARS`` (no
  LOBSTER line comes near it; a binary file or one without newlines is not held whole), a byte that is not
  ASCII, a number with an underscore or of more digits than its field holds, a time outside one day, a size
  outside ``1..MAX_SIZE`` or a price outside ``1..MAX_PRICE_TICKS`` ticks (the replay's symbol,
  :func:`symbol_config`), an order id beyond uint64, damaged gzip data. Types 5-7 are skipped, so only their
  time, type and order id are checked. The engine only ever sees values it can hold, and a person always sees
  where the file is wrong.
- **Units.** One tick is ``--tick`` LOBSTER price units (default 100 = $0.01, the AAPL tick): prices are divided
  exactly, and a price that is not a multiple of the tick is an error, never rounded. One lot is one share.
  Times (seconds after midnight) become integer nanoseconds: exactly up to 9 decimals; more decimals (LOBSTER
  prints some times as a double, ``43002.632812672004``) are rounded to the nearest ns, half up, because the
  digits past the 9th are the float's error on either side of the exchange's ns time (truncating would put
  ``...671999999`` one ns early).
- **Seeding.** The book is not empty when the file starts. It is seeded from row 1 (the book after message 1):
  one *seed order* per level, from client 2, with the level's size. Message 1 is therefore not applied (its
  effect is in row 1); messages 2..N are, and rows 2..N are compared.
- **Orders.** Client 1 owns the orders of the file, client 2 the seed orders, client 3 the takers; all use
  STP NONE. A new limit order (type 1) is a new GTC limit order. A partial cancel (type 2) is a modify down to
  the new open qty (a cancel if that is 0). A delete (type 3) is a cancel. A visible execution (type 4, its
  direction the resting order's side) of the order first in time priority at its price is a marketable IOC limit
  order of client 3 at that price, on the other side, for the executed size: the engine's own matching finds
  the maker, and the replay checks it traded exactly that order and size (otherwise an anomaly). Hidden
  executions (5), cross trades (6) and halts (7) do not touch the visible book and are skipped (counted).
- **Priority deviations.** The replay keeps each level's queue of engine orders in time priority (from the
  engine's events). An execution of an order that is *not* first there is applied as a reduction of the order
  the file names (LOBSTER says which order traded) and counted as a *priority deviation*, not an anomaly. On the
  GOOG 2012-06-21 day there are 5: three executions of one sweep of a whole level within one nanosecond (lines
  131725-131729, listed out of time order), and twice (lines 69773, 145471) an order that replaced an older one
  (a delete and a new at the same price in the same ns) traded ahead of an order that arrived between the two.
- **Unknown orders.** An order id the file never introduced rested before the sample began or arrived while its
  level was out of view, so it is inside a seed order: a cancel, partial cancel or execution of an unknown id at
  a price applies to the seed order of that level (a delete reduces it by the size deleted). The same holds for a
  known order that is no longer in the engine because its level was refreshed (below).
- **Refreshes.** An N-level message file carries only the events at prices within the visible N levels (on the
  GOOG day every applied message is within the previous row's N levels of its side), so a level pushed below
  level N changes unseen: orders leave it, others join, and its total may come back the same. After each
  message, per side whose previous row had all N levels (a side with fewer was wholly in view), the *re-read
  range* is the prices strictly worse than that previous row's Nth price and not worse than the current row's
  Nth price (no bound when the current row has fewer than N levels). Every row level in that range *came back
  into view*: it is a refresh and is **always** rebuilt as one seed order of the row's size, the engine's
  orders there cancelled, whatever the engine held (equal size included: its orders may be others now). Every
  engine level in that range that the row lacks vanished unseen: it is removed, also a refresh. Levels that
  stayed in view are never touched: they must match. Refreshes are counted; those where the engine's quantity
  differed from the row are reported as "changed".
- **Comparison.** After each message (and its refreshes) the engine's top N levels a side, ``Engine.l2(symbol,
  N)``, must equal the row exactly, ``(price, qty)`` per level; any difference is a mismatch. The command prints
  rows compared, refreshes and mismatches (the first few shown) and exits 1 on any mismatch, 2 on an unusable
  input file.
- **Own events only** (``own_events_only=True``: the live market agent, ``hotpath/agents/market.py``, which
  drives the replay over a client link). A link returns only its own account's events: no BOOK_DELTA or TRADE
  (those go to the market-data ring) and nothing of other clients. So the replay keeps the level quantities it
  refreshes and compares from its own orders' events, and the row check compares those levels (the engine's
  book without anyone else's orders) with the row, never calling ``l2``; a visible execution's maker is read
  from its maker FILL instead of the TRADE. Other clients' orders cannot be seen before a command, so their
  effect is repaired after it, and every recorded order still ends exactly as recorded: an execution's IOC
  (never larger than the named order's open quantity, so it cannot reach orders behind it) that met other
  orders first (better priced, or ahead in the queue) traded less with the recorded maker, and the maker is then
  reduced by the rest (*displaced*, counted); a new order (or seed) that traded with other orders on arrival is
  brought back to its recorded size (*crossed others*, counted): modified up if part of it rests, placed again
  if nothing does. The other client is filled where the recorded flow met its order, as the backtester's
  ``extend`` policy does (docs/STRATEGIES.md). A recorded order that another client's order consumed is
  found smaller, or gone, by the messages that later name it: they apply to what is left, or to the level's
  seed order as for any unknown id, and count the difference as an anomaly (an execution of more than is left
  trades only what is left).

On the AAPL 2012-06-21 10-level sample in ``../shared/data/lobster`` every one of the 998 compared rows
matches (0 mismatches, 0 priority deviations, 0 anomalies) with 320 refreshes (14 changed) and 17 seed orders
used for unknown ids. On the full GOOG 2012-06-21 day there (147,916 messages, gzip) every one of the 147,915
compared rows matches, with 47,799 refreshes (8,332 changed), 7,120 seed orders used for unknown ids, 5
priority deviations and 0 anomalies, in about 4 s.

Without that data, ``lobster_synth.py`` writes a LOBSTER day from the seeded synthetic flow run through the
engine: every message (the full form), or only those touching the top N levels as real files have them (the
filtered form, which needs the refreshes); ``tests/c_engine/test_lobster_synthetic.py`` replays both. Its
filtered day of seed 31 is the case for rebuilding every level that comes back into view: a level left the view
and came back with the same size but other orders.
"""

from __future__ import annotations

import argparse
import gzip
import sys
import zlib
from bisect import bisect_right
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import IO, TYPE_CHECKING, NamedTuple, Protocol

from ._config import EngineConfig, Level, SymbolConfig
from ._types import Command, Event
from ._wire import EventType, Liquidity, Op, Side, Stp, Tif
from .levels import set_level

if TYPE_CHECKING:
    from .replay import _ReplayEngine

__all__ = [
    "BOOK_CLIENT",
    "BookRow",
    "LobsterEngine",
    "LobsterError",
    "LobsterReplay",
    "LobsterReport",
    "Message",
    "OwnOrders",
    "SEED_CLIENT",
    "TAKER_CLIENT",
    "iter_book_lines",
    "iter_messages",
    "open_text",
    "read_messages",
    "read_orderbook",
    "replay_lobster",
    "run",
    "symbol_config",
]

StrPath = str | PathLike[str]

#: the client of the orders the message file introduces
BOOK_CLIENT = 1
#: the client of the seed orders (orders that rested before the sample began)
SEED_CLIENT = 2
#: the client of the IOC orders that execute resting orders
TAKER_CLIENT = 3

#: LOBSTER's placeholders for an empty slot in the order-book file
EMPTY_ASK_PRICE = 9999999999
EMPTY_BID_PRICE = -9999999999

NEW, PARTIAL_CANCEL, DELETE, EXECUTE, EXECUTE_HIDDEN, CROSS, HALT = 1, 2, 3, 4, 5, 6, 7
_TYPE_NAMES = {NEW: "new", PARTIAL_CANCEL: "partial cancel", DELETE: "delete", EXECUTE: "execution",
               EXECUTE_HIDDEN: "hidden execution", CROSS: "cross trade", HALT: "halt"}  # fmt: skip
_APPLIED = frozenset((NEW, PARTIAL_CANCEL, DELETE, EXECUTE))

# Plain ints for the per-event dispatch (an IntEnum member costs an attribute lookup per use).
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
_ACK, _FILL, _CANCELED = int(EventType.ACK), int(EventType.FILL), int(EventType.CANCELED)
_MODIFIED, _REJECT = int(EventType.MODIFIED), int(EventType.REJECT)
_TRADE, _BOOK_DELTA = int(EventType.TRADE), int(EventType.BOOK_DELTA)
_OP_NEW, _GTC = int(Op.NEW), int(Tif.GTC)
_MAKER = int(Liquidity.MAKER)
#: own-events mode: how many times a recorded new order is placed again when other clients' crossing orders
#: took all of it on arrival (each try consumes what crossed; a book with more than this is an anomaly)
MAX_REPLACE = 100
#: a message's side -> (offset of that side's price in an order-book line's group of 4, its empty placeholder)
_ROW_SLOT = {_SELL: (0, EMPTY_ASK_PRICE), _BUY: (2, EMPTY_BID_PRICE)}
_GZIP_MAGIC = b"\x1f\x8b"

#: the longest line either file may have, in characters: a 10-level order-book row has about 200, so a longer
#: one is not a LOBSTER file (a binary file, a file without newlines) and is refused before it is held whole
MAX_LINE_CHARS = 128 * 1024
#: the replay's symbol (symbol_config's values): prices in 1 .. MAX_PRICE_TICKS ticks, sizes in 1 .. MAX_SIZE shares
MAX_PRICE_TICKS = 10_000_000
MAX_SIZE = 1_000_000_000
#: times are seconds after midnight of one day
MAX_TIME_S = 86_400
_INT64_MAX = (1 << 63) - 1
#: the largest ``--tick``: the highest price, MAX_PRICE_TICKS ticks, is an int64 of LOBSTER units
MAX_TICK = _INT64_MAX // MAX_PRICE_TICKS
_UINT64_MAX = (1 << 64) - 1
#: a message's columns, as errors name them
_MESSAGE_FIELDS = ("time", "type", "order id", "size", "price", "direction")


class LobsterError(ValueError):
    """An input file that cannot be replayed exactly (bad row, price off the tick)."""


class LobsterEngine(Protocol):
    """What :class:`LobsterReplay` uses of an engine: ``c_engine.Engine``, the reference engine, or a client link
    to a running engine (``hotpath.agents.market_link.LinkEngine``). ``execute`` returns the command's events
    (in process: all of them; over a link: the link's own, up to the command's LAST); ``l2`` is read by the row
    check only without ``own_events_only``."""

    def symbol_id(self, symbol: str | int, /) -> int: ...

    def execute(self, cmd: Command, /) -> list[Event]: ...

    def l2(self, symbol: str | int, depth: int | None = None, /) -> dict[str, list[Level]]: ...


class OwnOrders(Protocol):
    """The resting orders of a strategy attached to the replay (its own client id), as the replay needs them.

    With a strategy attached, the recorded orders still trade exactly as recorded (the market-impact policy
    "extend", docs/STRATEGIES.md): a visible execution's IOC is enlarged by the strategy's quantity that the
    engine would match before the recorded order, so the strategy is filled where the execution passed its
    queue place and the recorded order still trades its recorded size; a recorded new order that crosses the
    strategy's quotes is enlarged by what it takes from them, so it still rests with its recorded size; and the
    comparison with each row leaves the strategy's quantity out of the engine's levels.
    """

    def qty_at(self, side: int, price: int) -> int:
        """The strategy's open quantity resting at the level."""
        ...

    def ahead_of(self, side: int, price: int, order_id: int) -> int:
        """The strategy's open quantity the engine matches before ``order_id`` resting at ``price`` on
        ``side``: at better prices, and at that price with earlier time priority."""
        ...

    def crossing(self, side: int, price: int) -> int:
        """The strategy's open quantity that a new ``side`` limit order at ``price`` would trade with."""
        ...

    def owns(self, order_id: int) -> bool: ...


class Message(NamedTuple):
    """One message-file row; ``price`` in ticks (0 for the skipped types), ``side`` a ``Side``."""

    line_no: int
    ts_ns: int
    type: int
    order_id: int
    size: int
    price: int
    side: int


class BookRow(NamedTuple):
    """One order-book row: ``(price ticks, size)`` per level, best first, empty slots dropped."""

    line_no: int
    sell: tuple[tuple[int, int], ...]
    buy: tuple[tuple[int, int], ...]


def open_text(path: StrPath, errors: str = "strict") -> IO[str]:
    """``path`` opened for reading text; a gzip file (``.gz``, told by its first two bytes) is decompressed.
    ``errors`` is the UTF-8 decoding's (the readers here take ``"surrogateescape"`` and refuse a non-ASCII line
    themselves, naming its line and column)."""
    with open(path, "rb") as f:
        gzipped = f.read(2) == _GZIP_MAGIC
    return gzip.open(path, "rt", newline="", errors=errors) if gzipped else open(path, newline="", errors=errors)


def _lines(path: StrPath) -> Iterator[tuple[int, str]]:
    """``(line number, line)`` of a LOBSTER file, each checked to be ASCII, of at most ``MAX_LINE_CHARS`` and
    without underscores (which ``int()`` would take as digit separators)."""
    line_no = 0
    try:
        with open_text(path, errors="surrogateescape") as f:
            while line := f.readline(MAX_LINE_CHARS + 1):
                line_no += 1
                if len(line) > MAX_LINE_CHARS and line[-1] != "\n":
                    raise LobsterError(f"{path}:{line_no}: a line of more than {MAX_LINE_CHARS // 1024} KiB: not a "
                                       "LOBSTER file")  # fmt: skip
                if not line.isascii():
                    column, char = next((i, c) for i, c in enumerate(line, start=1) if not c.isascii())
                    code = ord(char) - 0xDC00 if 0xDC80 <= ord(char) <= 0xDCFF else ord(char)  # an undecodable byte
                    raise LobsterError(f"{path}:{line_no}: not ASCII text ({code:#04x} at column {column})")
                if "_" in line:
                    raise LobsterError(f"{path}:{line_no}: an underscore at column {line.index('_') + 1}: LOBSTER "
                                       "numbers are plain digits")  # fmt: skip
                yield line_no, line
    except (EOFError, zlib.error, gzip.BadGzipFile) as exc:  # BadGzipFile is an OSError without a file name
        raise LobsterError(f"{path}:{line_no + 1}: damaged gzip data ({exc})") from None


def _field(text: str, name: str, where: str) -> int:
    """An integer field that ``int()`` refused: LobsterError saying why (its length first: ``int()`` of
    thousands of digits is an error of its own)."""
    digits = text.strip()
    if len(digits) > 20:
        raise LobsterError(f"{where}: {name} {digits[:20]}... has {len(digits)} characters: beyond any int64")
    try:
        return int(digits)
    except ValueError:
        raise LobsterError(f"{where}: {name} {digits!r} is not an integer") from None


def _ticks(raw: int, tick: int, where: str) -> int:
    if raw % tick:
        raise LobsterError(f"{where}: price {raw} is not a multiple of the tick ({tick})")
    ticks = raw // tick
    if not 1 <= ticks <= MAX_PRICE_TICKS:
        raise LobsterError(f"{where}: price {raw} is {ticks} ticks, outside 1..{MAX_PRICE_TICKS}")
    return ticks


def _time_ns(raw: str, where: str) -> int:
    """Seconds after midnight as integer ns. More than 9 decimals are rounded to the nearest ns (half up).

    LOBSTER writes some times as a double with 17 significant digits (``43002.632812672004``): the digits past
    the 9th are the binary float's error, on either side of the exchange's ns time. Rounding recovers that
    time; truncating would make ``...671999999`` one ns early.
    """
    seconds, _, fraction = raw.strip().partition(".")
    if not (seconds.isascii() and seconds.isdigit()) or (fraction and not (fraction.isascii() and fraction.isdigit())):
        shown = raw if len(raw) <= 40 else raw[:40] + "..."
        raise LobsterError(f"{where}: time {shown!r} is not seconds after midnight with decimals")
    if len(seconds) > 5 or int(seconds) > MAX_TIME_S:
        shown = seconds if len(seconds) <= 20 else seconds[:20] + "..."
        raise LobsterError(f"{where}: time {shown} s is outside the day (0..{MAX_TIME_S} s after midnight)")
    ns = int(seconds) * 1_000_000_000 + int(fraction[:9].ljust(9, "0"))
    return ns + 1 if len(fraction) > 9 and fraction[9] >= "5" else ns


def iter_messages(path: StrPath, tick: int = 100) -> Iterator[Message]:
    """The message file's rows, one at a time (gzip or plain text); LobsterError at the first bad one."""
    for line_no, line in _lines(path):
        where = f"{path}:{line_no}"
        row = line.split(",")
        if len(row) != 6:
            raise LobsterError(f"{where}: {len(row)} columns, a message has 6")
        try:
            kind, order_id, size, direction, raw_price = int(row[1]), int(row[2]), int(row[3]), int(row[5]), int(row[4])
        except ValueError:  # say which column, and why
            for i in (1, 2, 3, 4, 5):
                _field(row[i], _MESSAGE_FIELDS[i], where)
            raise
        if kind not in _TYPE_NAMES:
            raise LobsterError(f"{where}: unknown message type {kind}")
        if not 0 <= order_id <= _UINT64_MAX:
            raise LobsterError(f"{where}: order id {order_id} is outside 0..{_UINT64_MAX}")
        ts_ns = _time_ns(row[0], where)
        side = _BUY if direction == 1 else _SELL
        if kind not in _APPLIED:  # skipped: their other fields are never used
            yield Message(line_no, ts_ns, kind, order_id, size, 0, side)
            continue
        if direction not in (1, -1):
            raise LobsterError(f"{where}: direction {direction} is neither 1 (buy) nor -1 (sell)")
        if not 1 <= size <= MAX_SIZE:
            raise LobsterError(f"{where}: size {size} is outside 1..{MAX_SIZE}")
        yield Message(line_no, ts_ns, kind, order_id, size, _ticks(raw_price, tick, where), side)


def iter_book_lines(path: StrPath, tick: int | None = None) -> Iterator[list[int]]:
    """The order-book file's lines as lists of ints, 4 a level (ask price, ask size, bid price, bid size, in
    LOBSTER units), streamed: what ``LobsterReplay.step`` takes. With ``tick``, prices are checked on the tick
    and within the replay's price domain as they are read."""
    return _iter_values(path, tick)


def read_messages(path: StrPath, tick: int = 100) -> list[Message]:
    return list(iter_messages(path, tick))


def _iter_values(path: StrPath, tick: int | None = None) -> Iterator[list[int]]:
    """The order-book file's lines as lists of ints (4 a level: ask price, ask size, bid price, bid size), each
    checked: a price is its side's empty placeholder or a positive int64 (with ``tick``: on the tick, within
    ``1..MAX_PRICE_TICKS`` ticks), a size is ``0..MAX_SIZE`` (at least 1 where a price is given)."""
    width = 0
    top = MAX_PRICE_TICKS * tick if tick else _INT64_MAX
    for line_no, line in _lines(path):
        where = f"{path}:{line_no}"
        cells = line.split(",")
        try:
            values = list(map(int, cells))
        except ValueError:  # say which column, and why
            for column, text in enumerate(cells, start=1):
                _field(text, f"column {column}", where)
            raise
        width = width or len(values)
        if len(values) % 4:
            raise LobsterError(f"{where}: {len(values)} columns, not 4 per level")
        if len(values) != width:
            raise LobsterError(f"{where}: {len(values)} columns, the first row has {width}")
        # A good row passes a few min/max scans; one that fails them is looked at cell by cell.
        sizes, asks, bids = values[1::2], values[0::4], values[2::4]
        if (min(sizes) < 1 or max(sizes) > MAX_SIZE or min(asks) < 1 or max(bids) > top
                or (max(asks) > top and any(p != EMPTY_ASK_PRICE and p > top for p in asks))
                or (min(bids) < 1 and any(p != EMPTY_BID_PRICE and p < 1 for p in bids))):  # fmt: skip
            _check_cells(values, top, where)
        if tick is not None and tick != 1:
            for i in range(0, len(values), 2):
                if values[i] % tick and values[i] != (EMPTY_ASK_PRICE if i % 4 == 0 else EMPTY_BID_PRICE):
                    _ticks(values[i], tick, f"{where} column {i + 1}")
        yield values


def _check_cells(values: list[int], top: int, where: str) -> None:
    """LobsterError naming the first cell of an order-book row outside its range (an empty slot's size may be
    0, as LOBSTER writes it)."""
    for i in range(0, len(values), 2):
        price, size = values[i], values[i + 1]
        side, empty = ("ask", EMPTY_ASK_PRICE) if i % 4 == 0 else ("bid", EMPTY_BID_PRICE)
        if price != empty and not 1 <= price <= top:
            raise LobsterError(f"{where} column {i + 1}: {side} price {price} is outside 1..{top} ({empty}: empty)")
        low = 0 if price == empty else 1
        if not low <= size <= MAX_SIZE:
            raise LobsterError(f"{where} column {i + 2}: {side} size {size} is outside {low}..{MAX_SIZE}")


def _side_levels(values: list[int], side: int, tick: int, where: str) -> tuple[tuple[int, int], ...]:
    offset, empty = _ROW_SLOT[side]
    return tuple(
        (_ticks(values[i], tick, where), values[i + 1]) for i in range(offset, len(values), 4) if values[i] != empty
    )


def _book_row(line_no: int, values: list[int], tick: int, where: str) -> BookRow:
    return BookRow(line_no, _side_levels(values, _SELL, tick, where), _side_levels(values, _BUY, tick, where))


def read_orderbook(path: StrPath, tick: int = 100) -> tuple[int, list[BookRow]]:
    """The number of levels a side the file has, and its rows."""
    rows, width = [], 0
    for line_no, values in enumerate(_iter_values(path, tick), start=1):
        width = width or len(values)
        rows.append(_book_row(line_no, values, tick, f"{path}:{line_no}"))
    return width // 4, rows


_SIDES = ((_BUY, "buy"), (_SELL, "sell"))


def _beyond(side: int, price: int, boundary: int) -> bool:
    """Strictly worse than ``boundary`` on ``side`` (lower for bids, higher for asks)."""
    return price < boundary if side == _BUY else price > boundary


@dataclass
class LobsterReport:
    """What a LOBSTER replay did and found; ``lines()`` is what the command prints."""

    symbol: str
    levels: int
    messages: int = 0
    #: messages applied, by LOBSTER type
    applied: dict[int, int] = field(default_factory=dict)
    #: messages skipped (hidden executions, cross trades, halts), by type
    skipped: dict[int, int] = field(default_factory=dict)
    seeded_levels: int = 0
    rows_compared: int = 0
    #: levels re-read from a row because they came back into view, or removed because they vanished unseen
    refreshes: int = 0
    #: ... of which the engine's quantity there differed from the row
    refreshes_changed: int = 0
    #: cancels/executions of an id the file never introduced (or whose level was refreshed), applied to seeds
    seed_applied: int = 0
    #: executions of an order that was not first in time priority at its price (applied to the order named)
    priority_deviations: int = 0
    #: messages that found no order to apply to, an IOC that did not trade exactly the order named, or a reject
    anomalies: list[str] = field(default_factory=list)
    #: own-events mode: executions where other clients' orders met the recorded flow before the recorded maker
    #: (which was then reduced by the rest)
    displaced: int = 0
    #: own-events mode: recorded new orders and seeds that traded with other clients' orders on arrival and were
    #: brought back to their recorded size
    crossed_others: int = 0
    mismatches: int = 0
    first_mismatches: list[str] = field(default_factory=list)

    def lines(self) -> list[str]:
        def counts(by_type: dict[int, int], types: tuple[int, ...]) -> str:
            return ", ".join(f"{by_type.get(t, 0)} {_TYPE_NAMES[t]}" for t in types)

        applied = counts(self.applied, (NEW, PARTIAL_CANCEL, DELETE, EXECUTE))
        skipped = counts(self.skipped, (EXECUTE_HIDDEN, CROSS, HALT))
        out = [
            f"lobster {self.symbol}: {self.messages} messages, {self.levels} levels a side; seeded {self.seeded_levels}"
            f" levels from row 1",
            f"applied messages 2..{self.messages}: {applied}; skipped: {skipped}",
            f"rows compared: {self.rows_compared}, refreshes: {self.refreshes} ({self.refreshes_changed} changed), "
            f"mismatches: {self.mismatches}",
            f"seed orders used for unknown ids: {self.seed_applied}, priority deviations: "
            f"{self.priority_deviations}, anomalies: {len(self.anomalies)}",
        ]
        if self.displaced or self.crossed_others:
            out.append(f"met other clients' orders: {self.displaced} executions displaced, {self.crossed_others} "
                       "new orders crossed them")  # fmt: skip
        out += [f"  anomaly: {a}" for a in self.anomalies[:5]]
        out += [f"  mismatch: {m}" for m in self.first_mismatches]
        return out


class LobsterReplay:
    """The engine book driven by LOBSTER messages: :meth:`seed`, then :meth:`step` per message and row.

    Rows are handled as the order-book file's lines of ints (4 a level: ask price, ask size, bid price, bid
    size, in LOBSTER units), parsed into a ``BookRow`` only where a refresh or a mismatch needs it.
    """

    def __init__(
        self,
        engine: LobsterEngine,
        symbol: str,
        levels: int,
        show: int = 5,
        tick: int = 100,
        *,
        clients: tuple[int, int, int] = (BOOK_CLIENT, SEED_CLIENT, TAKER_CLIENT),
        own: OwnOrders | None = None,
        own_events_only: bool = False,
    ) -> None:
        self.engine = engine
        #: the client ids of the file's orders, the seed orders and the executing IOCs (may be one id thrice)
        self.book_client, self.seed_client, self.taker_client = clients
        self._clients = frozenset(clients)
        #: the attached strategy's orders (None: no strategy)
        self.own = own
        #: the replay sees only its own clients' events (a link): module docstring, "Own events only"
        self.own_events_only = own_events_only
        self.symbol_id: int = engine.symbol_id(symbol)
        self.levels = levels
        self.show = show
        self.tick = tick
        self.report = LobsterReport(symbol, levels)
        #: engine order id -> [side, price, open qty], for every resting order (kept from the events)
        self.open: dict[int, list[int]] = {}
        #: (side, price) -> the level's resting orders in time priority (a dict as an ordered set)
        self.queues: dict[tuple[int, int], dict[int, None]] = {}
        #: side -> price -> the engine's level qty, from its BOOK_DELTA events (own-events mode: the replay's own
        #: orders' open qty there, from their events)
        self.book_qty: dict[int, dict[int, int]] = {_BUY: {}, _SELL: {}}
        #: side -> the engine's level prices as sort keys, best first (-price for bids, price for asks)
        self.book_keys: dict[int, list[int]] = {_BUY: [], _SELL: []}
        #: LOBSTER order id -> engine order id
        self.known: dict[int, int] = {}
        #: (side, price) -> engine order id of the level's seed order
        self.seeds: dict[tuple[int, int], int] = {}
        self.ts_ns = 0
        #: an order-book line with every slot empty, filled from the engine's l2 to compare with a row
        self._empty_line = [EMPTY_ASK_PRICE, 0, EMPTY_BID_PRICE, 0] * levels

    # --- commands -------------------------------------------------------------------------------------------

    def _execute(self, cmd: Command, what: str) -> list[Event]:
        events: list[Event] = self.engine.execute(cmd)
        self.observe(events, what)
        return events

    def observe(self, events: list[Event], what: str = "") -> None:
        """Keeps the replay's view of the engine (levels, resting orders) from ``events``: those of its own
        commands, and those of an attached strategy's commands, which the caller runs on the same engine (or,
        over a link, its own account's events that other clients' commands caused: fills of its orders)."""
        if self.own_events_only:
            self._observe_own(events, what)
            return
        for e in events:
            t = e.type
            if t == _BOOK_DELTA:
                self._level_changed(e.side, e.price, e.qty)
            elif t == _ACK:
                if e.code == _OP_NEW:
                    self.open[e.order_id] = [e.side, e.price, e.aux]
            elif t == _FILL or t == _CANCELED or t == _MODIFIED:
                entry = self.open.get(e.order_id)
                if entry is not None:
                    entry[2] = e.aux  # leaves
                    if e.aux == 0:
                        self._forget(e.order_id, entry)
            elif t == _REJECT and what:
                self._anomaly(f"{what}: the engine rejected it ({Event.to_dict(e).get('reason')})")

    def _observe_own(self, events: list[Event], what: str) -> None:
        """``observe`` in own-events mode: only the replay's clients' order events count (market data and other
        clients' events, which an in-process engine also returns, are passed over as a link never shows them),
        and each change of an order's open quantity moves its level's."""
        clients = self._clients
        for e in events:
            t = e.type
            if t == _BOOK_DELTA or t == _TRADE or e.client_id not in clients:
                continue
            if t == _ACK:
                if e.code == _OP_NEW:
                    self.open[e.order_id] = [e.side, e.price, e.aux]
                    self._level_add(e.side, e.price, e.aux)
            elif t == _FILL or t == _CANCELED or t == _MODIFIED:
                entry = self.open.get(e.order_id)
                if entry is not None:
                    self._level_add(entry[0], entry[1], e.aux - entry[2])
                    entry[2] = e.aux  # leaves
                    if e.aux == 0:
                        self._forget(e.order_id, entry)
            elif t == _REJECT and what:
                self._anomaly(f"{what}: the engine rejected it ({Event.to_dict(e).get('reason')})")

    def _forget(self, order_id: int, entry: list[int]) -> None:
        """An order no longer open: out of ``open`` and of its level's queue (``entry``: side, price, leaves)."""
        del self.open[order_id]
        key = (entry[0], entry[1])
        queue = self.queues.get(key)
        if queue is not None:
            queue.pop(order_id, None)
            if not queue:
                del self.queues[key]

    def _level_add(self, side: int, price: int, delta: int) -> None:
        if delta:
            self._level_changed(side, price, self.book_qty[side].get(price, 0) + delta)

    def _level_changed(self, side: int, price: int, qty: int) -> None:
        set_level(self.book_qty[side], self.book_keys[side], price, qty, -price if side == _BUY else price)

    def _new(self, client: int, side: int, price: int, qty: int, tif: int, what: str) -> int:
        order_id = self._place(client, side, price, qty, tif, what)
        if order_id and tif == _GTC and self.own_events_only:
            order_id = self._restore(client, side, price, qty, order_id, what)
        if order_id and tif == _GTC and order_id in self.open:
            self.queues.setdefault((side, price), {})[order_id] = None
        return order_id

    def _place(self, client: int, side: int, price: int, qty: int, tif: int, what: str) -> int:
        """One new order; its engine order id (0 if rejected)."""
        cmd = Command.new(client, self.symbol_id, side, qty, price, tif=tif, stp=Stp.NONE, ts_ns=self.ts_ns)
        for e in self._execute(cmd, what):
            if e.type == _ACK and e.code == _OP_NEW:
                return e.order_id
        return 0

    def _restore(self, client: int, side: int, price: int, qty: int, order_id: int, what: str) -> int:
        """Own-events mode: a new GTC order that traded with other clients' orders on arrival rests with its
        recorded ``qty`` again: modified up if part of it rests (it is the newest at its level, so it keeps its
        place in all but name), placed again while nothing of it does. Returns the order id that rests."""
        entry = self.open.get(order_id)
        if entry is not None and entry[2] == qty:
            return order_id  # the usual case: it rests whole
        self.report.crossed_others += 1
        for _ in range(MAX_REPLACE):
            if entry is not None:
                self._execute(Command.modify(client, order_id, qty=qty, ts_ns=self.ts_ns), what)
                return order_id
            order_id = self._place(client, side, price, qty, _GTC, what)
            if not order_id:
                return 0
            entry = self.open.get(order_id)
            if entry is not None and entry[2] == qty:
                return order_id
        self._anomaly(f"{what}: other clients' orders still cross it after {MAX_REPLACE} placements")
        return order_id if entry is not None else 0

    def _reduce(self, order_id: int, by: int, what: str) -> None:
        """Take ``by`` off a resting order's open qty: modify down, or cancel when nothing would be left."""
        side, price, open_qty = self.open[order_id]
        client = self.seed_client if self.seeds.get((side, price)) == order_id else self.book_client
        if by > open_qty:
            self._anomaly(f"{what}: takes {by} off order {order_id} which has {open_qty}")
        if by >= open_qty:
            self._execute(Command.cancel(client, order_id, ts_ns=self.ts_ns), what)
        else:
            self._execute(Command.modify(client, order_id, qty=open_qty - by, ts_ns=self.ts_ns), what)

    def _anomaly(self, text: str) -> None:
        self.report.anomalies.append(text)

    # --- seeding and messages -------------------------------------------------------------------------------

    def seed(self, row: BookRow, ts_ns: int) -> None:
        """One seed order per level of ``row``."""
        self.ts_ns = ts_ns
        for side, name in _SIDES:
            for price, size in getattr(row, name):
                self._seed_level(side, price, size, f"seed {name} {price}")
                self.report.seeded_levels += 1

    def seed_line(self, values: list[int], ts_ns: int) -> None:
        """:meth:`seed` from an order-book line as ``iter_book_lines`` gives it."""
        self.seed(_book_row(1, values, self.tick, "row 1"), ts_ns)

    def _seed_level(self, side: int, price: int, size: int, what: str) -> None:
        order_id = self._new(self.seed_client, side, price, size, _GTC, what)
        if order_id:
            self.seeds[(side, price)] = order_id

    def _target(self, msg: Message) -> int | None:
        """The engine order a cancel or execution is about: the known order, else the level's seed order."""
        order_id = self.known.get(msg.order_id)
        if order_id is not None:
            entry = self.open.get(order_id)
            if entry is not None and entry[0] == msg.side and entry[1] == msg.price:
                return order_id
        seed = self.seeds.get((msg.side, msg.price))
        if seed is not None and seed in self.open:
            self.report.seed_applied += 1
            return seed
        return None

    def apply(self, msg: Message) -> None:
        self.ts_ns = msg.ts_ns
        kind = msg.type
        if kind not in _APPLIED:
            self.report.skipped[kind] = self.report.skipped.get(kind, 0) + 1
            return
        self.report.applied[kind] = self.report.applied.get(kind, 0) + 1
        what = f"message line {msg.line_no} ({_TYPE_NAMES[kind]} of order {msg.order_id})"  # only read on anomalies
        if kind == NEW:
            extra = self.own.crossing(msg.side, msg.price) if self.own is not None else 0
            order_id = self._new(self.book_client, msg.side, msg.price, msg.size + extra, _GTC, what)
            if order_id:
                self.known[msg.order_id] = order_id
            return
        target = self._target(msg)
        if kind == EXECUTE:
            queue = self.queues.get((msg.side, msg.price))
            if target is not None and queue is not None and next(iter(queue)) != target:
                # The exchange filled an order behind another at its price: the file says which, so that one.
                self.report.priority_deviations += 1
                self._reduce(target, msg.size, what)
                return
            self._execute_ioc(msg, target, what)
            return
        if target is None:
            self._anomaly(f"{what}: no order rests at {msg.price} on that side")
            return
        if kind == PARTIAL_CANCEL:
            self._reduce(target, msg.size, what)
        else:  # DELETE: all of a known order; the deleted size out of a seed order (it stands for several)
            open_qty = self.open[target][2]
            if self.seeds.get((msg.side, msg.price)) == target:
                self._reduce(target, msg.size, what)
            else:
                if msg.size != open_qty:
                    self._anomaly(f"{what}: deletes {msg.size}, the order has {open_qty} open")
                self._reduce(target, open_qty, what)

    def _execute_ioc(self, msg: Message, target: int | None, what: str) -> None:
        """A visible execution through the engine's matching: an IOC of the taker client at the maker's price,
        enlarged by an attached strategy's quantity ahead of the maker (see ``OwnOrders``)."""
        taker_side = _SELL if msg.side == _BUY else _BUY
        if self.own_events_only:
            self._execute_ioc_own(msg, target, taker_side, what)
            return
        own = self.own
        extra = own.ahead_of(msg.side, msg.price, target) if own is not None and target is not None else 0
        cmd = Command.new(self.taker_client, self.symbol_id, taker_side, msg.size + extra, msg.price, tif=Tif.IOC,
                          stp=Stp.NONE, ts_ns=self.ts_ns)  # fmt: skip
        trades = [e for e in self._execute(cmd, what) if e.type == _TRADE]
        if own is not None:
            trades = [e for e in trades if not own.owns(e.aux)]  # the strategy's fills are not the file's
        makers = {e.aux for e in trades}  # maker_order_id
        traded = sum(e.qty for e in trades)
        if target is None or makers != {target} or traded != msg.size:
            self._anomaly(f"{what}: traded {traded} with orders {sorted(makers)}, expected {msg.size} with {target}")

    def _execute_ioc_own(self, msg: Message, target: int | None, taker_side: int, what: str) -> None:
        """Own-events mode: the IOC for the recorded size, capped at the named order's open quantity (none when
        nothing of it is left); its maker FILLs say what the recorded maker traded, and whatever other clients'
        orders took first comes off the maker afterwards (module docstring, "Own events only")."""
        if target is None:  # nothing of it is left (nor a seed order there): it trades nothing
            self._anomaly(f"{what}: no order rests at {msg.price} on that side")
            return
        have = self.open[target][2]
        size = min(msg.size, have)
        if msg.size > have:
            self._anomaly(f"{what}: executes {msg.size} of order {target} which has {have} open")
        cmd = Command.new(self.taker_client, self.symbol_id, taker_side, size, msg.price, tif=Tif.IOC, stp=Stp.NONE,
                          ts_ns=self.ts_ns)  # fmt: skip
        clients = self._clients
        makers: set[int] = set()
        traded = 0
        for e in self._execute(cmd, what):
            if e.type == _FILL and e.code == _MAKER and e.client_id in clients:
                makers.add(e.order_id)
                traded += e.qty
        if not makers <= {target}:
            self._anomaly(f"{what}: traded {traded} with orders {sorted(makers)}, expected {msg.size} with {target}")
            return
        if traded < size:  # other clients' orders came first: the recorded maker still loses what the file says
            self.report.displaced += 1
            if target in self.open:
                self._reduce(target, size - traded, what)

    # --- refresh and compare --------------------------------------------------------------------------------

    def refresh(self, previous: list[int], values: list[int], line_no: int) -> None:
        """Re-read from the row ``values`` the levels that came back into view since the row ``previous``.

        Every level strictly beyond the previous row's Nth level and within this row's N levels is rebuilt as one
        seed order of the row's size, whatever the engine has there; an engine level in that range that the row
        lacks is removed. Nothing else is touched.
        """
        last = 4 * self.levels - 4
        tick = self.tick
        for side, name in _SIDES:
            offset, empty = _ROW_SLOT[side]
            if previous[last + offset] == empty:
                continue  # the previous row had fewer than N levels: the whole side was in view
            boundary = previous[last + offset] // tick  # checked on the tick when that row was compared
            worst_raw = values[last + offset]
            worst = None if worst_raw == empty else worst_raw // tick
            if worst is not None and not _beyond(side, worst, boundary):
                continue  # this row's levels all lie within the previous row's: nothing came into view
            where = f"row {line_no}"
            now = _side_levels(values, side, tick, where)
            # The engine levels beyond the boundary and within this row's view, before any is rebuilt.
            keys = self.book_keys[side]
            lo = bisect_right(keys, -boundary if side == _BUY else boundary)
            if worst is None:
                hi = len(keys)
            else:
                hi = bisect_right(keys, -worst if side == _BUY else worst)
            row_prices = {price for price, _ in now}
            gone = [abs(k) for k in keys[lo:hi] if abs(k) not in row_prices]
            for price, size in now:
                if _beyond(side, price, boundary):
                    self.report.refreshes += 1
                    if self.book_qty[side].get(price) != size:
                        self.report.refreshes_changed += 1
                    self._set_level(side, price, size, f"{where}: refresh {name} {price}")
            for price in gone:
                self.report.refreshes += 1
                self.report.refreshes_changed += 1
                self._set_level(side, price, 0, f"{where}: remove {name} {price}")

    def _set_level(self, side: int, price: int, size: int, what: str) -> None:
        """Make the level at ``price`` exactly one seed order of ``size`` (nothing when 0)."""
        seed = self.seeds.pop((side, price), None)
        for order_id in list(self.queues.get((side, price), ())):
            client = self.seed_client if order_id == seed else self.book_client
            self._execute(Command.cancel(client, order_id, ts_ns=self.ts_ns), what)
        if size:
            self._seed_level(side, price, size, what)

    def compare(self, values: list[int], line_no: int) -> bool:
        """Does the engine's top of book (``l2`` to depth N) equal the row ``values``? Records a mismatch if not."""
        self.report.rows_compared += 1
        tick = self.tick
        own = self.own
        if self.own_events_only:  # the replay's own levels: the engine's book without anyone else's orders
            line = self._empty_line.copy()
            qty = self.book_qty[_SELL]
            i = 0
            for price in self.book_keys[_SELL][: self.levels]:  # asks: the key is the price
                line[i] = price * tick
                line[i + 1] = qty[price]
                i += 4
            qty = self.book_qty[_BUY]
            i = 2
            for key in self.book_keys[_BUY][: self.levels]:  # bids: the key is -price
                line[i] = -key * tick
                line[i + 1] = qty[-key]
                i += 4
            if line == values:
                return True
            l2 = {name: [Level(abs(k), self.book_qty[side][abs(k)], 0) for k in self.book_keys[side][: self.levels]]
                  for side, name in ((_BUY, "bids"), (_SELL, "asks"))}  # fmt: skip
        elif own is None:
            l2 = self.engine.l2(self.symbol_id, self.levels)
        else:  # the engine's levels without the strategy's quantity: read deeper, drop what is only its own
            l2 = self.engine.l2(self.symbol_id, self.levels + 8)
            for side, name in ((_BUY, "bids"), (_SELL, "asks")):
                levels = [lv._replace(qty=lv.qty - own.qty_at(side, lv.price)) for lv in l2[name]]
                l2[name] = [lv for lv in levels if lv.qty > 0][: self.levels]
        line = self._empty_line.copy()
        i = 0
        for level in l2["asks"]:
            line[i] = level.price * tick
            line[i + 1] = level.qty
            i += 4
        i = 2
        for level in l2["bids"]:
            line[i] = level.price * tick
            line[i + 1] = level.qty
            i += 4
        if line == values:
            return True
        # Not the same ints: compare level by level (empty slots written another way are no mismatch).
        row = _book_row(line_no, values, tick, f"row {line_no}")
        book = {"buy": [(lv.price, lv.qty) for lv in l2["bids"]], "sell": [(lv.price, lv.qty) for lv in l2["asks"]]}
        diffs = [
            f"{name}: engine {book[name]} != row {list(getattr(row, name))}"
            for _, name in _SIDES
            if book[name] != list(getattr(row, name))
        ]
        if diffs:
            self.report.mismatches += 1
            if len(self.report.first_mismatches) < self.show:
                self.report.first_mismatches.append(f"row {line_no}: " + "; ".join(diffs))
        return not diffs

    def step(self, msg: Message, previous: list[int], values: list[int]) -> bool:
        """Apply ``msg``, refresh from its row ``values`` (``previous`` is the row before) and compare."""
        self.apply(msg)
        self.refresh(previous, values, msg.line_no)
        return self.compare(values, msg.line_no)


def symbol_config(name: str, tick: int) -> SymbolConfig:
    """The engine symbol of a LOBSTER stock: tick ``tick`` / 10000 dollars, lot 1 share, no band."""
    return SymbolConfig(name=name, tick_size=tick / 10000, lot_size=1, min_price_ticks=1,
                        max_price_ticks=10_000_000, max_order_lots=1_000_000_000)  # fmt: skip


def replay_lobster(
    message_path: StrPath,
    orderbook_path: StrPath,
    tick: int = 100,
    factory: Callable[..., _ReplayEngine] | None = None,
    show: int = 5,
) -> LobsterReport:
    """Replay a LOBSTER message file and compare every order-book row; see the module docstring.

    Both files (plain or gzip) are streamed side by side: one message and its row at a time.
    """
    if tick <= 0:
        raise LobsterError(f"tick {tick} must be positive")
    symbol = Path(message_path).name.split("_")[0] or "LOBSTER"
    messages = iter_messages(message_path, tick)
    rows = _iter_values(orderbook_path, tick)
    first, first_values = next(messages, None), next(rows, None)
    if first is None or first_values is None:
        raise LobsterError(f"{message_path if first is None else orderbook_path} is empty")
    if factory is None:
        from .replay import engine_class

        factory = engine_class("c")
    engine = factory(EngineConfig())
    engine.add_symbol(symbol_config(symbol, tick))
    replay = LobsterReplay(engine, symbol, len(first_values) // 4, show, tick)
    replay.seed(_book_row(1, first_values, tick, f"{orderbook_path}:1"), first.ts_ns)
    previous, count = first_values, 1
    for msg in messages:
        values = next(rows, None)
        if values is None:
            more = 1 + sum(1 for _ in messages)
            raise LobsterError(f"{message_path} has {count + more} messages but {orderbook_path} {count} rows")
        count += 1
        replay.step(msg, previous, values)
        previous = values
    more = sum(1 for _ in rows)
    if more:
        raise LobsterError(f"{message_path} has {count} messages but {orderbook_path} {count + more} rows")
    replay.report.messages = count
    return replay.report


def run(args: argparse.Namespace) -> int:
    """The ``engine lobster`` subcommand; returns the exit code (1 on any mismatch)."""
    from .replay import engine_class

    if not 1 <= args.tick <= MAX_TICK:  # the replay's symbol has tick / 10000 dollars: a float of it must exist
        print(f"--tick {args.tick}: a tick is 1..{MAX_TICK} LOBSTER price units (dollars x 10000)", file=sys.stderr)
        return 2
    try:
        report = replay_lobster(args.message, args.orderbook, args.tick, engine_class(args.engine), args.show)
    except (LobsterError, OSError) as exc:
        print(exc if isinstance(exc, LobsterError) else f"{exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    return 1 if report.mismatches else 0
