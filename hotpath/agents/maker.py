"""The demo market maker of ``make run``: one bid and one ask around the others' mid, skewed by inventory.

Fair value is the mid of the best bid and ask left after taking the maker's own quotes out of the book (a
maker that quoted around its own quotes would chase itself). It quotes ``size`` lots ``half_spread`` ticks
either side, shifted by ``skew`` ticks per lot of inventory against the position (long: both quotes lower,
so it sells more readily), and stops quoting the side that would take it past ``max_position``. Quotes are
post-only GTC (a maker never takes); a quote whose target moved is modified in place (the engine puts it at
the back of its new level), at most once per ``requote_ms`` per side. Its position comes from its own fills.

The full strategy framework (symmetric, inventory-skew, adaptive-spread, model-based makers that also run in
backtests) is the strategies package's job; this one exists so the platform has a maker to watch.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from typing import Any

import numpy.typing as npt

from c_engine import Command, Event, EventType, Op, Side

from ..client import Client
from ..md_view import BookView
from .base import add_common_arguments, agent_main

__all__ = ["DemoMaker", "main"]


@dataclass
class _Quote:
    side: int
    order_id: int = 0  # 0: none resting
    price: int = 0
    cloid: int = 0  # an order sent, not yet acknowledged
    last_change_ns: int = 0


class DemoMaker:
    def __init__(
        self,
        client: Client,
        symbol_id: int,
        view: BookView,
        *,
        size: int = 5,
        half_spread: int = 2,
        skew: float = 0.2,
        max_position: int = 200,
        requote_ms: float = 1.0,
    ) -> None:
        self.client = client
        self.symbol_id = symbol_id
        self.view = view
        self.size, self.half_spread, self.skew = size, half_spread, skew
        self.max_position = max_position
        self.requote_ns = int(requote_ms * 1e6)
        self.quotes = {Side.BUY: _Quote(Side.BUY), Side.SELL: _Quote(Side.SELL)}
        self.position = 0
        self.cash = 0  # ticks x lots
        self.fills = 0
        self.rejects = 0
        self._cloid = 0

    # --- events ------------------------------------------------------------------------------------------

    def on_events(self, events: list[Event]) -> None:
        for ev in events:
            q = self.quotes.get(ev.side)  # type: ignore[call-overload]
            if ev.type == EventType.ACK and ev.acked_op == Op.NEW and q is not None and ev.cloid == q.cloid:
                q.order_id, q.price, q.cloid = ev.order_id, ev.price, 0
            elif ev.type == EventType.FILL and q is not None:
                sign = 1 if ev.side == Side.BUY else -1
                self.position += sign * ev.qty
                self.cash -= sign * ev.qty * ev.price
                self.fills += 1
                if ev.leaves == 0 and ev.order_id == q.order_id:
                    q.order_id = 0
            elif ev.type == EventType.CANCELED and q is not None and ev.order_id == q.order_id:
                q.order_id = 0
            elif ev.type == EventType.MODIFIED and q is not None and ev.order_id == q.order_id:
                q.price = ev.price
            elif ev.type == EventType.REJECT:
                self.rejects += 1  # post-only that would take, or a modify of a quote just filled
                for quote in self.quotes.values():
                    if ev.cloid and ev.cloid == quote.cloid:
                        quote.cloid = 0

    def on_book(self, view: BookView, rows: npt.NDArray[Any]) -> None:
        pass  # step() reads the view; quoting on every delta would requote faster than the engine acks

    # --- quoting -----------------------------------------------------------------------------------------

    def fair(self) -> float | None:
        """The mid of the best bid and ask of everyone but this maker, or None while a side is empty."""
        book = self.view.books[self.symbol_id]
        bid = self._others_best(book.bids, Side.BUY)
        ask = self._others_best(book.asks, Side.SELL)
        return None if bid is None or ask is None else (bid + ask) / 2

    def _others_best(self, levels: dict[int, tuple[int, int]], side: int) -> int | None:
        q = self.quotes[side]  # type: ignore[index]
        for price in sorted(levels, reverse=side == Side.BUY):
            qty, count = levels[price]
            if q.order_id and price == q.price and count == 1:
                continue  # the level is only us
            return price
        return None

    def targets(self, fair: float) -> dict[int, int | None]:
        """The price each side should quote at (None: do not quote it)."""
        center = fair - self.skew * self.position
        bid, ask = int(center - self.half_spread), int(center + self.half_spread + 0.999999)
        return {
            Side.BUY: bid if self.position + self.size <= self.max_position else None,
            Side.SELL: ask if self.position - self.size >= -self.max_position else None,
        }

    def step(self, now_ns: int) -> int:
        fair = self.fair()
        if fair is None:
            return 0
        sent = 0
        for side, target in self.targets(fair).items():
            q = self.quotes[side]  # type: ignore[index]
            if q.cloid or now_ns - q.last_change_ns < self.requote_ns:
                continue  # an order in flight, or requoted just now
            cid = self.client.client_id
            if target is None:
                if q.order_id:
                    self.client.send(Command.cancel(cid, q.order_id, ts_ns=time.monotonic_ns()))
                    q.order_id, q.last_change_ns, sent = 0, now_ns, sent + 1
            elif not q.order_id:
                self._cloid += 1
                q.cloid, q.last_change_ns = self._cloid, now_ns
                self.client.send(Command.new(cid, self.symbol_id, side, self.size, target, post_only=True,
                                             cloid=self._cloid, ts_ns=time.monotonic_ns()))  # fmt: skip
                sent += 1
            elif target != q.price:
                self.client.send(Command.modify(cid, q.order_id, price=target, ts_ns=time.monotonic_ns()))
                q.last_change_ns = now_ns
                sent += 1
        return sent

    def next_due_ns(self) -> int | None:
        """A requote held back by ``requote_ms`` is due then; otherwise only events and market data matter."""
        now = time.monotonic_ns()
        held = [q.last_change_ns + self.requote_ns for q in self.quotes.values()]
        future = [t for t in held if t > now]
        return min(future) if future else None

    def pnl_ticks(self, mark: float) -> float:
        """Cash plus the position marked at ``mark`` (ticks x lots)."""
        return self.cash + self.position * mark


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotpath.agents.maker", description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--size", type=int, default=5, help="lots per quote")
    parser.add_argument("--half-spread", type=int, default=2, help="ticks from fair value to each quote")
    parser.add_argument("--skew", type=float, default=0.2, help="ticks of skew per lot of inventory")
    parser.add_argument("--max-position", type=int, default=200, help="lots")
    args = parser.parse_args(argv)

    def make(client: Client, view: BookView, a: argparse.Namespace) -> DemoMaker:
        return DemoMaker(client, client.symbol_id(a.symbol), view, size=a.size, half_spread=a.half_spread,
                         skew=a.skew, max_position=a.max_position)  # fmt: skip

    return agent_main(args, make)


if __name__ == "__main__":
    raise SystemExit(main())
