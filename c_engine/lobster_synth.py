"""A synthetic LOBSTER day from the project's own seeded order flow, so the LOBSTER replay runs without data.

::

    from c_engine.lobster_synth import write_synthetic_day

    messages, orderbook = write_synthetic_day("out", seed=1, events=2000)                 # every message
    messages, orderbook = write_synthetic_day("out10", seed=1, events=2000, filtered=True)  # as LOBSTER ships it

``SyntheticFlow`` (``flow.py``) drives one ``Engine``; the engine's events become LOBSTER messages and the
book after each message becomes an order-book row. ``proptrade engine lobster`` (``lobster.py``) must then
reproduce every row.

- **Messages.** Each maker fill of a new order is a visible execution (type 4, the *maker's* direction, at
  the maker's price: LOBSTER names the executed resting order), then what rests of the order is a new limit
  order (type 1) under its engine id, for the rested size. A user cancel is a delete (type 3) of the order's
  open size. A share of the flow's cancels become modifies down (same price, smaller size: the order keeps its
  place), written as partial cancels (type 2) of the size taken off, because the flow itself never modifies.
  IOC and market remainders, rejects and cancels of orders already gone leave no message, as on an exchange
  feed. Direction is 1 for a buy order, -1 for a sell order.
- **Times.** The flow's command times, from 09:30:00 (34200 s after midnight) in steps of ``STEP_NS``; all
  messages of one command share its time. Written as seconds with 9 decimals.
- **Rows.** A command's messages are applied one by one to a book kept here, since the engine's ``l2`` is
  only readable between commands; after every command that book must equal the engine's ``l2`` in full
  depth, else ``SyntheticDayError``. Row i is the top ``levels`` a side after message i, in LOBSTER's
  layout (empty slots ``9999999999,0`` and ``-9999999999,0``).
- **Two forms.** The *full* form has every message. The *filtered* form (``filtered=True``) keeps only the
  messages that touch the visible levels, as a real N-level LOBSTER file does: a message is kept when its
  price is within the top ``levels`` of its side before or after it (a side with fewer levels is all in
  view). Levels below the view then change unseen, and the replay must re-read them when they come back into
  view (its refresh rule).
- **Start.** ``warmup`` commands run before the first recorded message, so the day opens on a book (deeper
  than the view) whose orders the file never introduced; 0 opens it on an empty book. The replay seeds only
  the first row's levels, so a warmed-up *full* day has cancels below the view of orders it cannot find
  (reported as anomalies, not mismatches); a filtered day never shows them.

The same arguments give the same files byte for byte.
"""

from __future__ import annotations

from collections.abc import Iterable
from os import PathLike
from pathlib import Path
from typing import NamedTuple

import numpy as np
import numpy.typing as npt

from ._config import EngineConfig
from ._wire import COMMAND_DTYPE, EventType, Flag, Liquidity, Op, Side
from .flow import SyntheticFlow
from .lobster import DELETE, EMPTY_ASK_PRICE, EMPTY_BID_PRICE, EXECUTE, NEW, PARTIAL_CANCEL, symbol_config

__all__ = [
    "OPEN_NS",
    "STEP_NS",
    "BookLevels",
    "LobsterMessage",
    "SyntheticDay",
    "SyntheticDayError",
    "lobster_file_names",
    "synthetic_day",
    "top_levels",
    "visible_only",
    "write_lobster_day",
    "write_synthetic_day",
]

StrPath = str | PathLike[str]

#: the first command's time: 09:30:00, the regular session's open, in ns after midnight
OPEN_NS = 34_200 * 1_000_000_000
#: time between two commands; not a round number, so every one of the 9 decimals is exercised
STEP_NS = 1_234_567
#: commands drawn from the flow at a time (its draws depend on this, so it is fixed)
_BATCH = 64
#: a second seed word for the generator of the partial cancels: the flow's own generator stays untouched
_PARTIAL_STREAM = 0x10B5


class SyntheticDayError(RuntimeError):
    """The messages generated so far no longer rebuild the engine's book (a translation bug)."""


#: one side of a book, best first: ``(price ticks, size)`` per level
BookLevels = tuple[tuple[int, int], ...]


