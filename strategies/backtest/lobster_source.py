"""``LobsterSource``: a LOBSTER day (message + order-book files) as the backtest's market, order by order.

The replay is ``c_engine.lobster.LobsterReplay``: every recorded order rests in the engine as itself, so the
strategy's queue place is exact, with no assumption about cancels: a recorded cancel names the order it
removes, and the engine knows whether that order was ahead of the strategy's or behind it. The strategy's
orders join the back of their level at the time they reach the engine.

Market impact ("extend", the one policy an order-level replay can keep exact): a recorded visible execution
is replayed as an IOC that trades the recorded order its recorded size, enlarged by the strategy's quantity the
engine matches first (a better price, or the same price with earlier priority). So the strategy is filled
where the recorded aggressor passed its quote, and the recorded orders still trade exactly as recorded: every
recorded row is still reproduced on the recorded orders (the check leaves the strategy's quantity out). This is
optimistic in one way, stated here: it assumes the aggressor would also have taken the strategy's quantity.
A strategy's own marketable order does consume recorded orders (the engine's matching); the messages that
later touch them then find less, and the replay counts those as anomalies and mismatches: the report says how
far the strategy moved the recorded book.

A level that the replay re-reads from the book file (it came back into view beyond the file's N levels) is
rebuilt behind any strategy order resting there: the recorded quantity there is of unknown age.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path
from typing import Any

from c_engine import Command, Engine, Event, EventType, Op, Side, SymbolConfig
from c_engine.lobster import (
    LobsterReplay,
    LobsterReport,
    iter_book_lines,
    iter_messages,
    symbol_config,
)

__all__ = ["LobsterSource", "StrategyOrders"]

_BUY = int(Side.BUY)
_ACK, _FILL, _CANCELED, _MODIFIED = (int(t) for t in (EventType.ACK, EventType.FILL, EventType.CANCELED,
                                                      EventType.MODIFIED))  # fmt: skip
_OP_NEW = int(Op.NEW)


class StrategyOrders:
    """The strategy's resting orders with their time priority (``c_engine.lobster.OwnOrders``).

    Priority is the engine seq of the event that put an order at the back of its level: its ACK, or a MODIFIED
    that moved it or grew it (a modify down keeps its place). The recorded orders' ACK seqs are kept too, to
    compare with.
    """

    def __init__(self) -> None:
        #: strategy order id -> [side, price, open qty, priority seq]
        self.resting: dict[int, list[int]] = {}
        #: every other order's ACK seq (its priority: recorded orders are only ever reduced)
        self.others: dict[int, int] = {}
        #: every order id the strategy ever had (a fill that just finished an order is still its)
        self.ids: set[int] = set()

    def observe_strategy(self, events: list[Event]) -> None:
        """The strategy's own command's events."""
        for e in events:
            t = e.type
            if t == _ACK and e.acked_op == _OP_NEW:
                self.ids.add(e.order_id)
                if e.aux:
                    self.resting[e.order_id] = [e.side, e.price, e.aux, e.seq]
            elif t == _MODIFIED:
                entry = self.resting.get(e.order_id)
                if entry is not None:
                    if e.price != entry[1] or e.aux > entry[2]:
                        entry[3] = e.seq
                    entry[1], entry[2] = e.price, e.aux
                    if not e.aux:
                        del self.resting[e.order_id]
            else:
                self._reduce(e)

    def observe_market(self, events: list[Event]) -> None:
        """The market's commands' events (the strategy's fills among them)."""
        for e in events:
            if e.type == _ACK and e.acked_op == _OP_NEW:
                self.others[e.order_id] = e.seq
            else:
                self._reduce(e)

    def _reduce(self, e: Event) -> None:
        if e.type in (_FILL, _CANCELED):
            entry = self.resting.get(e.order_id)
            if entry is not None:
                entry[2] = e.aux
                if not e.aux:
                    del self.resting[e.order_id]

    # --- OwnOrders ------------------------------------------------------------------------------------------

    def qty_at(self, side: int, price: int) -> int:
        return sum(o[2] for o in self.resting.values() if o[0] == side and o[1] == price)

    def ahead_of(self, side: int, price: int, order_id: int) -> int:
        seq = self.others.get(order_id, 1 << 62)
        sign = 1 if side == _BUY else -1  # better means higher for bids, lower for asks
        ahead = 0
        for o_side, o_price, o_open, o_seq in self.resting.values():
            if o_side == side and (sign * (o_price - price) > 0 or (o_price == price and o_seq < seq)):
                ahead += o_open
        return ahead

    def crossing(self, side: int, price: int) -> int:
        if side == _BUY:  # a buy at ``price`` takes the strategy's asks at or below it
            return sum(o[2] for o in self.resting.values() if o[0] != _BUY and o[1] <= price)
        return sum(o[2] for o in self.resting.values() if o[0] == _BUY and o[1] >= price)

    def owns(self, order_id: int) -> bool:
        return order_id in self.ids


class _Recorder:
    """The engine as the replay sees it: what the replay's commands give is shown to ``StrategyOrders``."""

    def __init__(self, engine: Engine, orders: StrategyOrders) -> None:
        self._engine = engine
        self._orders = orders

    def execute(self, cmd: Command) -> list[Event]:
        events = self._engine.execute(cmd)
        self._orders.observe_market(events)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


class LobsterSource:
    """A LOBSTER day: ``message`` and ``orderbook`` files (plain or gzip), one tick = ``tick`` LOBSTER units."""

    name = "lobster"

    def __init__(self, message: str | PathLike[str], orderbook: str | PathLike[str], *, tick: int = 100,
                 max_messages: int | None = None) -> None:  # fmt: skip
        self.message, self.orderbook, self.tick = Path(message), Path(orderbook), tick
        self.symbol = self.message.name.split("_")[0] or "LOBSTER"
        self.max_messages = max_messages
        self.orders = StrategyOrders()
        self.replay: LobsterReplay | None = None
        self.executed = 0
        self._messages = iter_messages(self.message, tick)
        self._lines = iter_book_lines(self.orderbook)
        self._next: Any = None
        self._previous: list[int] = []

    def symbols(self) -> list[SymbolConfig]:
        return [symbol_config(self.symbol, self.tick)]

    def open(self, engine: Engine) -> None:
        first, first_line = next(self._messages, None), next(self._lines, None)
        if first is None or first_line is None:
            raise ValueError(f"{self.message if first is None else self.orderbook} is empty")
        recorder = _Recorder(engine, self.orders)
        self.replay = LobsterReplay(recorder, self.symbol, len(first_line) // 4, show=5,
                                    tick=self.tick, own=self.orders)  # fmt: skip
        self.replay.seed_line(first_line, first.ts_ns)
        self._previous = first_line
        self.executed = 1
        self._advance()

    def _advance(self) -> None:
        if self.max_messages is not None and self.executed >= self.max_messages:
            self._next = None
            return
        msg = next(self._messages, None)
        line = next(self._lines, None)
        if (msg is None) != (line is None):
            raise ValueError(f"{self.message} and {self.orderbook} have different numbers of lines")
        self._next = None if msg is None else (msg, line)

    def peek_ns(self) -> int | None:
        return None if self._next is None else int(self._next[0].ts_ns)

    def run_until(self, engine: Engine, limit_ns: int) -> None:
        assert self.replay is not None
        while self._next is not None and self._next[0].ts_ns <= limit_ns:
            msg, line = self._next
            self.replay.step(msg, self._previous, line)
            self._previous = line
            self.executed += 1
            self._advance()
        if self._next is None:
            self.replay.report.messages = self.executed

    def observe(self, events: list[Event]) -> None:
        """The strategy's commands' events: the replay's view of the engine and the strategy's orders."""
        self.orders.observe_strategy(events)
        if self.replay is not None:
            self.replay.observe(events)

    @property
    def report(self) -> LobsterReport | None:
        return None if self.replay is None else self.replay.report
