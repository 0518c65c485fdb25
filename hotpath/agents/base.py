"""What every agent process shares: the event/market-data/step loop, idling, and a clean stop.

An agent is an object with three callbacks (:class:`Agent`). :func:`run_agent` attaches nothing itself: it
drives an agent over a :class:`~hotpath.client.Client` and a :class:`~hotpath.md_view.BookView` until
``stop`` is set or ``seconds`` pass, backing off (``BackoffIdle``) whenever a pass found nothing to do, so an
idle agent costs almost no CPU. :func:`agent_main` is the process entry: it turns SIGINT/SIGTERM into the
stop flag, and on the way out the Client detaches, which cancels the agent's resting orders.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import numpy.typing as npt

from c_engine import Event

from ..client import Client, EngineGoneError
from ..idle import BackoffIdle
from ..md_view import BookView, control_snapshot
from ..names import control_endpoint

__all__ = ["Agent", "add_common_arguments", "agent_main", "run_agent"]

log = logging.getLogger("proptrade.agent")


class Agent(Protocol):
    def on_events(self, events: list[Event]) -> None:
        """The agent's own events (ACK, REJECT, FILL, CANCELED, MODIFIED), in engine order."""

    def on_book(self, view: BookView, rows: npt.NDArray[Any]) -> None:
        """Market data arrived: ``rows`` are the BOOK_DELTA and TRADE events just applied (``EVENT_DTYPE``, in
        engine order; trades included, so a strategy can react to them), and the view's books are current. After
        the view resynced from a snapshot (it was lapped), ``rows`` is empty and only the books say what changed."""

    def step(self, now_ns: int) -> int:
        """Time passed: act if due; return how many commands were sent (0 lets the loop back off)."""

    def next_due_ns(self) -> int | None:
        """When ``step`` next has something to do on its own (monotonic ns), or None: only events wake it."""


#: the longest idle sleep of an agent. Each wake-up of a Python process costs ~50-80 us of CPU on these VMs
#: (a bare sleep loop: 1.5% of a core at 5 ms), so 20 ms keeps an idle agent well under 1% and an idle platform
#: under the 5% budget with room for a loaded machine; the first event after a silence waits up to this (a
#: strategy that cannot afford that owns a core and spins: docs/HOTPATH.md)
AGENT_MAX_SLEEP_S = 20e-3


def run_agent(agent: Agent, client: Client, view: BookView, stop: threading.Event, seconds: float = 0.0) -> None:
    """Drives ``agent`` until ``stop`` is set (or ``seconds`` > 0 pass); sleeps no later than its next timer."""
    idle = BackoffIdle(max_sleep_s=AGENT_MAX_SLEEP_S)
    deadline = time.monotonic() + seconds if seconds > 0 else float("inf")
    while not stop.is_set() and time.monotonic() < deadline:
        work = 0
        events = client.poll(1024)
        if events:
            agent.on_events(events)
            work += len(events)
        overruns = view.overruns
        rows = view.poll()
        if len(rows) or view.overruns != overruns:
            agent.on_book(view, rows)
            work += 1
        now = time.monotonic_ns()
        work += agent.step(now)
        due = agent.next_due_ns()
        idle.idle(work, None if due is None else (due - now) / 1e9)


def _account(text: str) -> str | int:
    """An account name, or a client id for digits."""
    return int(text) if text.isdigit() else text


def add_common_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--prefix", help="the engine run's prefix (its control endpoint is derived from it)")
    parser.add_argument("--endpoint", help="the engine's control endpoint (instead of --prefix)")
    parser.add_argument("--client", type=_account, required=True, help="account to attach as: a name or a client id")
    parser.add_argument("--symbol", required=True, help="symbol to trade")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=0.0, help="stop after this long (0: until signalled)")


def agent_main(args: argparse.Namespace, make: Callable[[Client, BookView, argparse.Namespace], Any]) -> int:
    """Attaches, builds the agent with ``make(client, view, args)``, runs it until SIGINT/SIGTERM, detaches."""
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s client {args.client} %(levelname)s %(message)s")
    stop = threading.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        signal.signal(sig, lambda *_: stop.set())
    endpoint = args.endpoint or control_endpoint(args.prefix)
    with Client(args.client, endpoint=endpoint) as client:
        sid = client.symbol_id(args.symbol)
        view = BookView(client.market_data(), [sid], control_snapshot(client.request, client.symbol_names))
        view.resync()  # the books as they are now; deltas from here on
        agent = make(client, view, args)
        try:
            run_agent(agent, client, view, stop, args.seconds)
        except EngineGoneError as e:
            log.error("%s: stopping", e)
            return 1
    return 0