class LobsterMessage(NamedTuple):
    """One message-file row; ``price`` in ticks, ``direction`` 1 (buy order) or -1 (sell order)."""

    ts_ns: int
    type: int
    order_id: int
    size: int
    price: int
    direction: int


class SyntheticDay(NamedTuple):
    """Messages and, for each, the whole book after it (every level, not only the visible ones)."""

    messages: list[LobsterMessage]
    #: ``(asks, bids)`` after each message
    books: list[tuple[BookLevels, BookLevels]]
    #: ``(asks, bids)`` before the first message (empty unless there was a warm-up)
    start: tuple[BookLevels, BookLevels]


# --- running the flow ---------------------------------------------------------------------------------------


class _Recorder:
    """The engine on the flow, and the LOBSTER messages its events make."""

    def __init__(self, seed: int, p_partial: float) -> None:
        from ._engine import Engine  # needs the compiled extension: imported only when a day is made

        self.engine = Engine(EngineConfig())
        self.symbol_id: int = self.engine.add_symbol(symbol_config("SYNTH", 100))
        self.flow = SyntheticFlow(self.symbol_id, seed=seed)
        self.rng = np.random.default_rng([seed, _PARTIAL_STREAM])
        self.p_partial = p_partial
        #: engine order id -> [side, price, open qty] of every resting order
        self.open: dict[int, list[int]] = {}
        #: price -> size per side, kept by applying each message
        self.book: dict[int, dict[int, int]] = {Side.BUY: {}, Side.SELL: {}}
        self.messages: list[LobsterMessage] = []
        self.books: list[tuple[BookLevels, BookLevels]] = []
        self.ts_ns = OPEN_NS

    def warm_up(self, commands: int) -> None:
        """Runs ``commands`` commands of the flow without recording their messages."""
        while commands > 0:
            batch = self.flow.next_batch(min(_BATCH, commands), self.ts_ns, STEP_NS)
            self.ts_ns += len(batch) * STEP_NS
            commands -= len(batch)
            for row in batch:
                self.step(row, record=False)

    def record_until(self, events: int) -> None:
        """Runs the flow until ``events`` messages are recorded (the last command's extra ones are kept)."""
        while len(self.messages) < events:
            batch = self.flow.next_batch(_BATCH, self.ts_ns, STEP_NS)
            self.ts_ns += len(batch) * STEP_NS
            for row in batch:
                self.step(row, record=True)
                if len(self.messages) >= events:
                    return

    def step(self, row: np.void, record: bool) -> None:
        command = self._maybe_partial(row)
        events = self.engine.execute_batch(command)
        self.flow.observe(events)
        for message in self._translate(int(command["ts_ns"][0]), events):
            self._apply(message, record)
        self._check_book()

    def _maybe_partial(self, row: np.void) -> npt.NDArray[np.void]:
        """The flow's command as a one-row array; some cancels of a resting order become a modify down."""
        command = np.array([row], dtype=COMMAND_DTYPE)
        if row["op"] != Op.CANCEL:
            return command
        resting = self.open.get(int(row["order_id"]))
        # Draw for every cancel, resting target or not, so the stream does not depend on the book.
        draw, size_draw = float(self.rng.random()), float(self.rng.random())
        if resting is None or resting[2] < 2 or draw >= self.p_partial:
            return command
        command["op"] = Op.MODIFY
        command["flags"] = Flag.HAS_QTY
        command["qty"] = 1 + int(size_draw * (resting[2] - 1))  # 1 .. open - 1
        return command

    # --- events to messages ---------------------------------------------------------------------------------

    def _translate(self, ts_ns: int, events: npt.NDArray[np.void]) -> list[LobsterMessage]:
        out: list[LobsterMessage] = []
        taker: list[int] | None = None  # [order id, side, price, open qty] of a new order, while it may rest
        for e in events:
            t, order_id = int(e["type"]), int(e["order_id"])
            if t == EventType.ACK and e["acked_op"] == Op.NEW:
                taker = [order_id, int(e["side"]), int(e["price"]), int(e["qty"])]
            elif t == EventType.FILL and e["liquidity"] == Liquidity.MAKER:
                out.append(self._message(ts_ns, EXECUTE, order_id, int(e["qty"])))
            elif t == EventType.FILL and taker is not None:
                taker[3] = int(e["leaves"])
            elif t == EventType.CANCELED and order_id in self.open:
                kind = DELETE if e["leaves"] == 0 else PARTIAL_CANCEL
                out.append(self._message(ts_ns, kind, order_id, int(e["qty"])))
            elif t == EventType.CANCELED:
                taker = None  # an IOC or market remainder: it never rested
            elif t == EventType.MODIFIED:
                out.append(self._modified(ts_ns, order_id, int(e["price"]), int(e["qty"])))
        if taker is not None and taker[3] > 0:
            order_id, side, price, qty = taker
            self.open[order_id] = [side, price, qty]
            out.append(LobsterMessage(ts_ns, NEW, order_id, qty, price, _direction(side)))
        return out

    def _message(self, ts_ns: int, kind: int, order_id: int, size: int) -> LobsterMessage:
        """A message about a resting order, which it takes ``size`` off."""
        side, price, open_qty = self.open[order_id]
        if open_qty > size:
            self.open[order_id][2] = open_qty - size
        else:
            del self.open[order_id]
        return LobsterMessage(ts_ns, kind, order_id, size, price, _direction(side))

    def _modified(self, ts_ns: int, order_id: int, price: int, qty: int) -> LobsterMessage:
        _, old_price, open_qty = self.open[order_id]
        if price != old_price or not 0 < qty < open_qty:
            raise SyntheticDayError(f"order {order_id}: modify to {qty} at {price} is not a partial cancel")
        return self._message(ts_ns, PARTIAL_CANCEL, order_id, open_qty - qty)

    # --- the book after each message ------------------------------------------------------------------------

    def _apply(self, message: LobsterMessage, record: bool) -> None:
        side = self.book[Side.BUY if message.direction == 1 else Side.SELL]
        size = side.get(message.price, 0) + (message.size if message.type == NEW else -message.size)
        if size < 0:
            raise SyntheticDayError(f"{message}: the level at {message.price} would go below 0")
        if size:
            side[message.price] = size
        else:
            side.pop(message.price, None)
        if record:
            self.messages.append(message)
            self.books.append(self.snapshot())

    def snapshot(self) -> tuple[BookLevels, BookLevels]:
        asks = tuple(sorted(self.book[Side.SELL].items()))
        bids = tuple(sorted(self.book[Side.BUY].items(), reverse=True))
        return asks, bids

    def _check_book(self) -> None:
        asks, bids = self.snapshot()
        l2 = self.engine.l2(self.symbol_id, max(len(asks), len(bids)) + 1)  # + 1: an extra engine level shows
        engine = tuple((lvl.price, lvl.qty) for lvl in l2["asks"]), tuple((lvl.price, lvl.qty) for lvl in l2["bids"])
        if engine != (asks, bids):
            raise SyntheticDayError(f"after message {len(self.messages)}: messages give {(asks, bids)}, "
                                    f"the engine {engine}")  # fmt: skip


