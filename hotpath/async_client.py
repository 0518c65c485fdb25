"""``AsyncClient``: the asyncio face of a client's link to the engine, for the gateway and asyncio strategies.

::

    async with await AsyncClient.connect("mm_1", prefix=run_prefix) as client:
        ack = await client.submit("SIM", "buy", 2, 99.5)       # the ACK or REJECT of this order
        if ack.type == EventType.ACK:
            done = await client.cancel(ack.order_id)          # its CANCELED, or a REJECT
        async for event in client.events():                   # every event of the link, in engine order
            ...

One task (the *drain*) reads the event ring. Each command of a link produces exactly one *response* event
for its sender, and the engine runs a link's commands in order, so the responses come back in the order the
commands went out: the ACK or REJECT of a new order, the MODIFIED or REJECT of a modify, the CANCELED (reason
USER) or REJECT of a cancel, the ACK or REJECT of a mass cancel. The drain resolves the oldest waiting request
with each response; every event (responses included) also goes to :meth:`events`. :meth:`execute` waits for
more: every event of its command for this link, up to the one the engine flagged LAST (docs/ENGINE.md,
"Events"), so a caller knows that an order which took fills and rested has nothing more coming now. No thread
per client: the heartbeat is a task, control requests use ``zmq.asyncio``.

Waiting never blocks the event loop. A full command ring is back-pressure: ``submit`` awaits, backing off,
until there is room (``RingFullError`` after ``timeout_s``). While a request is waiting for its response the
drain polls the ring at every turn of the loop for ``spin_s`` (a response takes microseconds), then sleeps
1 ms at a time; with nothing waiting it sleeps up to ``max_idle_s``, so an idle client costs little CPU and
an unsolicited event (a fill of a resting order) waits at most that long. The drain moves every event off the
shared ring into the process at once, so the engine never sees this client as a slow consumer while its
event loop runs; events nobody has read from :meth:`events` are buffered (``buffered`` counts them).

If the engine process exits, every waiting request and the event iterator raise ``EngineGoneError``; if the
engine detaches this client (an operator, a missed heartbeat, a slow consumer), ``DetachedError``, learnt at the
next heartbeat.
"""

from __future__ import annotations

import asyncio
import collections
import logging
import os
import time
from collections.abc import AsyncIterator, Sequence
from typing import Any, NamedTuple

from c_engine import CancelReason, Command, Event, EventType, Op

from .attachment import Attachment, DetachedError, EngineGoneError, resolve_endpoint
from .control_client import AsyncControlClient, ControlError
from .ring import RingFullError

__all__ = ["AsyncClient"]

log = logging.getLogger("proptrade.async_client")

_ACK, _REJECT, _MODIFIED = int(EventType.ACK), int(EventType.REJECT), int(EventType.MODIFIED)
_CANCELED, _USER = int(EventType.CANCELED), int(CancelReason.USER)
_OP_CANCEL, _OP_MODIFY = int(Op.CANCEL), int(Op.MODIFY)
#: how often the drain checks that the engine process still exists while it waits
_ALIVE_CHECK_S = 0.05


class _Pending(NamedTuple):
    """A request owed its response: its command's op; ``events`` collects its events when it wants them all."""

    future: asyncio.Future[Any]
    op: int
    events: list[Event] | None


def _is_response(event: Event, op: int) -> bool:
    """Whether ``event`` is the response to a command of ``op`` (see the module docstring). An ACK must name that
    op: an operator's kill reset of this account, say, is acknowledged on its ring without being asked for."""
    kind = event.type
    if kind == _REJECT:
        return True
    if kind == _ACK:
        return event.acked_op == op
    if kind == _MODIFIED:
        return op == _OP_MODIFY
    return kind == _CANCELED and event.code == _USER and op == _OP_CANCEL


