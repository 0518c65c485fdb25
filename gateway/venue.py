"""What the gateway needs of the engine, and its two implementations.

:class:`Venue` is the whole contract: the symbols with their units, the accounts the gateway acts for,
``execute`` (one command in, every event of it for the link up to the one flagged LAST), ``events()`` (every
event of the link in engine order: responses, a resting order's fills, kill-switch cancels), the market-data
stream (``read_market_data``, which raises :class:`MarketDataGap` when the reader was lapped) with
``snapshot`` to resync from, and ``engine_stats``.

- :class:`LiveVenue`: the running platform. One multi-account ``hotpath.AsyncClient`` link (attached as the
  first account, granted the rest; its drain does not spin for a response: :data:`LINK_SPIN_S`) and a reader of
  the engine's market-data ring. Nothing here blocks the
  event loop; the only control-plane calls are ``snapshot`` (at start and after a gap) and ``stats`` (which
  does not pause the matching loop).
- :class:`EngineVenue`: an in-process ``c_engine.Engine``, for unit tests and examples without processes. It
  routes events as the engine loop does: a granted account's events to the link, book deltas and trades to the
  market data.
"""

from __future__ import annotations

import asyncio
import collections
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol

from c_engine import Command, Event, EventType, SymbolConfig, Units

if TYPE_CHECKING:
    from c_engine import Engine
    from hotpath import AsyncClient, BroadcastReader, SharedMemoryBroadcast

__all__ = ["EngineVenue", "LiveVenue", "MarketDataGap", "Snapshot", "Venue"]

_DELTA, _TRADE = int(EventType.BOOK_DELTA), int(EventType.TRADE)
#: how long the link's drain polls the event ring for an owed response before it sleeps 1 ms at a time: not at
#: all. A command sent wakes the drain, and by the time the loop has run it (tens of microseconds: the wake goes
#: through ``wait_for``'s task) the engine, busy on its own core, has answered in a few. Under concurrent load a
#: spin window never closes (each order opens the next), so every loop turn becomes a non-blocking poll that takes
#: the core the gateway shares with its HTTP clients. Measured with bench/gateway_bench.py on a 2-core machine:
#: at 0.2 ms the gateway used 690 us of CPU per order under 16 connections (0.71x the bare app's throughput); at
#: 20 us, the same; at 0, 390-450 us (0.83-0.92x), with the sequential round trip unchanged.
LINK_SPIN_S = 0.0


class MarketDataGap(Exception):
    """The market-data reader was lapped: ``lost`` messages are gone; resync from snapshots."""

    def __init__(self, lost: int) -> None:
        super().__init__(f"market data lost: {lost} messages")
        self.lost = lost


class Snapshot(NamedTuple):
    """A book as the engine has it: the engine seq it includes, and levels [price ticks, lots, orders]."""

    engine_seq: int
    bids: Sequence[Sequence[int]]
    asks: Sequence[Sequence[int]]


class Venue(Protocol):
    """The engine, as the gateway uses it (see the module docstring)."""

    #: symbol name -> engine symbol id
    symbols: Mapping[str, int]
    #: account name -> engine client id, every account the gateway acts for
    accounts: Mapping[str, int]

    def units(self, symbol: str | int) -> Units: ...

    async def execute(self, cmd: Command, timeout_s: float = 5.0) -> list[Event]: ...

    def events(self) -> AsyncIterator[Event]: ...

    def read_market_data(self, max_count: int = 4096) -> list[Event]: ...

    async def snapshot(self, symbol_id: int) -> Snapshot: ...

    async def engine_stats(self) -> dict[str, Any]: ...

    async def close(self) -> None: ...


