"""``EngineClient``: one client's side of its shared-memory ring pair with the engine process.

Commands go in on the command ring (this side produces), events come out on the event ring (this side
consumes). Nothing here spins: full and empty rings are waited on with back-off (``BackoffIdle``). It imports
nothing of the engine process: ``hotpath.Client`` is built on it.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from c_engine import EVENT_DTYPE, Command, Event

from .bcast import SharedMemoryBroadcast
from .idle import BackoffIdle
from .names import command_ring_name, event_ring_name, market_data_name
from .ring import SharedMemoryRing

__all__ = ["EngineClient"]


class EngineClient:
    """One client's ring pair: commands in (this side produces), events out (this side consumes).

    The engine overwrites every command's ``client_id`` with this client's id, whatever ``submit`` sends.
    """

    def __init__(self, prefix: str, client_id: int, timeout_s: float = 10.0) -> None:
        """A static client of engine run ``prefix`` (one of its config's ``clients``), once the loop runs."""
        from .engine_control import EngineControl  # the control block's layout is the loop's

        EngineControl(prefix, timeout_s).close()  # waits until the segments exist and the loop runs
        self._open(client_id, command_ring_name(prefix, client_id), event_ring_name(prefix, client_id),
                   market_data_name(prefix))  # fmt: skip

    @classmethod
    def from_names(cls, client_id: int, command_ring: str, event_ring: str, market_data: str) -> EngineClient:
        """The ring pair a control-plane attach handed back (``hotpath.client.Client`` uses this)."""
        self = cls.__new__(cls)
        self._open(client_id, command_ring, event_ring, market_data)
        return self

    def _open(self, client_id: int, command_ring: str, event_ring: str, market_data: str) -> None:
        self.client_id = client_id
        self.market_data_name = market_data
        self.commands = SharedMemoryRing.attach(command_ring)
        try:
            self.events = SharedMemoryRing.attach(event_ring, dtype=EVENT_DTYPE)
        except BaseException:
            self.commands.close()
            raise

    def submit(self, cmd: Command | bytes, timeout_s: float = 5.0, check: Callable[[], None] | None = None) -> None:
        """Queues one command, backing off while the ring is full; RingFullError after ``timeout_s``. ``check``
        is called while waiting; what it raises ends the wait (``Ring.push_wait``)."""
        self.commands.push_wait(cmd, timeout_s, check)

    def poll_events(self, max_count: int = 256) -> list[Event]:
        """Whatever events are there (up to ``max_count``), without waiting."""
        batch = self.events.pop_batch(max_count)
        return Event.unpack_all(batch.tobytes()) if len(batch) else []

    def wait_events(self, n: int, timeout_s: float = 5.0, check: Callable[[], None] | None = None) -> list[Event]:
        """Exactly ``n`` events (fewer are left in the ring if more came); TimeoutError if they do not come.
        ``check`` is called while waiting; what it raises ends the wait."""
        got: list[Event] = []
        idle = BackoffIdle()
        deadline = time.monotonic() + timeout_s
        while len(got) < n:
            new = self.poll_events(n - len(got))
            got += new
            if not new:
                if time.monotonic() >= deadline:
                    raise TimeoutError(f"client {self.client_id}: {len(got)} of {n} events after {timeout_s} s")
                if check is not None:
                    check()
                idle.idle(0)
            else:
                idle.reset()
        return got

    def market_data(self) -> SharedMemoryBroadcast:
        """Attaches the engine's market-data ring (its readers start at the newest message)."""
        return SharedMemoryBroadcast.attach(self.market_data_name)

    def close(self) -> None:
        self.commands.close()
        self.events.close()

    def __enter__(self) -> EngineClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
