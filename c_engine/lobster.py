"""``proptrade engine lobster``: replay a LOBSTER day through the engine's own matching and check every book row.

::

    proptrade engine lobster MESSAGE.csv ORDERBOOK.csv [--tick 100] [--show 5] [--engine c|reference]

LOBSTER (lobsterdata.com) gives, for one stock and day, a message file (time, type, order id, size, price in
dollars x 10000, direction) and an order-book file whose row i is the top N levels a side *after* message i.
This module rebuilds the book in the engine from the messages and compares the engine's ``l2`` with every row.

Choices, in the order they bite:

- **Units.** One tick is ``--tick`` LOBSTER price units (default 100 = $0.01, the AAPL tick): prices are divided
  exactly, and a price that is not a multiple of the tick is an error, never rounded. One lot is one share.
  Times (seconds after midnight with up to 9 decimals) become integer nanoseconds, exactly.
- **Seeding.** The book is not empty when the file starts. It is seeded from row 1 (the book after message 1):
  one *seed order* per level, from client 2, with the level's size. Message 1 is therefore not applied (its
  effect is in row 1); messages 2..N are, and rows 2..N are compared.
- **Orders.** Client 1 owns the orders of the file, client 2 the seed orders, client 3 the takers; all use
  STP NONE. A new limit order (type 1) is a new GTC limit order. A partial cancel (type 2) is a modify down to
  the new open qty (a cancel if that is 0). A delete (type 3) is a cancel. A visible execution (type 4, its
  direction the resting order's side) is a marketable IOC limit order of client 3 at the resting order's
  price, on the other side, for the executed size: the engine's own matching finds the maker, and the replay
  checks it was the order LOBSTER named (otherwise it counts a *priority deviation*). Hidden executions (5),
  cross trades (6) and halts (7) do not touch the visible book and are skipped (counted).
- **Unknown orders.** An order id the file never introduced rested before the sample began, so it is inside a
  seed order: a cancel, partial cancel or execution of an unknown id at a price applies to the seed order of
  that level (a delete reduces it by the size deleted). The same holds for a known order that is no longer in
  the engine because its level was refreshed (below).
- **Refreshes.** An N-level message file carries only the events inside the visible N levels, so a level
  pushed below level N changes unseen. After each message, a level is re-read from the row when it *came back
  into view*: its price was beyond the Nth level of the previous row (strictly worse than that row's worst
  price, on a side whose previous row had all N levels; a side with fewer levels was entirely in view) and it is
  within the N levels of the current row. Each such level is a refresh, counted and reported; when the engine's
  quantity there differs, the level is rebuilt as one seed order with the row's size (the engine orders there
  are cancelled). An engine level in that same region that the row does not have (it vanished unseen) is
  removed and counted as a refresh too. Levels that stayed in view are never touched: they must match.
- **Comparison.** After each message (and its refreshes) the engine's top N levels a side, ``(price, qty)``,
  must equal the row exactly; any difference is a mismatch. The command prints rows compared, refreshes and
  mismatches (the first few shown) and exits 1 on any mismatch, 2 on an unusable input file.

On the AAPL 2012-06-21 10-level sample in ``../shared/data/lobster`` every one of the 998 compared rows
matches (0 mismatches, 0 priority deviations) with 320 refreshes (14 of them changed a level).

Without that data, ``lobster_synth.py`` writes a LOBSTER day from the seeded synthetic flow run through the
engine: every message (the full form), or only those touching the top N levels as real files have them (the
filtered form, which needs the refreshes); ``tests/c_engine/test_lobster_synthetic.py`` replays both. The
filtered day of seed 31 is not reproduced (an expected failure there): a level that comes back into view
with an unchanged size keeps its stale orders, even when orders came and went while it was out of view.
"""

from __future__ import annotations

import argparse
import csv
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from os import PathLike
from pathlib import Path
from typing import TYPE_CHECKING, NamedTuple

from ._config import EngineConfig, SymbolConfig
from ._types import Command, Event
from ._wire import EventType, Op, Side, Stp, Tif

if TYPE_CHECKING:
    from .replay import _ReplayEngine

