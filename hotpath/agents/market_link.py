"""``LinkEngine``: a client link to a running engine that answers as ``c_engine.Engine`` does, so the replays of
``c_engine`` (``LobsterReplay``, ``BinanceReplay``) drive the live engine with the code that drives an engine in
process.

Choices:

- **Which events.** ``execute`` and ``execute_batch`` return a command's events on the link: its own account's
  (ACK, REJECT, FILL, CANCELED, MODIFIED), never the market data (BOOK_DELTA and TRADE go to the market-data
  ring) nor other clients' events. That is what the replays' own-events mode expects (``c_engine/lobster.py``,
  "Own events only"; ``c_engine/binance.py``, "Sharing the engine").
- **Where a command ends.** The engine flags the last event of a command for its client LAST (docs/ENGINE.md,
  "Events"), and each command gives its client exactly one *response* first: the ACK of its op, its REJECT,
  its MODIFIED or its user CANCELED. A command ends at the first LAST at or after its response, and its events
  (response to LAST) come in one run: the engine routes a command's events before it runs the next. Events
  before the response, or after the LAST, belong to other clients' commands run in between (a strategy's
  order filling a book order; an operator's command on the account, whose ACK is flagged LAST too and so is
  never taken for a replay command's end). ``execute`` returns the command's own events only, as an engine in
  process does, and hands the others to ``observer`` in engine order: those before the response at once
  (they happened first), those after the LAST before the next command goes out; without an observer they
  wait for :meth:`LinkEngine.poll`, which also reads what comes while no command is out. ``execute_batch``
  returns everything it read, in engine order, up to its last command's end and what came with it: the
  Binance replay settles ACKs, then fills of its orders whoever caused them.
- **Time.** Every command goes out stamped with the live monotonic clock, as every command of the platform is
  (the gateway turns ``ts_ns`` into wall time; strategies read it as the live clock), whatever time the replay
  put in it (the recorded one): the recorded time sets the pace (``hotpath/agents/market.py``), not the stamps.
- **Waiting.** The engine busy-polls its rings, so a round trip takes microseconds. A wait looks at the event
  ring's depth (an empty look decodes nothing) with the back-off of every client (``BackoffIdle``: a few spins,
  then yields, then short sleeps) rather than a long spin: on a machine whose cores are shared, a process that
  spins out its time slice is the one the scheduler makes wait when the answer comes (measured here at load
  average 10: 68-95 us a round trip with the back-off, 105-140 us spinning 2 ms first). It checks every
  ``ALIVE_CHECK_S`` that the engine process exists (``EngineGoneError``) and this client is still attached
  (``DetachedError``), and gives up after ``timeout_s`` (``TimeoutError``).
- **Batches** go out in chunks of at most the command ring's capacity (``MAX_CHUNK`` at most), each chunk's
  events read before the next is sent: neither ring can then fill while its reader waits on the other, so a
  snapshot of two thousand levels cannot stall the engine on this client's event ring.
- **Book reads** (``l1``, ``l2``) are control-plane snapshots: they pause the engine's loop and are rate-limited,
  so they serve checks, never the replay's path.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from c_engine import EVENT_DTYPE, CancelReason, Command, Event, EventType, Level, Op

from ..client import Client, EngineGoneError
from ..idle import BackoffIdle

__all__ = ["ALIVE_CHECK_S", "LinkEngine", "MAX_CHUNK"]

#: how often a wait checks that the engine process still exists
ALIVE_CHECK_S = 0.005
#: the most commands of a batch in flight at once (fewer when the command ring is smaller)
MAX_CHUNK = 1024

_ACK, _REJECT, _MODIFIED = int(EventType.ACK), int(EventType.REJECT), int(EventType.MODIFIED)
_CANCELED, _USER = int(EventType.CANCELED), int(CancelReason.USER)
_OP_CANCEL, _OP_MODIFY = int(Op.CANCEL), int(Op.MODIFY)
_LAST = 1  # pt_event_flag PT_EVF_LAST
_NO_EVENTS = np.zeros(0, dtype=EVENT_DTYPE)


def _is_response(kind: int, code: int, op: int) -> bool:
    """Whether an event of type ``kind`` (with ``code``: acked op, cancel reason) answers a command of ``op``."""
    if kind == _REJECT:
        return True
    if kind == _ACK:
        return code == op
    if kind == _MODIFIED:
        return op == _OP_MODIFY
    return kind == _CANCELED and code == _USER and op == _OP_CANCEL


class LinkEngine:
    """One attached :class:`~hotpath.client.Client` seen as an engine (module docstring)."""

    def __init__(
        self, client: Client, *, timeout_s: float = 10.0, clock: Callable[[], int] = time.monotonic_ns
    ) -> None:
        self.client = client
        self.timeout_s = timeout_s
        self._clock = clock
        self.symbol_names = client.symbol_names
        capacity = int(client._rings.commands.capacity)  # the ring this process produces into
        self._events = client._rings.events  # looked at before each poll: an empty poll costs no decode
        self.chunk = max(1, min(MAX_CHUNK, capacity))
        self._idle = BackoffIdle()  # reset at each wait
        self.commands = 0  #: commands sent
        self.waits = 0  #: round trips waited for (one per command, one per batch chunk)
        #: called with other clients' events for this account that ``execute`` read (module docstring)
        self.observer: Callable[[list[Event]], None] | None = None
        self._others: list[Event] = []

    def symbol_id(self, symbol: str | int) -> int:
        return self.client.symbol_id(symbol)

    # --- commands ----------------------------------------------------------------------------------------

    def execute(self, cmd: Command) -> list[Event]:
        """Sends one command and returns its events on the link, response to LAST (module docstring)."""
        if self._others and self.observer is not None:
            self._hand_over()
        self.client.send(cmd._replace(ts_ns=self._clock()), self.timeout_s)
        self.commands += 1
        self.waits += 1
        op = int(cmd.op)
        got: list[Event] = []
        before: list[Event] = []
        answered = False
        waiting = _Wait(self)
        ring = self._events
        while True:
            if not ring.depth():
                waiting.idle()
                continue
            events = self.client.poll(256)
            waiting.reset()
            for i, e in enumerate(events):
                if not answered:
                    answered = _is_response(e.type, e.code, op)
                    if not answered:
                        before.append(e)
                        continue
                got.append(e)
                if e.flags & _LAST:
                    if before:
                        self._others += before
                        if self.observer is not None:
                            self._hand_over()
                    self._others += events[i + 1 :]
                    return got

    def _hand_over(self) -> None:
        others, self._others = self._others, []
        assert self.observer is not None
        self.observer(others)

    def execute_batch(self, commands: npt.NDArray[Any]) -> npt.NDArray[Any]:
        """Sends a ``COMMAND_DTYPE`` array in order, in chunks, and returns every event of the link up to the end
        of its last command (``EVENT_DTYPE``), other clients' fills of this account in between included."""
        n = len(commands)
        if n == 0:
            return _NO_EVENTS
        out = []
        for start in range(0, n, self.chunk):
            part = commands[start : start + self.chunk].copy()
            part["ts_ns"] = self._clock()
            self.client.send_batch(part, self.timeout_s)
            self.commands += len(part)
            self.waits += 1
            out.append(self._collect(part["op"].tolist()))
        return out[0] if len(out) == 1 else np.concatenate(out)

    def _collect(self, ops: Sequence[int]) -> npt.NDArray[Any]:
        """Events up to the end of the last of ``ops``' commands, sent in that order."""
        parts = []
        i, answered = 0, False
        waiting = _Wait(self)
        ring = self._events
        while i < len(ops):
            if not ring.depth():
                waiting.idle()
                continue
            rows = self.client.poll_batch(4096)
            waiting.reset()
            parts.append(rows)
            for kind, code, flags in zip(rows["type"].tolist(), rows["acked_op"].tolist(), rows["flags"].tolist(),
                                         strict=True):  # fmt: skip
                if i == len(ops):  # other clients' events after the last command's end: returned with it
                    break
                if not answered:
                    answered = _is_response(kind, code, ops[i])
                if answered and flags & _LAST:
                    i += 1
                    answered = False
        return parts[0] if len(parts) == 1 else np.concatenate(parts)

    def poll(self, max_count: int = 1024) -> list[Event]:
        """Other clients' events for this account (fills of its orders) not handed to ``observer`` yet, then
        whatever came while no command was out."""
        others, self._others = self._others, []
        return others + self.client.poll(max_count)

    # --- book reads (control-plane snapshots: for checks only) --------------------------------------------

    def l2(self, symbol: str | int, depth: int | None = None) -> dict[str, list[Level]]:
        reply = self.client.snapshot(symbol, depth if depth is not None else 1 << 16)
        return {side: [Level(int(p), int(q), int(c)) for p, q, c in reply[side]] for side in ("bids", "asks")}

    def l1(self, symbol: str | int) -> tuple[Level | None, Level | None]:
        book = self.l2(symbol, 1)
        return (book["bids"][0] if book["bids"] else None, book["asks"][0] if book["asks"] else None)


class _Wait:
    """One wait for events, backing off; the engine's exit, a detach and the timeout end it."""

    __slots__ = ("_link", "_start", "_next_check", "_idle")

    def __init__(self, link: LinkEngine) -> None:
        self._link = link
        self._start = time.monotonic()
        self._next_check = self._start + ALIVE_CHECK_S
        self._idle = link._idle
        self._idle.reset()

    def reset(self) -> None:
        self._idle.reset()

    def idle(self) -> None:
        now = time.monotonic()
        if now >= self._next_check:
            self._next_check = now + ALIVE_CHECK_S
            client = self._link.client
            client.poll(0)  # DetachedError once the engine has detached this client: nothing would come
            if not client.engine_alive():
                raise EngineGoneError(f"client {client.client_id}: the engine (pid {client.engine_pid}) has exited")
            if now - self._start > self._link.timeout_s:
                raise TimeoutError(f"client {client.client_id}: a command's events did not come within "
                                   f"{self._link.timeout_s} s")  # fmt: skip
        self._idle.idle(0)
