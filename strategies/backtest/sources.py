"""Market sources: recorded or synthetic market flow, replayed into the backtest's engine.

A source owns the market's side of the engine: it adds its symbols, may seed the book, and applies its
messages in time order when the venue asks for everything up to a time (``run_until``). The strategy's orders
rest in the same engine book and trade against this flow by the engine's own price-time priority. Sources use
client ids below :data:`FIRST_STRATEGY_CLIENT`, so a strategy's id never collides with the market's.

- :class:`CommandSource`: engine commands as recorded (the platform's journal, ``hotpath.journal``'s
  ``read_commands``, or a hand-built scenario), each at its own ``ts_ns``: a live run replayed exactly.
- :class:`SyntheticSource`: the seeded synthetic flow (``c_engine.flow.SyntheticFlow``: passive limits near a
  drifting mid, cancels, marketable IOC and market orders) with exponential gaps between messages, generated
  in blocks and executed a block slice at a time with ``Engine.execute_batch``.
"""

from __future__ import annotations

import bisect
from typing import Protocol

import numpy as np
import numpy.typing as npt

from c_engine import CLIENT_NONE, COMMAND_DTYPE, EVENT_DTYPE, Engine, SymbolConfig
from c_engine.flow import SyntheticFlow

__all__ = ["CommandSource", "FIRST_STRATEGY_CLIENT", "MarketSource", "SyntheticSource"]

#: sources use client ids below this; strategies at or above it
FIRST_STRATEGY_CLIENT = 100


class MarketSource(Protocol):
    name: str

    def symbols(self) -> list[SymbolConfig]:
        """The symbols the source trades, to add to the engine in this order."""
        ...

    def open(self, engine: Engine) -> None:
        """Prepares the engine (the symbols are added): e.g. seeds the book as the recording starts."""
        ...

    def peek_ns(self) -> int | None:
        """The time of the next message, None at the end."""
        ...

    def run_until(self, engine: Engine, limit_ns: int) -> None:
        """Applies every message with a time at or before ``limit_ns`` (at least the next one)."""
        ...

    # Optional: ``observe(events: list[Event]) -> None``, called with the events of each of the strategy's
    # commands, for a source that keeps its own view of the engine (the LOBSTER replay does).


class SyntheticSource:
    """``messages`` commands of seeded synthetic flow on one symbol, ``mean_gap_ns`` apart on average."""

    name = "synthetic"

    def __init__(
        self,
        messages: int,
        *,
        seed: int = 1,
        symbol: SymbolConfig | None = None,
        mean_gap_ns: int = 1_000_000,
        start_ns: int = 0,
        block: int = 8192,
        mid: int = 10_000,
    ) -> None:
        self._symbol = symbol or SymbolConfig("SYN", tick_size=0.01, lot_size=1, max_price_ticks=1_000_000)
        self.remaining = messages
        self.mean_gap_ns = mean_gap_ns
        self._flow = SyntheticFlow(0, seed=seed, mid=mid, n_clients=8)
        self._gaps = np.random.default_rng(seed + 7919)
        self._block_size = block
        self._block: npt.NDArray[np.void] = np.zeros(0, dtype=COMMAND_DTYPE)
        # The block's times as a Python list: the venue asks for the next time and cuts the block at a time
        # limit once per strategy reaction, and a list read and a bisect cost a tenth of numpy's scalar calls.
        self._times: list[int] = []
        self._pos = 0
        self._events: list[bytes | bytearray] = []  # each run's events, wire bytes
        self._clock = start_ns
        self.executed = 0

    def symbols(self) -> list[SymbolConfig]:
        return [self._symbol]

    def open(self, engine: Engine) -> None:
        self._flow.symbol_id = engine.symbol_id(self._symbol.name)

    def _refill(self) -> bool:
        if self._pos < len(self._block):
            return True
        if self._events:  # the flow cancels only orders it saw rest: show it the block's events at once
            # (kept and joined as bytes: numpy cannot concatenate a dtype with overlapping fields, the wire's
            # unions, and a view per run cost more than the run)
            self._flow.observe(np.frombuffer(b"".join(self._events), dtype=EVENT_DTYPE))
            self._events.clear()
        n = min(self._block_size, self.remaining)
        if n <= 0:
            return False
        self.remaining -= n
        block = self._flow.next_batch(n, 0)
        gaps = self._gaps.exponential(self.mean_gap_ns, size=n).astype(np.int64) + 1
        times = self._clock + np.cumsum(gaps)
        self._clock = int(times[-1])
        block["ts_ns"] = times
        self._block, self._times, self._pos = block, times.tolist(), 0
        return True

    def peek_ns(self) -> int | None:
        if self._pos >= len(self._times) and not self._refill():
            return None
        return self._times[self._pos]

    def _end(self, limit_ns: int) -> int:
        """The block position after the last message at or before ``limit_ns`` (at least the next one)."""
        return bisect.bisect_right(self._times, limit_ns, self._pos + 1)  # the search starts past the next one

    def run_until(self, engine: Engine, limit_ns: int) -> None:
        if not self._refill():
            return
        end = self._end(limit_ns)
        self._events.append(engine.execute_batch(self._block[self._pos : end]).tobytes())
        self.executed += end - self._pos
        self._pos = end

    def run_watched(self, engine: Engine, limit_ns: int, watch_symbol: int, watch_client: int) -> None:
        """``run_until``, but stops after the first command that concerns the watcher
        (``Engine.execute_until_watched``)."""
        if not self._refill():
            return
        end = self._end(limit_ns)
        done, _, events = engine.execute_until_watched_raw(self._block, watch_symbol, watch_client, self._pos, end)
        self._events.append(events)
        self.executed += done
        self._pos += done


