"""``Client``: a strategy process's connection to a running engine.

It attaches through the control plane (``hotpath/control.py``), which creates its ring pair; orders go in
and events come out over those shared-memory rings; market data is read from the engine's broadcast ring.
A background thread heartbeats on its own control socket, so the engine notices a client that hangs; the
engine notices one that exits at once (it watches the pid). Either way its orders are cancelled.

Prices and sizes are human units in, converted exactly to ticks and lots with each symbol's tick and lot
size (``OffTickError``/``OffLotError`` otherwise); events come back in wire units (ticks, lots): use
:meth:`Client.price` and :meth:`Client.size` to read them, or work in ticks throughout.

    with Client(7, prefix="demo") as c:
        cloid = c.submit("SIM", "buy", 2, 99.5)
        for ev in c.wait_events(1):
            print(ev)

Sending never blocks beyond ``timeout_s``: a full command ring (the engine is behind) is waited on with
back-off, then ``RingFullError``; nothing is dropped. If the engine process dies meanwhile (the attach reply
names its pid, which the waits check every few milliseconds), they raise :class:`EngineGoneError` at once
instead. Not thread-safe: one Client per thread.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from c_engine import Command, Event

from .attachment import Attachment, DetachedError, EngineGoneError, resolve_endpoint
from .bcast import BroadcastReader, SharedMemoryBroadcast
from .control_client import ControlClient, ControlError

__all__ = ["Client", "DetachedError", "EngineGoneError"]

log = logging.getLogger("proptrade.client")


#: how often a wait checks that the engine process still exists
_ALIVE_CHECK_S = 0.005


class _Heartbeat:
    """Sends a heartbeat every ``interval_s`` from a daemon thread, on a control socket of its own."""

    def __init__(self, endpoint: str, client_id: int, token: str | None, interval_s: float) -> None:
        self._ctl = ControlClient(endpoint, timeout_s=max(interval_s, 0.5))
        self._client_id = client_id
        self._token = token
        self._interval_s = interval_s
        self._done = threading.Event()
        self.failures = 0
        self.detached: str | None = None  #: why, once the engine answered that this attachment has ended
        self._thread = threading.Thread(target=self._run, name=f"heartbeat-{client_id}", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._done.wait(self._interval_s):
            try:
                self._ctl.request("heartbeat", client=self._client_id, token=self._token)
            except ControlError as e:
                if e.code == "NOT_ATTACHED":  # detached by the engine: the client's next call says so
                    self.detached = e.message
                    return
                self.failures += 1
                log.warning("client %d: heartbeat failed: %s", self._client_id, e)
            except TimeoutError as e:
                self.failures += 1
                log.warning("client %d: heartbeat failed: %s", self._client_id, e)

    def stop(self) -> None:
        self._done.set()
        self._thread.join(5)
        self._ctl.close()


class Client(Attachment):
    """One client id attached to a running engine (see the module docstring)."""

    def __init__(
        self,
        account: str | int,
        *,
        prefix: str | None = None,
        endpoint: str | None = None,
        accounts: Sequence[str | int] = (),
        timeout_s: float = 10.0,
        heartbeat: bool = True,
    ) -> None:
        """Attaches ``account`` (an account name of the platform config, or an engine client id) to the engine
        run ``prefix`` (or at ``endpoint``); with ``accounts``, as a link that may also act for each of them
        (every command names the account it acts for). ``ControlError`` with code ALREADY_ATTACHED if another
        live process holds one of them, UNKNOWN_ACCOUNT for a name the engine does not know; ``TimeoutError``
        if no engine answers."""
        self.endpoint = resolve_endpoint(prefix, endpoint)
        self._ctl = ControlClient(self.endpoint, timeout_s)
        reply = self._ctl.request("attach", client=account, accounts=list(accounts), pid=os.getpid())
        super().__init__(reply)
        if reply.get("unlink_rings"):  # mapped: the engine removes their names, no other process can open them
            try:
                self._ctl.request("opened", token=self.token)
            except (TimeoutError, ControlError) as e:
                log.warning("client %d: the ring names stay until the detach: %s", self.client_id, e)
        self._next_alive_check = 0.0
        self._heartbeat: _Heartbeat | None = None
        timeout = self.heartbeat_timeout_s
        if heartbeat and timeout > 0 and not self.static:  # four chances before the timeout
            self._heartbeat = _Heartbeat(self.endpoint, self.client_id, self.token, timeout / 4)
        self._closed = False

    # --- orders ------------------------------------------------------------------------------------------

    def submit(
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
    ) -> int:
        """Sends a new order in human units; returns its client order id (given, or the next of this client's
        own sequence), which its ACK or REJECT echoes. ``tif`` defaults to GTC for a limit, IOC for a market.
        ``account``: for a link granted several accounts, the one it acts for (default: its own)."""
        cmd, cloid = self.new_order(symbol, side, qty, price, type, tif, post_only, stp, cloid, account)
        self.send(cmd, timeout_s)
        return cloid

    def cancel(self, order_id: int, *, account: str | int | None = None, timeout_s: float = 5.0) -> None:
        self.send(self.cancel_command(order_id, account), timeout_s)

    def modify(self, order_id: int, *, symbol: str | int, qty: float | None = None, price: float | None = None,
               account: str | int | None = None, timeout_s: float = 5.0) -> None:  # fmt: skip
        """Changes an order's open size and/or price; ``symbol`` gives the units to convert them with."""
        self.send(self.modify_command(order_id, symbol, qty, price, account), timeout_s)

    def mass_cancel(self, symbol: str | int | None = None, *, account: str | int | None = None,
                    timeout_s: float = 5.0) -> None:  # fmt: skip
        self.send(self.mass_cancel_command(symbol, account), timeout_s)

    def send(self, cmd: Command | bytes, timeout_s: float = 5.0) -> None:
        """Sends one command in wire units as it is (the engine sets its client id to this client's).
        DetachedError if the engine has detached this client (it learns that at its next heartbeat)."""
        self._check_attached()
        self._rings.submit(cmd, timeout_s, self._check_engine)

    def send_batch(self, commands: npt.NDArray[Any], timeout_s: float = 5.0) -> None:
        """Sends a ``COMMAND_DTYPE`` array in order, waiting (with back-off) while the ring is full."""
        self._check_attached()
        self._rings.commands.push_batch_wait(commands, timeout_s, self._check_engine)

    def _check_attached(self) -> None:
        """DetachedError once the heartbeat has learnt that the engine detached this client."""
        if self._heartbeat is not None and self._heartbeat.detached is not None:
            raise DetachedError(f"client {self.client_id} was detached by the engine ({self._heartbeat.detached})")

    def _check_engine(self) -> None:
        """The waits' abort hook: EngineGoneError once the engine process is gone (looked at every few ms),
        DetachedError once the engine detached this client."""
        self._check_attached()
        now = time.monotonic()
        if now < self._next_alive_check:
            return
        self._next_alive_check = now + _ALIVE_CHECK_S
        if not self.engine_alive():
            raise EngineGoneError(f"client {self.client_id}: the engine (pid {self.engine_pid}) has exited")

    # --- events and market data --------------------------------------------------------------------------

    def poll(self, max_count: int = 256) -> list[Event]:
        """Whatever events are there (up to ``max_count``), without waiting; once they are all read, DetachedError
        if the engine has detached this client."""
        events = self._rings.poll_events(max_count)
        if not events:
            self._check_attached()
        return events

    def poll_batch(self, max_count: int = 4096) -> npt.NDArray[Any]:
        """The same as an ``EVENT_DTYPE`` array (a copy), for batch consumers."""
        return self._rings.events.pop_batch(max_count)

    def wait_events(self, n: int, timeout_s: float = 5.0) -> list[Event]:
        """Exactly ``n`` events (more stay in the ring); ``TimeoutError`` if they do not come within
        ``timeout_s``, ``EngineGoneError`` as soon as the engine is gone."""
        return self._rings.wait_events(n, timeout_s, self._check_engine)

    def market_data(self) -> BroadcastReader:
        """A reader of the engine's market-data ring (BOOK_DELTA and TRADE), from the newest message on. The
        ring stays mapped until :meth:`close`."""
        if not hasattr(self, "_md"):
            self._md = SharedMemoryBroadcast.attach(self._rings.market_data_name)
        return self._md.reader()

    def snapshot(self, symbol: str | int, depth: int = 10) -> dict[str, Any]:
        """The engine's L2 book of ``symbol`` now (ticks, lots, order counts), with the engine seq it includes
        (apply market data with a greater seq on top of it) and the market-data ring position after it."""
        return self._ctl.request("snapshot", symbol=self.symbol_names[self.symbol_id(symbol)], depth=depth)

    def request(self, op: str, **fields: Any) -> dict[str, Any]:
        """A control-plane request (docs/HOTPATH.md, "Control plane") with this attachment's token (unless
        ``fields`` names one), so it may act for this link's own ids; ControlError if it failed."""
        fields.setdefault("token", self.token)
        return self._ctl.request(op, **fields)

    # --- lifetime ----------------------------------------------------------------------------------------

    def close(self, *, cancel: bool = True, drain_timeout_s: float = 2.0) -> None:
        """Detaches: waits (bounded) until the engine has taken every command sent, then asks the engine to
        free the slot, cancelling this client's resting orders unless ``cancel`` is False. Idempotent."""
        if self._closed:
            return
        self._closed = True
        if self._heartbeat is not None:
            self._heartbeat.stop()
        try:
            deadline = time.monotonic() + drain_timeout_s
            while self._rings.commands.depth() and time.monotonic() < deadline and self.engine_alive():
                time.sleep(0.0005)
            # Best effort, briefly: if the engine does not answer, it notices this process's exit anyway.
            self._ctl.timeout_s = min(self._ctl.timeout_s, 1.0)
            try:  # for a static slot, the detach only frees it for another process (nothing is cancelled)
                if self._heartbeat is None or self._heartbeat.detached is None:  # the token: never someone else's
                    self._ctl.request("detach", client=self.client_id, cancel=cancel, pid=os.getpid(),
                                      token=self.token)  # fmt: skip
            except (TimeoutError, ControlError) as e:
                log.warning("client %d: detach failed (%s); the engine will notice the exit", self.client_id, e)
        finally:
            if hasattr(self, "_md"):
                self._md.close()
            self._rings.close()
            self._ctl.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Client({self.client_id}, endpoint={self.endpoint!r})"