class AsyncClient(Attachment):
    """One account's link to a running engine, driven by asyncio (see the module docstring). Make it with
    :meth:`connect`; one event loop uses it."""

    def __init__(self, endpoint: str, ctl: AsyncControlClient, reply: dict[str, Any], *, heartbeat: bool,
                 spin_s: float, max_idle_s: float) -> None:  # fmt: skip
        """Use :meth:`connect`: it attaches first."""
        super().__init__(reply)
        self.endpoint = endpoint
        self.spin_s = spin_s
        self.max_idle_s = max_idle_s
        self._ctl = ctl
        # Requests owed a response, oldest first; each future wants the response alone or, with a list, every
        # event of its command for this link up to the LAST one (execute). _collecting is the one filling now.
        self._waiting: collections.deque[_Pending] = collections.deque()
        self._collecting: _Pending | None = None
        self._events: collections.deque[Event] = collections.deque()
        self._event_ready = asyncio.Event()
        self._work = asyncio.Event()  # set by a command sent: the drain stops sleeping
        self._gone: EngineGoneError | DetachedError | None = None
        self._closed = False
        self._tasks: set[asyncio.Task[None]] = set()
        self._start(self._drain(), "drain")
        if heartbeat and self.heartbeat_timeout_s > 0 and not self.static:
            self._start(self._heartbeat(self.heartbeat_timeout_s / 4), "heartbeat")

    @classmethod
    async def connect(
        cls,
        account: str | int,
        *,
        prefix: str | None = None,
        endpoint: str | None = None,
        accounts: Sequence[str | int] = (),
        timeout_s: float = 10.0,
        heartbeat: bool = True,
        spin_s: float = 0.002,
        max_idle_s: float = 0.005,
    ) -> AsyncClient:
        """Attaches ``account`` (a name of the platform's accounts, or a client id) to the engine run ``prefix``
        (or at ``endpoint``); with ``accounts``, as a link that may also act for each of them (the gateway's
        one link for all its accounts). The errors of ``Client``."""
        endpoint = resolve_endpoint(prefix, endpoint)
        ctl = AsyncControlClient(endpoint, timeout_s)
        try:
            reply = await ctl.request("attach", client=account, accounts=list(accounts), pid=os.getpid())
        except BaseException:
            ctl.close()
            raise
        client = cls(endpoint, ctl, reply, heartbeat=heartbeat, spin_s=spin_s, max_idle_s=max_idle_s)
        if reply.get("unlink_rings"):  # mapped: the engine removes their names, no other process can open them
            try:
                await ctl.request("opened", token=client.token)
            except (TimeoutError, ControlError) as e:
                log.warning("client %d: the ring names stay until the detach: %s", client.client_id, e)
        return client

    def _start(self, coro: Any, name: str) -> None:
        task = asyncio.get_running_loop().create_task(coro, name=f"{name}-{self.client_id}")
        self._tasks.add(task)  # a reference until it ends: the loop keeps only weak ones
        task.add_done_callback(self._tasks.discard)

    # --- commands ----------------------------------------------------------------------------------------

    async def submit(
        self,
        symbol: str | int,
        side: str,
        qty: float,
        price: float | None = None,
        *,
        type: str = "limit",
        tif: str | None = None,
        post_only: bool = False,
        stp: str = "NONE",
        cloid: int | None = None,
        account: str | int | None = None,
        timeout_s: float = 5.0,
    ) -> Event:
        """A new order in human units; returns its ACK or REJECT (which echo ``cloid``: given, or the next of this
        link's own sequence). ``tif`` defaults to GTC for a limit, IOC for a market. ``account``: for a link
        granted several accounts, the one it acts for (default: its own)."""
        cmd, _ = self.new_order(symbol, side, qty, price, type, tif, post_only, stp, cloid, account)
        return await self.request_command(cmd, timeout_s)

    async def cancel(self, order_id: int, *, account: str | int | None = None, timeout_s: float = 5.0) -> Event:
        """Cancels an order; returns its CANCELED (reason USER) or a REJECT."""
        return await self.request_command(self.cancel_command(order_id, account), timeout_s)

    async def modify(self, order_id: int, *, symbol: str | int, qty: float | None = None, price: float | None = None,
                     account: str | int | None = None, timeout_s: float = 5.0) -> Event:  # fmt: skip
        """Changes an order's open size and/or price (``symbol`` gives the units); returns MODIFIED or REJECT."""
        return await self.request_command(self.modify_command(order_id, symbol, qty, price, account), timeout_s)

    async def mass_cancel(self, symbol: str | int | None = None, *, account: str | int | None = None,
                          timeout_s: float = 5.0) -> Event:  # fmt: skip
        """Cancels every resting order (of ``symbol``, or all); returns the ACK (qty = orders cancelled)."""
        return await self.request_command(self.mass_cancel_command(symbol, account), timeout_s)

    async def request_command(self, cmd: Command | bytes, timeout_s: float = 5.0) -> Event:
        """Sends one command in wire units and returns its response event (see the module docstring)."""
        pending = await self._request(cmd, timeout_s, collect=False)
        return await pending.future  # type: ignore[no-any-return]

    async def execute(self, cmd: Command | bytes, timeout_s: float = 5.0) -> list[Event]:
        """Sends one command in wire units and returns every event of it for this link: its response first, up
        to the one flagged LAST (``Event.last``), after which nothing more of that command comes: an order's
        ACK and the fills it took before it rested, say. (Those events reach :meth:`events` too.)"""
        pending = await self._request(cmd, timeout_s, collect=True)
        return await pending.future  # type: ignore[no-any-return]

    async def _request(self, cmd: Command | bytes, timeout_s: float, collect: bool) -> _Pending:
        self._check_open()
        op = cmd[0] if isinstance(cmd, bytes) else cmd.op  # byte 0 of the wire command
        pending = _Pending(asyncio.get_running_loop().create_future(), op, [] if collect else None)
        await self.send(cmd, timeout_s)
        self._waiting.append(pending)  # after the push: only a command in the ring is owed a response
        return pending

    async def send(self, cmd: Command | bytes, timeout_s: float = 5.0) -> None:
        """Queues one command without waiting for its response; awaits (backing off) while the ring is full."""
        self._check_open()
        commands = self._rings.commands
        if not commands.push(cmd):
            deadline = time.monotonic() + timeout_s
            pause_s = 0.0
            while not commands.push(cmd):
                self._check_open()
                if time.monotonic() >= deadline:
                    raise RingFullError(f"client {self.client_id}: command ring still full after {timeout_s} s")
                await asyncio.sleep(pause_s)
                pause_s = min(max(pause_s * 2, 1e-4), 0.01)
        self._work.set()

    def _check_open(self) -> None:
        if self._gone is not None:
            raise self._gone
        if self._closed:
            raise RuntimeError(f"client {self.client_id} is closed")

    # --- events ------------------------------------------------------------------------------------------

    @property
    def buffered(self) -> int:
        """Events received that :meth:`events` has not handed out yet."""
        return len(self._events)

    async def events(self) -> AsyncIterator[Event]:
        """Every event of this link, in engine order; ends when the client closes, EngineGoneError if the engine
        exits. One consumer at a time."""
        while True:
            while self._events:
                yield self._events.popleft()
            if self._gone is not None:
                raise self._gone
            if self._closed:
                return
            self._event_ready.clear()
            await self._event_ready.wait()

    async def _drain(self) -> None:
        """Moves events off the ring, resolves responses, wakes the event iterator (see the module docstring)."""
        ring = self._rings.events
        loop = asyncio.get_running_loop()
        spin_until = 0.0
        next_alive_check = 0.0
        sleep_s = 0.0
        try:
            while not self._closed:
                raws = []
                raw = ring.pop()
                while raw is not None:
                    raws.append(raw)
                    raw = ring.pop() if len(raws) < 4096 else None
                now = loop.time()
                if raws:
                    for event in Event.unpack_all(b"".join(raws)):
                        self._dispatch(event)
                    self._event_ready.set()
                    sleep_s = 0.0
                    # Spin on while a response is owed; once every one is in, stop at once: a spin left to
                    # run out takes the core from whatever shares it (on 2 cores, one the engine's, that is
                    # the process that sent this client its next request).
                    spin_until = now + self.spin_s if self._owed() else 0.0
                    await asyncio.sleep(0)
                    continue
                if now >= next_alive_check:
                    next_alive_check = now + _ALIVE_CHECK_S
                    if not self.engine_alive():
                        raise EngineGoneError(f"client {self.client_id}: the engine (pid {self.engine_pid}) has exited")
                if self._work.is_set():  # a command just went out: its response takes microseconds
                    self._work.clear()
                    spin_until = now + self.spin_s
                if now < spin_until:
                    await asyncio.sleep(0)
                    continue
                # Nothing for a while: sleep, longer while nothing is owed, until a command goes out.
                sleep_s = 0.001 if self._owed() else min(max(sleep_s * 2, 0.001), self.max_idle_s)
                try:
                    await asyncio.wait_for(self._work.wait(), sleep_s)
                except TimeoutError:
                    pass
        except EngineGoneError as gone:
            self._fail(gone)
        except asyncio.CancelledError:
            raise
        except BaseException as e:  # a bug: the client cannot go on, and its callers must hear of it
            log.exception("client %d: event drain failed", self.client_id)
            self._fail(EngineGoneError(f"client {self.client_id}: event drain failed: {e!r}"))

    def _dispatch(self, event: Event) -> None:
        self._events.append(event)
        pending = self._collecting
        if pending is None:
            if not self._waiting or not _is_response(event, self._waiting[0].op):
                return  # unsolicited: a fill of a resting order, a kill switch's cancel, an operator's ACK
            pending = self._waiting.popleft()  # exactly one per response, a request given up on included
            if pending.events is None:
                if not pending.future.done():
                    pending.future.set_result(event)
                return
        assert pending.events is not None
        pending.events.append(event)
        if event.last:
            self._collecting = None
            if not pending.future.done():
                pending.future.set_result(pending.events)
        else:
            self._collecting = pending

    def _owed(self) -> bool:
        """Whether a request still waits for events of its command."""
        return bool(self._waiting) or self._collecting is not None

    def _fail(self, error: EngineGoneError | DetachedError) -> None:
        self._gone = error
        owed = [*self._waiting, *([self._collecting] if self._collecting is not None else [])]
        self._waiting.clear()
        self._collecting = None
        for pending in owed:
            if not pending.future.done():
                pending.future.set_exception(error)
        self._event_ready.set()

    async def _heartbeat(self, interval_s: float) -> None:
        ctl = AsyncControlClient(self.endpoint, timeout_s=max(interval_s, 0.5))
        try:
            while not self._closed:
                await asyncio.sleep(interval_s)
                try:
                    await ctl.request("heartbeat", client=self.client_id, token=self.token)
                except ControlError as e:
                    if e.code == "NOT_ATTACHED":  # detached by the engine: every waiter and the next call hear it
                        self._fail(DetachedError(f"client {self.client_id} was detached by the engine ({e.message})"))
                        return
                    log.warning("client %d: heartbeat failed: %s", self.client_id, e)
                except TimeoutError as e:
                    log.warning("client %d: heartbeat failed: %s", self.client_id, e)
        finally:
            ctl.close()

    # --- lifetime ----------------------------------------------------------------------------------------

    async def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """A control-plane request (docs/HOTPATH.md, "Control plane") with this attachment's token (unless
        ``fields`` names one), so it may act for this link's own accounts; ControlError if it failed."""
        fields.setdefault("token", self.token)
        return await self._ctl.request(op, **fields)

    async def close(self, *, cancel: bool = True, drain_timeout_s: float = 2.0) -> None:
        """Waits (bounded) for the responses owed, detaches (cancelling resting orders unless ``cancel`` is
        False), stops the tasks and unmaps the rings. Idempotent."""
        if self._closed:
            return
        deadline = time.monotonic() + drain_timeout_s
        while self._owed() and self._gone is None and time.monotonic() < deadline:
            await asyncio.sleep(0.001)
        self._closed = True
        self._work.set()
        self._event_ready.set()
        try:
            if self._gone is None:
                self._ctl.timeout_s = min(self._ctl.timeout_s, 1.0)
                try:
                    await self._ctl.request("detach", client=self.client_id, cancel=cancel, pid=os.getpid(),
                                            token=self.token)  # fmt: skip
                except (TimeoutError, ControlError) as e:
                    log.warning("client %d: detach failed (%s); the engine will notice the exit", self.client_id, e)
        finally:
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            if self._owed():  # the engine never answered them within drain_timeout_s
                self._fail(EngineGoneError(f"client {self.client_id} closed with responses still owed"))
            self._rings.close()
            self._ctl.close()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def __repr__(self) -> str:
        return f"AsyncClient({self.account or self.client_id!r}, endpoint={self.endpoint!r})"
