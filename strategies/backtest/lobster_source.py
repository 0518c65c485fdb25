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

from collections.abc import Iterator
from os import PathLike
from pathlib import Path
from typing import Any

from c_engine import Command, Engine, Event, SymbolConfig, iter_recorded_lobster, open_recording
from c_engine.lobster import (
    LobsterReplay,
    LobsterReport,
    Message,
    iter_book_lines,
    iter_messages,
    symbol_config,
)

from .own_orders import StrategyOrders

__all__ = ["LobsterSource", "OrdersTap", "open_lobster"]


class OrdersTap:
    """The engine as a LOBSTER replay sees it: what the replay's commands give is shown to ``StrategyOrders``
    (its ``own=``), so the replay knows where the strategy's orders stand."""

    def __init__(self, engine: Engine, orders: StrategyOrders) -> None:
        self._engine = engine
        self._orders = orders

    def execute(self, cmd: Command) -> list[Event]:
        events = self._engine.execute(cmd)
        self._orders.observe_market(events)
        return events

    def __getattr__(self, name: str) -> Any:
        return getattr(self._engine, name)


def open_lobster(
    message: str | PathLike[str], orderbook: str | PathLike[str] | None, tick: int
) -> tuple[str, int, Iterator[Message], Iterator[list[int]]]:
    """(symbol, tick, messages, order-book lines) of a LOBSTER day: its two files (plain or gzip; the symbol from
    the message file's name), or one recording of them (``orderbook`` None; symbol and tick as recorded)."""
    path = Path(message)
    if orderbook is None:
        info = open_recording(path)
        if info.kind != "lobster":
            raise ValueError(f"{message}: a {info.kind} recording, not a LOBSTER one")
        messages, lines = iter_recorded_lobster(path)
        return info.symbols[0].name, int(info.params["tick"]), messages, lines
    return path.name.split("_")[0] or "LOBSTER", tick, iter_messages(path, tick), iter_book_lines(orderbook)


class LobsterSource:
    """A LOBSTER day: ``message`` and ``orderbook`` files (plain or gzip), one tick = ``tick`` LOBSTER units."""

    name = "lobster"

    def __init__(self, message: str | PathLike[str], orderbook: str | PathLike[str] | None = None, *,
                 tick: int = 100, max_messages: int | None = None) -> None:  # fmt: skip
        """The two LOBSTER files, or one recording of them (``c_engine.record_lobster``: ``orderbook`` None),
        which is read back far faster than the CSVs are parsed."""
        self.message = Path(message)
        self.orderbook = self.message if orderbook is None else Path(orderbook)
        self.symbol, self.tick, self._messages, self._lines = open_lobster(message, orderbook, tick)
        self.max_messages = max_messages
        self.orders = StrategyOrders()
        self.replay: LobsterReplay | None = None
        self.executed = 0
        self._next: Any = None
        self._previous: list[int] = []

    def symbols(self) -> list[SymbolConfig]:
        return [symbol_config(self.symbol, self.tick)]

    def open(self, engine: Engine) -> None:
        first, first_line = next(self._messages, None), next(self._lines, None)
        if first is None or first_line is None:
            raise ValueError(f"{self.message if first is None else self.orderbook} is empty")
        recorder = OrdersTap(engine, self.orders)
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
