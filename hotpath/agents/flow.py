"""Synthetic order flow: a market for the demo and the tests to trade in, with no data.

Arrivals are a Poisson process (exponential gaps at ``rate`` per second). Each arrival is a passive limit
order some ticks behind a drifting mid on its own side (``p_limit``), a marketable order (``p_market``: half
market IOC, half an IOC limit a few ticks through the mid), or a cancel of one of the agent's own resting
orders (the rest). The mid is a random walk in time: ``sigma_ticks`` per square root of a second. Everything
is drawn from one seeded generator, so a seed gives the same decisions (their timing follows the clock).
Prices and sizes are in ticks and lots, sent as wire commands: no conversion on this path.
"""

from __future__ import annotations

import argparse
import math
import time
from typing import Any

import numpy as np
import numpy.typing as npt

from c_engine import Command, Event, EventType, Op, OrderType, Side, Tif

from ..client import Client
from ..md_view import BookView
from .base import add_common_arguments, agent_main

__all__ = ["PoissonFlow", "main"]

#: at most this many arrivals per step: a flow that falls behind skips ahead instead of bursting
MAX_BURST = 256


class PoissonFlow:
    """One client's Poisson order flow around a drifting mid (see the module docstring)."""

    def __init__(
        self,
        client: Client,
        symbol_id: int,
        *,
        rate: float = 500.0,
        seed: int = 1,
        mid_ticks: int = 10_000,
        sigma_ticks: float = 3.0,
        p_limit: float = 0.55,
        p_market: float = 0.10,
        max_qty: int = 10,
        max_live: int = 200,
    ) -> None:
        if not 0 < p_limit + p_market <= 1:
            raise ValueError("p_limit + p_market must be in (0, 1]: the rest of the arrivals are cancels")
        self.client = client
        self.symbol_id = symbol_id
        self.rate = rate
        self.mid = float(mid_ticks)
        self.sigma_ticks = sigma_ticks
        self.p_limit, self.p_market = p_limit, p_market
        self.max_qty = max_qty
        self.max_live = max_live
        self._rng = np.random.default_rng(seed)
        self._next_ns = 0
        self._live: dict[int, int] = {}  # resting order id -> side
        self.sent = 0
        self.fills = 0
        self.rejects = 0

    def on_events(self, events: list[Event]) -> None:
        for ev in events:
            if ev.type == EventType.ACK and ev.acked_op == Op.NEW and ev.leaves > 0:
                self._live[ev.order_id] = ev.side
            elif ev.type in (EventType.FILL, EventType.CANCELED):
                self.fills += ev.type == EventType.FILL
                if ev.leaves == 0:
                    self._live.pop(ev.order_id, None)
            elif ev.type == EventType.REJECT:
                self.rejects += 1

    def on_book(self, view: BookView, rows: npt.NDArray[Any]) -> None:
        pass  # the flow does not look at the book: it is the noise the market makers quote against

    def step(self, now_ns: int) -> int:
        if self._next_ns == 0:
            self._next_ns = now_ns
        n = 0
        while self._next_ns <= now_ns and n < MAX_BURST:
            gap_ns = self._rng.exponential(1e9 / self.rate)
            self.mid += self._rng.normal(0.0, self.sigma_ticks * math.sqrt(gap_ns / 1e9))
            self._arrive()
            self._next_ns += int(gap_ns) + 1
            n += 1
        if n == MAX_BURST:
            self._next_ns = max(self._next_ns, now_ns)
        return n

    def next_due_ns(self) -> int | None:
        return self._next_ns or None

    def _arrive(self) -> None:
        rng = self._rng
        u = rng.random()
        if u >= self.p_limit + self.p_market or len(self._live) >= self.max_live:
            if self._live:
                order_id = list(self._live)[int(rng.integers(len(self._live)))]
                self._send(Command.cancel(self.client.client_id, order_id, ts_ns=time.monotonic_ns()))
                return
            u = 0.0  # nothing to cancel: a passive limit instead
        side = Side.BUY if rng.random() < 0.5 else Side.SELL
        sign = 1 if side == Side.BUY else -1
        qty = int(rng.integers(1, self.max_qty + 1))
        mid = round(self.mid)
        cid = self.client.client_id
        if u < self.p_limit:
            away = 1 + int(rng.geometric(0.25))  # mostly near the touch, a tail deeper in the book
            cmd = Command.new(cid, self.symbol_id, side, qty, max(1, mid - sign * away), ts_ns=time.monotonic_ns())
        elif rng.random() < 0.5:
            cmd = Command.new(cid, self.symbol_id, side, qty, order_type=OrderType.MARKET, tif=Tif.IOC,
                              ts_ns=time.monotonic_ns())  # fmt: skip
        else:
            through = int(rng.integers(1, 4))
            cmd = Command.new(cid, self.symbol_id, side, qty, max(1, mid + sign * through), tif=Tif.IOC,
                              ts_ns=time.monotonic_ns())  # fmt: skip
        self._send(cmd)

    def _send(self, cmd: Command) -> None:
        self.client.send(cmd)
        self.sent += 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m hotpath.agents.flow", description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--rate", type=float, default=500.0, help="arrivals per second")
    parser.add_argument("--mid", type=float, default=100.0, help="starting mid (human price)")
    parser.add_argument("--sigma-ticks", type=float, default=3.0, help="mid volatility, ticks per sqrt(second)")
    args = parser.parse_args(argv)

    def make(client: Client, view: BookView, a: argparse.Namespace) -> PoissonFlow:
        sid = client.symbol_id(a.symbol)
        return PoissonFlow(client, sid, rate=a.rate, seed=a.seed, mid_ticks=client.ticks(sid, a.mid),
                           sigma_ticks=a.sigma_ticks)  # fmt: skip

    return agent_main(args, make)


if __name__ == "__main__":
    raise SystemExit(main())