__all__ = [
    "BOOK_CLIENT",
    "BookRow",
    "LobsterError",
    "LobsterReplay",
    "LobsterReport",
    "Message",
    "SEED_CLIENT",
    "TAKER_CLIENT",
    "read_messages",
    "read_orderbook",
    "replay_lobster",
    "run",
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


class LobsterError(ValueError):
    """An input file that cannot be replayed exactly (bad row, price off the tick)."""


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


def _ticks(raw: str, tick: int, where: str) -> int:
    price = int(raw)
    if price % tick:
        raise LobsterError(f"{where}: price {price} is not a multiple of the tick ({tick})")
    return price // tick


def _time_ns(raw: str, where: str) -> int:
    seconds, _, fraction = raw.partition(".")
    if not seconds.isdigit() or (fraction and not fraction.isdigit()) or len(fraction) > 9:
        raise LobsterError(f"{where}: time {raw!r} is not seconds with at most 9 decimals")
    return int(seconds) * 1_000_000_000 + int(fraction.ljust(9, "0") or 0)


def read_messages(path: StrPath, tick: int = 100) -> list[Message]:
    out = []
    with open(path, newline="") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            where = f"{path}:{line_no}"
            try:
                if len(row) != 6:
                    raise LobsterError(f"{where}: {len(row)} columns, a message has 6")
                kind, order_id, size, direction = int(row[1]), int(row[2]), int(row[3]), int(row[5])
                if kind not in _TYPE_NAMES:
                    raise LobsterError(f"{where}: unknown message type {kind}")
                applied = kind in (NEW, PARTIAL_CANCEL, DELETE, EXECUTE)  # the others are skipped: not checked
                if applied and direction not in (1, -1):
                    raise LobsterError(f"{where}: direction {direction} is neither 1 (buy) nor -1 (sell)")
                price = _ticks(row[4], tick, where) if applied else 0
                side = Side.BUY if direction == 1 else Side.SELL
                out.append(Message(line_no, _time_ns(row[0], where), kind, order_id, size, price, side))
            except ValueError as exc:
                raise exc if isinstance(exc, LobsterError) else LobsterError(f"{where}: {exc}") from None
    return out


def read_orderbook(path: StrPath, tick: int = 100) -> tuple[int, list[BookRow]]:
    """The number of levels a side the file has, and its rows."""
    out = []
    width = 0
    with open(path, newline="") as f:
        for line_no, row in enumerate(csv.reader(f), start=1):
            where = f"{path}:{line_no}"
            width = width or len(row)
            if not row or len(row) % 4:
                raise LobsterError(f"{where}: {len(row)} columns, not 4 per level")
            if len(row) != width:
                raise LobsterError(f"{where}: {len(row)} columns, the first row has {width}")
            try:
                values = [int(v) for v in row]
            except ValueError as exc:
                raise LobsterError(f"{where}: {exc}") from None
            asks = tuple(
                (_ticks(row[i], tick, where), values[i + 1]) for i in range(0, width, 4) if values[i] != EMPTY_ASK_PRICE
            )
            bids = tuple(
                (_ticks(row[i + 2], tick, where), values[i + 3])
                for i in range(0, width, 4)
                if values[i + 2] != EMPTY_BID_PRICE
            )
            out.append(BookRow(line_no, asks, bids))
    return width // 4, out


_SIDES = ((Side.BUY, "buy"), (Side.SELL, "sell"))


def _beyond(side: int, price: int, boundary: int) -> bool:
    """Strictly worse than ``boundary`` on ``side`` (lower for bids, higher for asks)."""
    return price < boundary if side == Side.BUY else price > boundary


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
    #: levels re-read from a row because they came back into view (see the module docstring)
    refreshes: int = 0
    #: ... of which the engine's level differed and was rebuilt
    refreshes_changed: int = 0
    #: cancels/executions of an id the file never introduced (or whose level was refreshed), applied to seeds
    seed_applied: int = 0
    #: executions whose IOC traded with another order than the one named, or not exactly its size
    priority_deviations: int = 0
    #: messages that found no order to apply to, or an engine reject
    anomalies: list[str] = field(default_factory=list)
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
        out += [f"  anomaly: {a}" for a in self.anomalies[:5]]
        out += [f"  mismatch: {m}" for m in self.first_mismatches]
        return out


class LobsterReplay:
    """The engine book driven by LOBSTER messages: :meth:`seed`, then :meth:`step` per message and row."""

    def __init__(self, engine: _ReplayEngine, symbol: str, levels: int, show: int = 5) -> None:
        self.engine = engine
        self.symbol_id: int = engine.symbol_id(symbol)
        self.levels = levels
        self.show = show
        self.report = LobsterReport(symbol, levels)
        #: engine order id -> [side, price, open qty], for every resting order (kept from the events)
        self.open: dict[int, list[int]] = {}
        #: LOBSTER order id -> engine order id
        self.known: dict[int, int] = {}
        #: (side, price) -> engine order id of the level's seed order
        self.seeds: dict[tuple[int, int], int] = {}
        self.ts_ns = 0

    # --- commands -------------------------------------------------------------------------------------------

    def _execute(self, cmd: Command, what: str) -> list[Event]:
        events: list[Event] = self.engine.execute(cmd)
        for e in events:
            t = e.type
            if t == EventType.ACK and e.acked_op == Op.NEW:
                self.open[e.order_id] = [e.side, e.price, e.qty]
            elif t in (EventType.FILL, EventType.CANCELED, EventType.MODIFIED):
                entry = self.open.get(e.order_id)
                if entry is not None:
                    entry[2] = e.leaves
                    if t == EventType.MODIFIED:
                        entry[1] = e.price
                    if e.leaves == 0:
                        del self.open[e.order_id]
            elif t == EventType.REJECT:
                self._anomaly(f"{what}: the engine rejected it ({Event.to_dict(e).get('reason')})")
        return events

    def _new(self, client: int, side: int, price: int, qty: int, tif: int, what: str) -> int:
        cmd = Command.new(client, self.symbol_id, side, qty, price, tif=tif, stp=Stp.NONE, ts_ns=self.ts_ns)
        events = self._execute(cmd, what)
        acks = [e.order_id for e in events if e.type == EventType.ACK]
        return acks[0] if acks else 0

    def _reduce(self, order_id: int, by: int, what: str) -> None:
        """Take ``by`` off a resting order's open qty: modify down, or cancel when nothing would be left."""
        side, price, open_qty = self.open[order_id]
        client = SEED_CLIENT if self.seeds.get((side, price)) == order_id else BOOK_CLIENT
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

    def _seed_level(self, side: int, price: int, size: int, what: str) -> None:
        order_id = self._new(SEED_CLIENT, side, price, size, Tif.GTC, what)
        if order_id:
            self.seeds[(side, price)] = order_id

    def _target(self, msg: Message) -> int | None:
        """The engine order a cancel or execution is about: the known order, else the level's seed order."""
        order_id = self.known.get(msg.order_id)
        if order_id is not None and order_id in self.open and self.open[order_id][:2] == [msg.side, msg.price]:
            return order_id
        seed = self.seeds.get((msg.side, msg.price))
        if seed is not None and seed in self.open:
            self.report.seed_applied += 1
            return seed
        return None

    def apply(self, msg: Message) -> None:
        self.ts_ns = msg.ts_ns
        what = f"message line {msg.line_no} ({_TYPE_NAMES[msg.type]} of order {msg.order_id})"
        if msg.type in (EXECUTE_HIDDEN, CROSS, HALT):
            self.report.skipped[msg.type] = self.report.skipped.get(msg.type, 0) + 1
            return
        self.report.applied[msg.type] = self.report.applied.get(msg.type, 0) + 1
        if msg.type == NEW:
            order_id = self._new(BOOK_CLIENT, msg.side, msg.price, msg.size, Tif.GTC, what)
            if order_id:
                self.known[msg.order_id] = order_id
            return
        target = self._target(msg)
        if msg.type == EXECUTE:
            taker_side = Side.SELL if msg.side == Side.BUY else Side.BUY
            cmd = Command.new(TAKER_CLIENT, self.symbol_id, taker_side, msg.size, msg.price, tif=Tif.IOC,
                              stp=Stp.NONE, ts_ns=self.ts_ns)  # fmt: skip
            trades = [e for e in self._execute(cmd, what) if e.type == EventType.TRADE]
            makers = {e.maker_order_id for e in trades}
            if target is None or makers != {target} or sum(e.qty for e in trades) != msg.size:
                self.report.priority_deviations += 1
                self._anomaly(f"{what}: traded {sum(e.qty for e in trades)} with orders {sorted(makers)}, "
                              f"expected {msg.size} with {target}")  # fmt: skip
            return
        if target is None:
            self._anomaly(f"{what}: no order rests at {msg.price} on that side")
            return
        if msg.type == PARTIAL_CANCEL:
            self._reduce(target, msg.size, what)
        else:  # DELETE: all of a known order; the deleted size out of a seed order (it stands for several)
            open_qty = self.open[target][2]
            if self.seeds.get((msg.side, msg.price)) == target:
                self._reduce(target, msg.size, what)
            else:
                if msg.size != open_qty:
                    self._anomaly(f"{what}: deletes {msg.size}, the order has {open_qty} open")
                self._reduce(target, open_qty, what)

    # --- refresh and compare --------------------------------------------------------------------------------

    def _book(self, depth: int | None) -> dict[str, list[tuple[int, int]]]:
        l2 = self.engine.l2(self.symbol_id, depth)
        return {
            name: [(lvl.price, lvl.qty) for lvl in l2[key]]
            for (_, name), key in zip(_SIDES, ("bids", "asks"), strict=True)
        }

    def refresh(self, previous: BookRow, row: BookRow) -> None:
        """Re-read from ``row`` the levels that came back into view since ``previous``."""
        book = self._book(None)
        for side, name in _SIDES:
            before, now = getattr(previous, name), getattr(row, name)
            if len(before) < self.levels:
                continue  # the whole side was in view: no level could change unseen
            boundary = before[-1][0]
            engine_levels = dict(book[name])
            for price, size in now:
                if _beyond(side, price, boundary):
                    self.report.refreshes += 1
                    if engine_levels.get(price) != size:
                        self._set_level(side, price, size, f"row {row.line_no}: refresh {name} {price}")
            # Engine levels in the re-read region that the row does not have: gone while out of view.
            row_prices = {price for price, _ in now}
            worst = now[-1][0] if len(now) == self.levels else None
            for price in engine_levels:
                in_view = worst is None or not _beyond(side, price, worst)
                if _beyond(side, price, boundary) and in_view and price not in row_prices:
                    self.report.refreshes += 1
                    self._set_level(side, price, 0, f"row {row.line_no}: remove {name} {price}")

    def _set_level(self, side: int, price: int, size: int, what: str) -> None:
        """Make the level at ``price`` exactly one seed order of ``size`` (nothing when 0)."""
        self.report.refreshes_changed += 1
        for order_id in [oid for oid, (s, p, _) in self.open.items() if s == side and p == price]:
            client = SEED_CLIENT if self.seeds.get((side, price)) == order_id else BOOK_CLIENT
            self._execute(Command.cancel(client, order_id, ts_ns=self.ts_ns), what)
        self.seeds.pop((side, price), None)
        if size:
            self._seed_level(side, price, size, what)

    def compare(self, row: BookRow) -> bool:
        """Does the engine's top of book equal ``row``? Records a mismatch if not."""
        self.report.rows_compared += 1
        book = self._book(self.levels)
        diffs = [
            f"{name}: engine {book[name]} != row {list(getattr(row, name))}"
            for _, name in _SIDES
            if book[name] != list(getattr(row, name))
        ]
        if diffs:
            self.report.mismatches += 1
            if len(self.report.first_mismatches) < self.show:
                self.report.first_mismatches.append(f"row {row.line_no}: " + "; ".join(diffs))
        return not diffs

    def step(self, msg: Message, previous: BookRow, row: BookRow) -> bool:
        self.apply(msg)
        self.refresh(previous, row)
        return self.compare(row)


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
    """Replay a LOBSTER message file and compare every order-book row; see the module docstring."""
    if tick <= 0:
        raise LobsterError(f"tick {tick} must be positive")
    messages = read_messages(message_path, tick)
    levels, rows = read_orderbook(orderbook_path, tick)
    if len(messages) != len(rows):
        raise LobsterError(f"{message_path} has {len(messages)} messages but {orderbook_path} {len(rows)} rows")
    if not messages:
        raise LobsterError(f"{message_path} is empty")
    symbol = Path(message_path).name.split("_")[0] or "LOBSTER"
    if factory is None:
        from .replay import engine_class

        factory = engine_class("c")
    engine = factory(EngineConfig())
    engine.add_symbol(symbol_config(symbol, tick))
    replay = LobsterReplay(engine, symbol, levels, show)
    replay.report.messages = len(messages)
    replay.seed(rows[0], messages[0].ts_ns)
    for i in range(1, len(messages)):
        replay.step(messages[i], rows[i - 1], rows[i])
    return replay.report


def run(args: argparse.Namespace) -> int:
    """The ``engine lobster`` subcommand; returns the exit code (1 on any mismatch)."""
    from .replay import engine_class

    try:
        report = replay_lobster(args.message, args.orderbook, args.tick, engine_class(args.engine), args.show)
    except (LobsterError, OSError) as exc:
        print(exc if isinstance(exc, LobsterError) else f"{exc.filename}: {exc.strerror}", file=sys.stderr)
        return 2
    for line in report.lines():
        print(line)
    return 1 if report.mismatches else 0
