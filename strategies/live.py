"""``LiveTrading``: the trading interface over a running platform, and the loop that drives a strategy there.

Commands go to the engine through the client's command ring; its own events come back on its event ring; the
books are the ``BookView`` of the market-data ring (resynced from a control-plane snapshot if it is lapped).
The clock is ``time.monotonic_ns`` (the one the engine's command timestamps use), injected like any other.

:func:`run_live` polls events, market data and the timer, calls the strategy, and backs off when a pass found
nothing to do, so an idle strategy costs almost no CPU. It stops when ``stop`` is set or ``seconds`` pass,
then: ``on_stop``, a mass cancel, and a bounded wait for its end-of-command marker, so the books are final.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping

from c_engine import Command, EventType, Op, Stp
from hotpath import BackoffIdle, BookView, Client, L2Book

from .accounting import Instrument
from .core import TradingCore
from .interface import Strategy

__all__ = ["LiveTrading", "run_live"]

_DELTA, _TRADE = int(EventType.BOOK_DELTA), int(EventType.TRADE)
_ACK = int(EventType.ACK)
_OP_MASS_CANCEL = int(Op.MASS_CANCEL)
#: the longest idle sleep (the agents' figure: docs/HOTPATH.md, "Idling")
MAX_SLEEP_S = 20e-3


class LiveTrading(TradingCore):
    """A strategy's trading interface over ``client`` (attached) and ``view`` (its subscribed symbols)."""

    def __init__(
        self,
        strategy: Strategy,
        client: Client,
        view: BookView,
        *,
        instruments: Mapping[int, Instrument] | None = None,
        clock: Callable[[], int] = time.monotonic_ns,
        stp: Stp | int = Stp.NONE,
    ) -> None:
        symbols = {sid: (name, client.units(sid)) for sid, name in client.symbol_names.items()}
        super().__init__(strategy, client.client_id, symbols, clock, instruments, stp)
        self.client = client
        self.view = view

    def _send(self, cmd: Command) -> None:
        self.client.send(cmd)

    def book(self, symbol_id: int) -> L2Book:
        return self.view.books[symbol_id]

    def poll(self) -> int:
        """One pass: own events, market data, timer. Returns the work done (0: nothing happened)."""
        work = 0
        events = self.client.poll(1024)
        if events:
            self.on_own_events(events)
            work += len(events)
        overruns = self.view.overruns
        rows = self.view.poll()
        if len(rows) or self.view.overruns != overruns:
            work += 1
            touched: set[int] = set()
            subscribed = self.subscribed
            columns = (rows[f].tolist() for f in ("type", "symbol_id", "side", "price", "qty", "ts_ns"))
            for etype, sid, side, price, qty, ts in zip(*columns, strict=True):
                if sid not in subscribed:
                    continue
                if etype == _TRADE:
                    self.on_trade(sid, price, qty, side, ts)
                elif etype == _DELTA:
                    touched.add(sid)
            if self.view.overruns != overruns:
                touched = set(subscribed)  # resynced: only the books say what changed
            for sid in sorted(touched):
                self.on_book(sid)
        if self.fire_timer(self.now_ns()):
            work += 1
        return work

    def finish(self, timeout_s: float = 2.0) -> None:
        """``on_stop``, then cancel everything open and wait (bounded) for the cancel's end marker."""
        self.strategy.on_stop(self)
        self.mass_cancel()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            events = self.client.poll(1024)
            self.on_own_events(events)
            if any(e.type == _ACK and e.acked_op == _OP_MASS_CANCEL and e.last for e in events):
                return
            if not events:
                time.sleep(0.001)


def run_live(trading: LiveTrading, stop: threading.Event, seconds: float = 0.0) -> None:
    """Drives ``trading``'s strategy until ``stop`` is set (or ``seconds`` > 0 pass), then finishes it."""
    idle = BackoffIdle(max_sleep_s=MAX_SLEEP_S)
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    trading.strategy.on_start(trading)
    try:
        while not stop.is_set() and time.monotonic() < deadline:
            work = trading.poll()
            due = trading.timer_ns
            idle.idle(work, None if due is None else max(0.0, (due - trading.now_ns()) / 1e9))
    finally:
        trading.finish()