class LiveVenue:
    """The running platform through one multi-account link (see the module docstring)."""

    def __init__(self, client: AsyncClient, md: SharedMemoryBroadcast) -> None:
        """Use :meth:`connect`."""
        self._client = client
        self._md = md
        self._reader: BroadcastReader = md.reader()
        self.symbols: Mapping[str, int] = dict(client.symbols)
        self.accounts: Mapping[str, int] = dict(client.accounts)

    @classmethod
    async def connect(cls, prefix: str, accounts: Sequence[str], endpoint: str | None = None,
                      timeout_s: float = 10.0) -> LiveVenue:  # fmt: skip
        """Attaches one link acting for ``accounts`` (the first is the link's own) to engine run ``prefix``."""
        from hotpath import AsyncClient, SharedMemoryBroadcast
        from hotpath.names import market_data_name

        if not accounts:
            raise ValueError("the gateway needs at least one account")
        client = await AsyncClient.connect(accounts[0], prefix=None if endpoint else prefix, endpoint=endpoint,
                                           accounts=list(accounts[1:]), timeout_s=timeout_s,
                                           spin_s=LINK_SPIN_S)  # fmt: skip
        try:
            md = SharedMemoryBroadcast.attach(market_data_name(prefix))
        except BaseException:
            await client.close()
            raise
        return cls(client, md)

    def units(self, symbol: str | int) -> Units:
        return self._client.units(symbol)

    async def execute(self, cmd: Command, timeout_s: float = 5.0) -> list[Event]:
        return await self._client.execute(cmd, timeout_s)

    def events(self) -> AsyncIterator[Event]:
        return self._client.events()

    def read_market_data(self, max_count: int = 4096) -> list[Event]:
        from hotpath import Overrun

        try:
            rows = self._reader.read_batch(max_count)
        except Overrun as e:
            self._reader.resync()
            raise MarketDataGap(e.lost) from None
        return Event.unpack_all(rows.tobytes()) if len(rows) else []

    async def snapshot(self, symbol_id: int) -> Snapshot:
        reply = await self._client.request("snapshot", symbol=symbol_id, depth=1 << 16)
        return Snapshot(int(reply["engine_seq"]), reply["bids"], reply["asks"])

    async def engine_stats(self) -> dict[str, Any]:
        return await self._client.request("stats")

    async def close(self) -> None:
        """Detaches the link (the engine cancels the accounts' resting orders) and unmaps the rings."""
        try:
            await self._client.close()
        finally:
            self._md.close()


class EngineVenue:
    """An in-process engine acting as the platform (see the module docstring). ``external`` runs a command of
    someone else (an account not granted to the gateway), as another process on the platform would."""

    def __init__(self, engine: Engine, symbols: Sequence[SymbolConfig], accounts: Mapping[str, int]) -> None:
        self.engine = engine
        self.symbols: Mapping[str, int] = {cfg.name: engine.add_symbol(cfg) for cfg in symbols}
        self.accounts: Mapping[str, int] = dict(accounts)
        self._granted = set(self.accounts.values())
        self._events: collections.deque[Event] = collections.deque()
        self._md: collections.deque[Event] = collections.deque()
        self._ready = asyncio.Event()
        self._closed = False
        self.gap: int = 0  #: set > 0 to make the next ``read_market_data`` report that many lost messages

    def units(self, symbol: str | int) -> Units:
        return self.engine.units(symbol)

    def _route(self, events: list[Event]) -> None:
        for event in events:
            if event.type in (_DELTA, _TRADE):
                self._md.append(event)
            elif event.client_id in self._granted:
                self._events.append(event)
        self._ready.set()

    async def execute(self, cmd: Command, timeout_s: float = 5.0) -> list[Event]:
        if self._closed:
            raise ConnectionError("the venue is closed")
        events = self.engine.execute(cmd)
        self._route(events)
        own = []
        for event in events:
            if event.client_id == cmd.client_id and event.type not in (_DELTA, _TRADE):
                own.append(event)
                if event.last:
                    break
        await asyncio.sleep(0)  # as a real link: the answer comes back through the event loop
        return own

    def external(self, cmd: Command) -> list[Event]:
        """Runs a command of an account the gateway does not act for; its effects reach the gateway as on the
        platform (a fill of a gateway order, market data)."""
        events = self.engine.execute(cmd)
        self._route(events)
        return events

    async def events(self) -> AsyncIterator[Event]:
        while True:
            while self._events:
                yield self._events.popleft()
            if self._closed:
                return
            self._ready.clear()
            await self._ready.wait()

    def read_market_data(self, max_count: int = 4096) -> list[Event]:
        if self.gap:
            lost, self.gap = self.gap, 0
            self._md.clear()
            raise MarketDataGap(lost)
        out: list[Event] = []
        while self._md and len(out) < max_count:
            out.append(self._md.popleft())
        return out

    async def snapshot(self, symbol_id: int) -> Snapshot:
        book = self.engine.l2(symbol_id)
        seq = self.engine.stats()["events"]
        return Snapshot(seq, [tuple(level) for level in book["bids"]], [tuple(level) for level in book["asks"]])

    async def engine_stats(self) -> dict[str, Any]:
        return dict(self.engine.stats())

    async def close(self) -> None:
        if not self._closed:
            self._closed = True
            for cid in sorted(self._granted):  # cancel on disconnect, as the engine process does for a link
                self._route(self.engine.execute(Command.mass_cancel(cid, disconnect=True)))
            self._ready.set()