class CommandSource:
    """Recorded engine commands (``COMMAND_DTYPE``) on ``symbols``, replayed in their recorded order.

    A journal is in the order the engine took the commands, but each command's ``ts_ns`` is its sender's clock,
    so times may step back between senders: the replay time of a command is the largest ``ts_ns`` so far (the
    order is the record's). The commands' client ids must be below ``FIRST_STRATEGY_CLIENT`` (operator
    commands, client ``CLIENT_NONE``, aside); their symbol ids are the positions of ``symbols``.
    """

    name = "commands"

    def __init__(self, symbols: list[SymbolConfig], commands: npt.NDArray[np.void]) -> None:
        clients = commands["client_id"]
        clients = clients[clients != CLIENT_NONE]
        if len(clients) and int(clients.max()) >= FIRST_STRATEGY_CLIENT:
            raise ValueError(f"recorded commands use client ids below {FIRST_STRATEGY_CLIENT}, the strategies' start")
        times = np.maximum.accumulate(commands["ts_ns"].astype(np.int64)) if len(commands) else np.zeros(0, np.int64)
        commands = commands.copy()
        commands["ts_ns"] = times
        self._symbols = symbols
        self._commands = commands
        self._times = times
        self._pos = 0
        self.executed = 0
        self.total = len(commands)

    def symbols(self) -> list[SymbolConfig]:
        return list(self._symbols)

    def open(self, engine: Engine) -> None:
        pass

    def peek_ns(self) -> int | None:
        return int(self._times[self._pos]) if self._pos < len(self._times) else None

    def run_until(self, engine: Engine, limit_ns: int) -> None:
        if self._pos >= len(self._times):
            return
        end = max(self._pos + 1, int(np.searchsorted(self._times, limit_ns, side="right")))
        engine.execute_batch(self._commands[self._pos : end])
        self.executed += end - self._pos
        self._pos = end

    def run_watched(self, engine: Engine, limit_ns: int, watch_symbol: int, watch_client: int) -> None:
        if self._pos >= len(self._times):
            return
        end = max(self._pos + 1, int(np.searchsorted(self._times, limit_ns, side="right")))
        done, _, _ = engine.execute_until_watched_raw(self._commands, watch_symbol, watch_client, self._pos, end)
        self.executed += done
        self._pos += done
