"""``MarketDataSubscriber``: a client of the market-data bridge (``bridge.py``), over ZeroMQ.

It subscribes to chosen symbols' topics on the bridge's PUB socket, keeps its own ``L2Book`` per symbol, and
asks the bridge's REP socket for a snapshot whenever a topic's seq jumps (a lost message, or a late join).
The bridge's module docstring describes the wire. This module imports nothing of the bridge itself, so a
process that only reads market data loads only ZeroMQ.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

import zmq

from .book import SIDE_CODES, L2Book

__all__ = ["BridgeRequestError", "MarketDataSubscriber"]

log = logging.getLogger("hotpath.md_subscriber")


class BridgeRequestError(Exception):
    """The bridge answered a request with ``{"error": ...}``."""


class _SubState:
    """What the subscriber keeps per symbol: its book, the last seq applied, and its gap counters."""

    __slots__ = ("book", "last_seq", "synced", "gaps", "snapshots", "session")

    def __init__(self) -> None:
        self.book = L2Book()
        self.last_seq = 0  #: seq of the last message applied; 0 = none, so seq 1 is the first expected
        self.synced = True  #: False after a gap whose snapshot request failed: drop until a snapshot succeeds
        self.gaps = 0
        self.snapshots = 0
        self.session: str | None = None  #: the bridge run our seqs belong to (from a heartbeat or snapshot)


class MarketDataSubscriber:
    """A bridge client: SUB to chosen symbols' topics, REQ for snapshots, its own L2 book per symbol.

    ``poll(timeout_ms)`` applies what arrived and returns it. A jump in a topic's seq (a lost message, or a
    late join) counts a gap and triggers a snapshot request; messages with seq <= the snapshot's seq are then
    dropped as already included. Not thread-safe (ZeroMQ sockets belong to one thread).
    """

    def __init__(
        self,
        pub_endpoint: str,
        rep_endpoint: str,
        symbols: Iterable[str],
        *,
        context: zmq.Context[Any] | None = None,
        snapshot_timeout_ms: int = 1000,
    ) -> None:
        self._state = {name: _SubState() for name in symbols}
        self._rep_endpoint = rep_endpoint
        self._snapshot_timeout_ms = snapshot_timeout_ms
        self._own_ctx = context is None
        self._ctx: zmq.Context[Any] = zmq.Context() if context is None else context
        self.received = 0  #: messages received on SUB, heartbeats included
        self.bad_messages = 0  #: payloads that were not the bridge's JSON, ignored
        self._sub: zmq.Socket[Any] | None = self._ctx.socket(zmq.SUB)
        self._sub.setsockopt(zmq.LINGER, 0)
        for name in self._state:
            # ZeroMQ matches topic prefixes ("AA" also gets "AAPL"); poll() keeps exact matches only.
            self._sub.setsockopt(zmq.SUBSCRIBE, name.encode())
        self._sub.connect(pub_endpoint)
        self._req: zmq.Socket[Any] | None = None

    # ---- reading -------------------------------------------------------------------------------------

    def poll(self, timeout_ms: int = 0, max_messages: int = 10_000) -> list[dict[str, Any]]:
        """Waits up to ``timeout_ms`` for a message, then takes what is queued (up to ``max_messages``).

        Returns the messages applied, in order (deltas, trades, snapshots, stale notices; heartbeats are not
        returned). A snapshot fetched after a gap is returned as a "snapshot" message with "source": "request".
        """
        sub = self._sub
        assert sub is not None
        out: list[dict[str, Any]] = []
        if not sub.poll(timeout_ms, zmq.POLLIN):
            return out
        while len(out) < max_messages and int(sub.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            frames = self._receive()
            if frames is not None:
                self._on_message(frames, out)
        return out

    def _receive(self) -> list[bytes] | None:
        """One multipart message, or None (a hook: tests drop messages here)."""
        assert self._sub is not None
        return self._sub.recv_multipart(zmq.NOBLOCK)

    def _on_message(self, frames: list[bytes], out: list[dict[str, Any]]) -> None:
        self.received += 1
        if len(frames) != 2:
            return
        name = frames[0].decode(errors="replace")
        state = self._state.get(name)
        if state is None:  # a prefix match of another topic
            return
        try:
            msg = json.loads(frames[1])
            seq, kind = msg["seq"], msg["type"]
        except (ValueError, KeyError, TypeError):
            self.bad_messages += 1
            return
        if kind == "heartbeat":
            if state.session is None:
                state.session = msg.get("session")
            elif msg.get("session") != state.session:  # a new bridge process: its seqs start again at 1
                state.last_seq = 0
                self._on_gap(name, state, out)
                return
            # A heartbeat repeats the topic's last seq: beyond ours, we lost the tail of something.
            if seq > state.last_seq:
                self._on_gap(name, state, out)
            return
        if seq <= state.last_seq:
            return  # already in the snapshot we resynced from
        if kind == "snapshot":  # a full book replaces ours whatever we missed before it
            self._apply_snapshot(state, msg)
            out.append(msg)
            return
        if seq != state.last_seq + 1 or not state.synced:
            self._on_gap(name, state, out)
            if seq != state.last_seq + 1 or not state.synced:
                return  # the snapshot covered it (or could not be had; the next message retries)
        state.last_seq = seq
        if kind == "book_delta":
            state.book.apply_delta(SIDE_CODES[msg["side"]], msg["price"], msg["qty"], msg["order_count"],
                                   msg["engine_seq"])  # fmt: skip
        elif kind == "stale":
            state.book.stale = True
        out.append(msg)

    def _on_gap(self, name: str, state: _SubState, out: list[dict[str, Any]]) -> None:
        state.gaps += 1
        try:
            snap = self.request_snapshot(name)
        except (TimeoutError, BridgeRequestError) as exc:
            log.warning("gap on %s: snapshot request failed (%s); dropping until one succeeds", name, exc)
            state.synced = False
            return
        self._apply_snapshot(state, snap)
        out.append({**snap, "type": "snapshot", "source": "request"})

    @staticmethod
    def _apply_snapshot(state: _SubState, snap: dict[str, Any]) -> None:
        state.book.replace(snap["bids"], snap["asks"])
        state.book.stale = bool(snap.get("stale", False))
        state.book.engine_seq = snap["engine_seq"]
        state.last_seq = snap["seq"]
        state.session = snap.get("session", state.session)
        state.synced = True
        state.snapshots += 1

    # ---- requests ------------------------------------------------------------------------------------

    def request(self, req: dict[str, Any]) -> dict[str, Any]:
        """One REQ/REP round trip; TimeoutError after ``snapshot_timeout_ms``, BridgeRequestError on an error."""
        if self._req is None:
            self._req = self._ctx.socket(zmq.REQ)
            self._req.setsockopt(zmq.LINGER, 0)
            self._req.connect(self._rep_endpoint)
        self._req.send(json.dumps(req, separators=(",", ":")).encode())
        if not self._req.poll(self._snapshot_timeout_ms, zmq.POLLIN):
            # A REQ socket that sent and got no reply cannot send again: drop it, the next call makes a new one.
            self._req.close(linger=0)
            self._req = None
            raise TimeoutError(f"no reply from {self._rep_endpoint} in {self._snapshot_timeout_ms} ms")
        reply: dict[str, Any] = json.loads(self._req.recv())
        if "error" in reply:
            raise BridgeRequestError(reply["error"])
        return reply

    def request_snapshot(self, symbol: str, depth: int | None = None) -> dict[str, Any]:
        """The bridge's book of ``symbol`` (does not touch this subscriber's book)."""
        req: dict[str, Any] = {"op": "snapshot", "symbol": symbol}
        if depth is not None:
            req["depth"] = depth
        return self.request(req)

    def sync(self, symbol: str) -> None:
        """Replaces this subscriber's book of ``symbol`` with a fresh snapshot (e.g. right after connecting)."""
        self._apply_snapshot(self._state[symbol], self.request_snapshot(symbol))

    # ---- state ---------------------------------------------------------------------------------------

    def book(self, symbol: str) -> L2Book:
        return self._state[symbol].book

    def last_seq(self, symbol: str) -> int:
        return self._state[symbol].last_seq

    def gaps(self, symbol: str) -> int:
        """Seq jumps seen on the topic (a late join counts as one)."""
        return self._state[symbol].gaps

    def snapshots(self, symbol: str) -> int:
        """Snapshots applied (requested after a gap, by ``sync``, or published by the bridge)."""
        return self._state[symbol].snapshots

    def close(self) -> None:
        for sock in (self._sub, self._req):
            if sock is not None:
                sock.close(linger=0)
        self._sub = self._req = None
        if self._own_ctx:
            self._ctx.term()
            self._own_ctx = False

    def __enter__(self) -> MarketDataSubscriber:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