def _direction(side: int) -> int:
    return 1 if side == Side.BUY else -1


def synthetic_day(*, seed: int, events: int, warmup: int = 0, p_partial: float = 0.3) -> SyntheticDay:
    """``events`` messages (every one, unfiltered) of the flow seeded with ``seed``, after ``warmup`` commands.

    ``p_partial``: the share of the flow's cancels of a resting order (of 2 lots or more) that become a
    partial cancel.
    """
    if events < 1 or warmup < 0:
        raise ValueError(f"events must be >= 1 and warmup >= 0, not {events} and {warmup}")
    recorder = _Recorder(seed, p_partial)
    recorder.warm_up(warmup)
    start = recorder.snapshot()
    recorder.record_until(events)
    return SyntheticDay(recorder.messages[:events], recorder.books[:events], start)


# --- the N-level view ---------------------------------------------------------------------------------------


def _in_view(levels: BookLevels, price: int, direction: int, depth: int) -> bool:
    """Is ``price`` within the top ``depth`` levels of a side (all of a side with fewer levels is in view)?"""
    if len(levels) < depth:
        return True
    worst = levels[depth - 1][0]
    return price >= worst if direction == 1 else price <= worst


def visible_only(day: SyntheticDay, levels: int) -> SyntheticDay:
    """The messages of ``day`` that touch its top ``levels`` a side, with their books: a real N-level file."""
    messages, books = [], []
    before = day.start
    for message, after in zip(day.messages, day.books, strict=True):
        side = 1 if message.direction == 1 else 0  # (asks, bids): bids for a buy order
        if any(_in_view(book[side], message.price, message.direction, levels) for book in (before, after)):
            messages.append(message)
            books.append(after)
        before = after
    return SyntheticDay(messages, books, day.start)


