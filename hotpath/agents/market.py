"""The market agent: replays a recorded day (LOBSTER or Binance USD-M) into the live engine as its market flow.

::

    python -m hotpath.agents.market (--prefix RUN | --endpoint CTL) --client market --symbol AAPL
        --source lobster:MESSAGE[,ORDERBOOK] | binance:FILE [--tick T] [--lot L] [--speed max|X]
        [--at-end stay|stop] [--delay S] [--max-messages N] [--progress-s S]

``proptrade up --market SOURCE`` (or a ``[market]`` table of the platform config) starts it in place of the
synthetic flow agents (``hotpath/launcher.py``), so strategies, the gateway and the dashboard face a real day.

Choices:

- **One account.** Every order of the replay (the book's, the seed orders, the takers that print the recorded
  executions and trades) is the agent's account: it holds the recorded book and nothing else. The replay
  logic is ``c_engine``'s own, driven over the agent's link (``market_replay.py``, ``market_link.py``); no
  market-data view is kept, since the replays read their own events only (a view would apply every delta of
  the replay in Python, for nothing). The symbol is the data's: the engine's symbol of that name must have the
  data's tick and lot (checked at start).
- **Pacing.** ``--speed max`` replays as fast as the link takes it; ``--speed X`` keeps the recorded time: the
  message recorded at ``t`` goes out at ``start + (t - t0) / X`` of the monotonic clock (``t0`` the first
  message's time, ``start`` when the opening book is built plus ``--delay``). A replay that falls behind its
  pace sends without waiting until it has caught up (it never skips a message); the progress line says how far
  behind it is. Work is done in slices of at most ``SLICE_S``, so a stop request and other clients' fills of
  the book's orders are seen between them.
- **Progress**: a log line every ``--progress-s`` (messages, the recorded time reached, messages per second,
  how far behind the pace, the replay's checks), and at the end the replay's report and one JSON line on
  stdout (``{"market": ...}``: messages, elapsed seconds, rate, the checks' counts).
- **The end.** ``--at-end stay`` (the default): the agent keeps its account attached, so the book stays as the
  recording left it, and goes on reading the account's events (other clients may still trade with the book)
  until SIGINT/SIGTERM. ``--at-end stop``: it exits 0, and the launcher, which started it with ``ends_run``,
  stops the platform. On SIGINT/SIGTERM it stops between two messages; detaching then cancels the book, as for
  any client that leaves.
"""

from __future__ import annotations

import argparse
import json
import logging
import math
import signal
import sys
import threading
import time
from datetime import UTC, datetime
from typing import Any, TextIO

from ..client import Client, EngineGoneError
from ..idle import BackoffIdle
from ..names import control_endpoint
from .base import AGENT_MAX_SLEEP_S, add_common_arguments
from .market_link import LinkEngine
from .market_replay import Market, MarketSpec, open_market, parse_market

__all__ = ["AT_END", "SLICE_S", "main", "parse_speed", "run_market"]

log = logging.getLogger("proptrade.market")

#: the longest stretch of replay work between two looks at the stop flag and the account's events
SLICE_S = 0.01
#: what the agent does at the end of the recording (module docstring, "The end")
AT_END = ("stay", "stop")
#: the fastest finite speed: a day in well under a second is "max" anyway
MAX_SPEED = 1e9


def parse_speed(text: str | float) -> float:
    """``max`` (0.0: no pacing) or a finite factor > 0 of the recorded speed; ValueError otherwise."""
    if isinstance(text, str) and text.strip().lower() == "max":
        return 0.0
    try:
        value = float(text)
    except (TypeError, ValueError):
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= MAX_SPEED):
        raise ValueError(f"speed must be 'max' or a number > 0 (x the recorded speed), not {text!r}")
    return value


def _speed_arg(text: str) -> float:
    try:
        return parse_speed(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _clock_text(kind: str, ns: int) -> str:
    """A recorded time as a person reads it: LOBSTER's is after midnight, Binance's since the epoch (UTC)."""
    if kind == "lobster":
        s, ns = divmod(ns, 1_000_000_000)
        return f"{s // 3600:02d}:{s // 60 % 60:02d}:{s % 60:02d}.{ns // 1_000_000:03d}"
    return datetime.fromtimestamp(ns / 1e9, UTC).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + " UTC"


class _Progress:
    """What the agent says about its replay, and when."""

    def __init__(self, market: Market, speed: float, progress_s: float) -> None:
        self.market, self.speed, self.progress_s = market, speed, progress_s
        self.started = time.monotonic()  # the first message's start
        self.ended: float | None = None
        self.last_ns: int | None = None  # the recorded time of the last message sent
        self.behind_s = 0.0
        self._next = self.started + progress_s if progress_s > 0 else math.inf
        self._done_then = 0

    def elapsed(self) -> float:
        return (self.ended or time.monotonic()) - self.started

    def rate(self) -> float:
        return (self.market.done - 1) / max(self.elapsed(), 1e-9)  # the opening book is not a message

    def maybe_say(self, now: float) -> None:
        if now < self._next:
            return
        dt = now - (self._next - self.progress_s)
        self._next = now + self.progress_s
        m = self.market
        rate = (m.done - self._done_then) / max(dt, 1e-9)
        self._done_then = m.done
        total = f" of {m.total:,}" if m.total else ""
        where = f", recorded {_clock_text(m.kind, self.last_ns)}" if self.last_ns is not None else ""
        behind = f", {self.behind_s:.1f} s behind the recorded pace" if self.speed and self.behind_s > 0.5 else ""
        checks = ", ".join(f"{k} {v:,}" for k, v in m.counts().items() if k in ("mismatches", "anomalies"))
        log.info("market %s %s: %s%s messages%s, %s msg/s%s; %s", m.kind, m.symbol.name, f"{m.done:,}", total, where,
                 f"{rate:,.0f}", behind, checks)  # fmt: skip

    def summary(self, link: LinkEngine, finished: bool) -> dict[str, Any]:
        m = self.market
        return {"market": m.kind, "symbol": m.symbol.name, "finished": finished, "messages": m.done,
                "elapsed_s": round(self.elapsed(), 3), "msg_per_s": round(self.rate(), 1),
                "commands": link.commands, "round_trips": link.waits, "speed": self.speed or "max",
                **m.counts()}  # fmt: skip


def run_market(
    market: Market,
    link: LinkEngine,
    stop: threading.Event,
    *,
    speed: float = 0.0,
    at_end: str = "stay",
    delay_s: float = 0.0,
    progress_s: float = 2.0,
    out: TextIO = sys.stdout,
) -> int:
    """Builds the opening book, replays until the end of the recording or ``stop``, then stays or returns (module
    docstring). Returns the exit code: 0."""
    if at_end not in AT_END:
        raise ValueError(f"at_end must be one of {AT_END}, not {at_end!r}")
    opened = time.monotonic()
    market.open(link, link.client.client_id)
    log.info("market %s %s: opening book built in %.3f s (%d commands); replaying %s", market.kind,
             market.symbol.name, time.monotonic() - opened, link.commands,
             "as fast as it goes" if not speed else f"at {speed:g} x the recorded speed")  # fmt: skip
    idle = BackoffIdle(max_sleep_s=AGENT_MAX_SLEEP_S)
    start_ns = time.monotonic_ns() + int(delay_s * 1e9)
    while delay_s and time.monotonic_ns() < start_ns and not stop.is_set():
        work = _drain(market, link)
        idle.idle(work, (start_ns - time.monotonic_ns()) / 1e9)
    progress = _Progress(market, speed, progress_s)
    first_ns = market.next_ns()
    finished = first_ns is None
    while not stop.is_set() and not finished:
        work = _drain(market, link)
        now = time.monotonic_ns()
        slice_end = now + int(SLICE_S * 1e9)
        wait_s: float | None = None
        while True:
            ts = market.next_ns()
            if ts is None:
                finished = True
                break
            assert first_ns is not None
            due = start_ns + int((ts - first_ns) / speed) if speed else now
            if due > now:
                wait_s = (due - now) / 1e9
                break
            progress.behind_s = (now - due) / 1e9
            market.step()
            progress.last_ns = ts
            work += 1
            now = time.monotonic_ns()
            if now >= slice_end:
                break
        progress.maybe_say(now / 1e9)
        if not finished:
            idle.idle(work, wait_s)
    progress.ended = time.monotonic()
    for line in market.lines():
        log.info("%s", line)
    summary = progress.summary(link, finished)
    log.info("market %s %s: %s after %s messages in %.2f s (%s msg/s, %s commands)", market.kind, market.symbol.name,
             "replay finished" if finished else "stopped", f"{market.done:,}", progress.elapsed(),
             f"{progress.rate():,.0f}", f"{link.commands:,}")  # fmt: skip
    print(json.dumps(summary), file=out, flush=True)
    if finished and at_end == "stay" and not stop.is_set():
        log.info("market %s %s: the book stays as the recording left it until the platform stops", market.kind,
                 market.symbol.name)  # fmt: skip
        while not stop.is_set():
            idle.idle(_drain(market, link))
    return 0


def _drain(market: Market, link: LinkEngine) -> int:
    """Hands the account's events that came between commands to the replay; how many there were."""
    events = link.poll()
    if events:
        market.observe(events)
    return len(events)


def _check_units(client: Client, symbol: str, market: Market) -> None:
    """ValueError unless the engine's ``symbol`` has the recording's tick and lot."""
    sid = client.symbol_id(symbol)
    units = client.units(sid)
    want = market.symbol
    if symbol != want.name or units.tick != want.tick_size or units.lot != want.lot_size:
        raise ValueError(f"the engine's symbol {symbol} (tick {units.tick}, lot {units.lot}) is not the "
                         f"recording's {want.name} (tick {want.tick_size}, lot {want.lot_size})")  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m hotpath.agents.market", description=__doc__.split("\n\n")[0])
    add_common_arguments(parser)
    parser.add_argument("--source", required=True, help="lobster:MESSAGE[,ORDERBOOK] or binance:FILE")
    parser.add_argument("--tick", type=float, help="lobster: LOBSTER price units a tick (100); binance: the tick")
    parser.add_argument("--lot", type=float, help="binance: the quantity lot (0.001)")
    parser.add_argument("--speed", type=_speed_arg, default=0.0, help="max (default) or X times the recorded speed")
    parser.add_argument("--at-end", choices=AT_END, default="stay", help="at the end: keep the book, or stop the run")
    parser.add_argument("--delay", type=float, default=0.0, help="seconds between the opening book and the replay")
    parser.add_argument("--max-messages", type=int, help="replay only the first N messages")
    parser.add_argument("--progress-s", type=float, default=2.0, help="seconds between progress lines (0: none)")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format=f"%(asctime)s client {args.client} %(levelname)s %(message)s")
    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        return _run(args, stop)
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def _run(args: argparse.Namespace, stop: threading.Event) -> int:
    try:
        spec: MarketSpec = parse_market(args.source, symbol=args.symbol, tick=args.tick, lot=args.lot)
        market = open_market(spec, args.max_messages)
    except (ValueError, OSError) as e:  # LobsterError and BinanceError are ValueErrors
        log.error("%s", e)
        return 2
    endpoint = args.endpoint or control_endpoint(args.prefix)
    with Client(args.client, endpoint=endpoint) as client:
        try:
            _check_units(client, args.symbol, market)
            return run_market(market, LinkEngine(client), stop, speed=args.speed, at_end=args.at_end,
                              delay_s=args.delay, progress_s=args.progress_s)  # fmt: skip
        except ValueError as e:  # the recording turned out bad (a line past the first)
            log.error("%s", e)
            return 2
        except EngineGoneError as e:
            log.error("%s: stopping", e)
            return 1


if __name__ == "__main__":
    raise SystemExit(main())