# --- files --------------------------------------------------------------------------------------------------


def lobster_file_names(symbol: str, levels: int) -> tuple[str, str]:
    """LOBSTER's names for a day's two files (TICKER_DATE_START_END_message_N.csv; the date is a placeholder)."""
    stem = f"{symbol}_2012-06-21_34200000_57600000"
    return f"{stem}_message_{levels}.csv", f"{stem}_orderbook_{levels}.csv"


def _time(ts_ns: int) -> str:
    seconds, nanos = divmod(ts_ns, 1_000_000_000)
    return f"{seconds}.{nanos:09d}"


def _message_line(message: LobsterMessage, tick: int) -> str:
    m = message
    return f"{_time(m.ts_ns)},{m.type},{m.order_id},{m.size},{m.price * tick},{m.direction}"


def _book_line(asks: BookLevels, bids: BookLevels, levels: int, tick: int) -> str:
    cells: list[int] = []
    for i in range(levels):
        cells += (asks[i][0] * tick, asks[i][1]) if i < len(asks) else (EMPTY_ASK_PRICE, 0)
        cells += (bids[i][0] * tick, bids[i][1]) if i < len(bids) else (EMPTY_BID_PRICE, 0)
    return ",".join(map(str, cells))


def _write_lines(path: Path, lines: Iterable[str]) -> None:
    with open(path, "w", newline="") as f:
        f.writelines(line + "\n" for line in lines)


def write_lobster_day(
    day: SyntheticDay, directory: StrPath, *, levels: int = 10, tick: int = 100, symbol: str = "SYNTH"
) -> tuple[Path, Path]:
    """Writes ``day`` as a LOBSTER message file and ``levels``-level order-book file; returns their paths.

    ``tick``: LOBSTER price units (dollars x 10000) per engine tick, as ``proptrade engine lobster --tick``.
    """
    folder = Path(directory)
    folder.mkdir(parents=True, exist_ok=True)
    message_name, book_name = lobster_file_names(symbol, levels)
    message_path, book_path = folder / message_name, folder / book_name
    _write_lines(message_path, (_message_line(m, tick) for m in day.messages))
    _write_lines(book_path, (_book_line(asks, bids, levels, tick) for asks, bids in day.books))
    return message_path, book_path


def write_synthetic_day(
    directory: StrPath,
    *,
    seed: int,
    events: int,
    levels: int = 10,
    filtered: bool = False,
    warmup: int = 0,
    tick: int = 100,
    symbol: str = "SYNTH",
) -> tuple[Path, Path]:
    """A synthetic LOBSTER day in ``directory``: ``(message_path, orderbook_path)``.

    ``events`` messages are generated; with ``filtered`` only those touching the top ``levels`` are written
    (fewer rows), as in a real ``levels``-level LOBSTER file. See the module docstring.
    """
    day = synthetic_day(seed=seed, events=events, warmup=warmup)
    if filtered:
        day = visible_only(day, levels)
    return write_lobster_day(day, directory, levels=levels, tick=tick, symbol=symbol)


def top_levels(day: SyntheticDay, levels: int) -> list[tuple[BookLevels, BookLevels]]:
    """Each row of ``day`` as the order-book file holds it: the top ``levels`` a side."""
    return [(asks[:levels], bids[:levels]) for asks, bids in day.books]
