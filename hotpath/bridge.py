"""The market-data bridge: engine market-data ring -> ZeroMQ PUB (a topic per symbol) + snapshot requests (REP).

The engine writes BOOK_DELTA and TRADE events to one broadcast ring (``bcast.py``). Readers of that ring must
keep up or be lapped, so slow or remote consumers never read it themselves: one ``Bridge`` process reads it,
keeps an L2 book per symbol, and republishes every event on a PUB socket, where a slow subscriber only loses
its own messages (ZeroMQ drops at its high-water mark) and the engine never notices.

Wire (every payload is one JSON object, prices in ticks and quantities in lots, as in the engine)::

    PUB  [topic = symbol name (b"AAPL"), payload]
         {"seq": n, "engine_seq", "type": "book_delta", "symbol", "side": "buy"|"sell", "price", "qty",
          "order_count", "ts_ns"}                                qty = the level's new total, 0 = level gone
         {"seq": n, "engine_seq", "type": "trade", "symbol", "side" (taker's), "price", "qty", "trade_id",
          "maker_order_id", "taker_order_id", "maker_client", "taker_client", "ts_ns"}
         {"seq": n, "engine_seq", "type": "snapshot", "symbol", "bids", "asks"}   after the bridge resynced
         {"seq": n, "engine_seq", "type": "stale", "symbol"}      the bridge lost data it cannot repair
         {"seq": last, "engine_seq", "type": "heartbeat", "symbol", "session"}  repeats the last seq, takes none
    REP  {"op": "snapshot", "symbol": "AAPL", "depth": N (optional)}
         -> {"symbol", "seq", "engine_seq", "stale", "session", "bids": [[price, qty, order_count], ...],
             "asks": [...]}
         {"op": "stats"} -> the bridge's counters;  anything else -> {"error": "..."}

``seq`` counts the messages of one topic, 1, 2, 3, ...: a subscriber that sees seq jump has lost messages. A
snapshot reply's ``seq`` is the seq of the last message published on that topic, so the subscriber applies
only messages with a larger seq on top of it. Heartbeats (every ``heartbeat_s``) let a subscriber notice
messages lost at the tail of a burst, or that it joined late, without waiting for the next event. ``session``
is random per bridge process: a restarted bridge numbers from 1 again, and a subscriber that sees a new session
in a heartbeat resyncs instead of dropping the new, lower seqs as old.

Overrun: when the bridge itself is lapped on the ring (``Overrun``), it counts it, skips to the newest
position (``reader.resync()``) and rebuilds each book from ``snapshot_source(symbol_id) -> (engine_seq, bids,
asks)``; events of that symbol with an engine seq <= ``engine_seq`` are already in the snapshot and are
skipped. It then publishes a "snapshot" message per topic so subscribers resync too. Without a
``snapshot_source`` it logs, counts, marks the books stale and publishes a "stale" message per topic.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import select
import signal
import sys
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

import numpy.typing as npt
import zmq

from c_engine import EventType, Side

from .bcast import Broadcast, BroadcastReader, Overrun, SharedMemoryBroadcast
from .book import L2Book, SnapshotSource
from .idle import BackoffIdle
from .md_subscriber import BridgeRequestError

__all__ = [
    "Bridge",
    "DEFAULT_PUB_ENDPOINT",
    "DEFAULT_REP_ENDPOINT",
    "IDLE_MAX_SLEEP_S",
    "main",
]

log = logging.getLogger("hotpath.bridge")

#: Where the bridge publishes by default (loopback only: the bridge never binds another interface).
DEFAULT_PUB_ENDPOINT = "tcp://127.0.0.1:5560"
#: Where it answers snapshot requests by default.
DEFAULT_REP_ENDPOINT = "tcp://127.0.0.1:5561"

#: The bridge's longest idle sleep. BackoffIdle's default (1 ms) costs ~5% of a core on these VMs: each wake-up
#: of a sleeping Python thread costs 60-180 us of CPU here (cold caches, VM exits), so the cost is the wake
#: rate. 5 ms measured ~2-3% under load from other processes; the price is that the first event after >= ~10 ms
#: of silence waits up to 5 ms before it is published (doubling from 1 us, the sleeps reach 5 ms after ~10 ms).
IDLE_MAX_SLEEP_S = 0.005

_BUY = int(Side.BUY)
_SELL = int(Side.SELL)
_BOOK_DELTA = int(EventType.BOOK_DELTA)
_TRADE = int(EventType.TRADE)
_SIDE_NAME = {_BUY: "buy", _SELL: "sell"}
_SIDE_BYTES = {_BUY: b"buy", _SELL: b"sell"}

# The per-event messages are formatted from byte templates: json.dumps of the same dict costs ~8 us, the
# template ~0.6 us, and that is most of the bridge's per-event cost. Every field is an int or a fixed word;
# the symbol goes in already JSON-encoded (json.dumps once per symbol), so the output is always valid JSON.
_DELTA_JSON = (
    b'{"seq":%d,"engine_seq":%d,"type":"book_delta","symbol":%s,"side":"%s","price":%d,"qty":%d,'
    b'"order_count":%d,"ts_ns":%d}'
)
_TRADE_JSON = (
    b'{"seq":%d,"engine_seq":%d,"type":"trade","symbol":%s,"side":"%s","price":%d,"qty":%d,"trade_id":%d,'
    b'"maker_order_id":%d,"taker_order_id":%d,"maker_client":%d,"taker_client":%d,"ts_ns":%d}'
)
_HEARTBEAT_JSON = b'{"seq":%d,"engine_seq":%d,"type":"heartbeat","symbol":%s,"session":"%s"}'

# EVENT_DTYPE columns the bridge reads; a batch is turned into one Python list per column (tolist is one C
# loop per column, where indexing numpy rows field by field costs ~1 us a field).
_COLUMNS = ("type", "side", "symbol_id", "client_id", "maker_client", "seq", "ts_ns", "order_id",
            "order_count", "price", "qty", "maker_order_id")  # fmt: skip


def _check_bind_endpoint(endpoint: str) -> None:
    """Servers bind loopback or ipc only: remote subscribers reach the bridge through whatever the operator
    puts in front of it (an SSH tunnel, a ZeroMQ proxy), never through a port this process opened to the world."""
    parts = urlsplit(endpoint)
    if parts.scheme in ("ipc", "inproc"):
        return
    if parts.scheme == "tcp" and parts.hostname in ("127.0.0.1", "localhost", "::1"):
        return
    raise ValueError(f"the bridge binds tcp://127.0.0.1:PORT or ipc://PATH only, not {endpoint!r}")


def _ok_json(obj: Any) -> bytes:
    return json.dumps(obj, separators=(",", ":")).encode()


class _Topic:
    """What the bridge keeps per symbol: the book, the topic's publish seq, and the resync fence."""

    __slots__ = ("symbol_id", "name", "topic", "json_name", "book", "seq", "skip_through")

    def __init__(self, symbol_id: int, name: str) -> None:
        self.symbol_id = symbol_id
        self.name = name
        self.topic = name.encode()
        self.json_name = json.dumps(name).encode()
        self.book = L2Book()
        self.seq = 0  #: seq of the last message published on this topic
        self.skip_through = 0  #: deltas with engine seq <= this are already in the book's snapshot


class Bridge:
    """Reads the market-data ring, keeps the books, publishes on PUB and answers snapshots on REP.

    ``md`` is the ring's shared-memory name (attached here, closed by ``close()``) or an open ``Broadcast``
    (left open). Drive it with ``run(stop)`` in its own process or thread, or call ``poll_once()`` yourself.
    Not thread-safe: one thread drives it; others may read the counters.
    """

    def __init__(
        self,
        md: str | Broadcast,
        symbols: Mapping[int, str],
        pub_endpoint: str = DEFAULT_PUB_ENDPOINT,
        rep_endpoint: str = DEFAULT_REP_ENDPOINT,
        *,
        snapshot_source: SnapshotSource | None = None,
        context: zmq.Context[Any] | None = None,
        batch_size: int = 256,
        heartbeat_s: float = 1.0,
        idle: BackoffIdle | None = None,
        send_hwm: int = 100_000,
    ) -> None:
        names = list(symbols.values())
        if len(set(names)) != len(names) or not all(names):
            raise ValueError("symbol names must be distinct and non-empty")
        _check_bind_endpoint(pub_endpoint)
        _check_bind_endpoint(rep_endpoint)
        self._topics = {int(sid): _Topic(int(sid), name) for sid, name in symbols.items()}
        self._by_name = {t.name: t for t in self._topics.values()}
        self._snapshot_source = snapshot_source
        self._batch_size = batch_size
        self._heartbeat_s = heartbeat_s
        self._next_heartbeat = time.monotonic() + heartbeat_s
        self.session = os.urandom(6).hex()  #: tells a restarted bridge's seqs from the previous run's
        self._idle = idle if idle is not None else BackoffIdle(max_sleep_s=IDLE_MAX_SLEEP_S)
        # Counters (read from other threads for tests and "stats"; ints, so a read is never torn).
        self.events_in = 0  #: md events read from the ring
        self.published = 0  #: messages sent on PUB (heartbeats included)
        self.skipped = 0  #: events already covered by a resync snapshot
        self.unmapped = 0  #: events of symbol ids not in ``symbols`` (or of a bad side), dropped
        self.overruns = 0  #: times the bridge was lapped on the md ring
        self.lost_total = 0  #: md messages lost in those overruns
        self.resyncs = 0  #: rebuilds from snapshot_source
        self.requests = 0  #: REP requests answered (errors included)
        self.bad_requests = 0  #: REP requests answered with an error
        self._owns_md = isinstance(md, str)
        self._md: Broadcast = SharedMemoryBroadcast.attach(md) if isinstance(md, str) else md
        self._own_ctx = context is None
        self._ctx: zmq.Context[Any] = zmq.Context() if context is None else context
        self._pub: zmq.Socket[Any] | None = None
        self._rep: zmq.Socket[Any] | None = None
        try:
            self._reader: BroadcastReader = self._md.reader()
            # Per subscriber, messages queued before ZeroMQ drops for it (the subscriber then sees a seq gap).
            # ZeroMQ's default, 1000, is one burst of a busy book; 100 k absorbs bursts at ~20 MB per subscriber.
            self._pub = self._bind(zmq.PUB, pub_endpoint, {zmq.SNDHWM: send_hwm})
            self._rep = self._bind(zmq.REP, rep_endpoint)
        except BaseException:
            self.close()
            raise
        self._rep_fd = select.poll()
        self._rep_fd.register(int(self._rep.getsockopt(zmq.FD)), select.POLLIN)
        self.pub_endpoint = self._pub.getsockopt_string(zmq.LAST_ENDPOINT)
        self.rep_endpoint = self._rep.getsockopt_string(zmq.LAST_ENDPOINT)
        if snapshot_source is not None:
            # A bridge that starts while the engine already holds orders must not publish deltas on top of
            # empty books: take the snapshot first (not counted as an overrun).
            self.resync()

    def _bind(self, kind: int, endpoint: str, options: Mapping[int, int] | None = None) -> zmq.Socket[Any]:
        sock: zmq.Socket[Any] = self._ctx.socket(kind)
        sock.setsockopt(zmq.LINGER, 0)  # close() never waits for subscribers that are slow or gone
        for option, value in (options or {}).items():
            sock.setsockopt(option, value)
        try:
            sock.bind(endpoint)
        except BaseException:
            sock.close()
            raise
        return sock

    # ---- the loop ------------------------------------------------------------------------------------

    def run(self, stop: threading.Event | Callable[[], bool]) -> None:
        """Polls until ``stop`` is set (or returns True), backing off while idle; does not close."""
        should_stop = stop.is_set if isinstance(stop, threading.Event) else stop
        idle = self._idle
        idle.reset()
        while not should_stop():
            idle.idle(self.poll_once())

    def poll_once(self) -> int:
        """One pass: drains the md ring (bounded), answers pending requests, heartbeats. Returns the work done."""
        work = self._drain_md()
        work += self._serve_requests()
        if self._heartbeat_s > 0 and time.monotonic() >= self._next_heartbeat:
            self._heartbeat()
        return work

    def _drain_md(self, max_batches: int = 16) -> int:
        # Bounded so a market-data storm cannot starve snapshot requests.
        done = 0
        reader = self._reader
        for _ in range(max_batches):
            # lag is one small C call; read_batch allocates its output first (~10 us), too much for every idle
            # pass. lag > 0 also covers a lapped reader (lag > capacity), so overruns are still seen.
            if reader.lag == 0:
                break
            try:
                rows = reader.read_batch(self._batch_size)
            except Overrun as exc:
                self._on_overrun(exc)
                return done + 1
            if rows.size == 0:
                break
            self._process(rows)
            done += rows.size
            if rows.size < self._batch_size:
                break
        return done

    def _process(self, rows: npt.NDArray[Any]) -> None:
        """Applies and publishes one batch of md events, in ring order."""
        c = [rows[name].tolist() for name in _COLUMNS]
        etype, side, sid, client, maker_client, seq, ts, oid, count, price, qty, maker_oid = c
        topics = self._topics
        assert self._pub is not None
        # Two bound send calls: send_multipart costs ~6 us a message, this ~1.6 us (the rest of the loop ~3 us).
        send, more = self._pub.send, zmq.SNDMORE
        sent = 0
        self.events_in += len(etype)
        for i, t in enumerate(etype):
            topic = topics.get(sid[i])
            side_b = _SIDE_BYTES.get(side[i])
            if topic is None or side_b is None:
                self.unmapped += 1
                continue
            if t == _BOOK_DELTA:
                if seq[i] <= topic.skip_through:
                    self.skipped += 1
                    continue
                topic.book.apply_delta(side[i], price[i], qty[i], count[i], seq[i])
                topic.seq += 1
                payload = _DELTA_JSON % (topic.seq, seq[i], topic.json_name, side_b, price[i], qty[i], count[i], ts[i])
            elif t == _TRADE:
                # Trades are not in a snapshot, so even those inside a resync window are published, not skipped.
                topic.seq += 1
                payload = _TRADE_JSON % (topic.seq, seq[i], topic.json_name, side_b, price[i], qty[i], count[i],
                                         maker_oid[i], oid[i], maker_client[i], client[i], ts[i])  # fmt: skip
            else:
                self.unmapped += 1
                continue
            send(topic.topic, more)
            send(payload)
            sent += 1
        self.published += sent

    def _send(self, topic: _Topic, payload: bytes) -> None:
        assert self._pub is not None
        self._pub.send(topic.topic, zmq.SNDMORE)
        self._pub.send(payload)
        self.published += 1

    def _heartbeat(self) -> None:
        self._next_heartbeat = time.monotonic() + self._heartbeat_s
        session = self.session.encode()
        for topic in self._topics.values():
            self._send(topic, _HEARTBEAT_JSON % (topic.seq, topic.book.engine_seq, topic.json_name, session))

    # ---- overrun and resync --------------------------------------------------------------------------

    def _on_overrun(self, exc: Overrun) -> None:
        self.overruns += 1
        self.lost_total += exc.lost
        if self._snapshot_source is not None:
            log.warning("md ring overrun: %d messages lost; resyncing from snapshots", exc.lost)
            self.resync()
            return
        # Without snapshots the books cannot be repaired; the reader reads on from the oldest message the
        # ring still holds, so levels touched from here on are right again, the others may not be.
        log.warning("md ring overrun: %d messages lost; no snapshot source, books marked stale", exc.lost)
        for topic in self._topics.values():
            self._mark_stale(topic)

    def resync(self) -> None:
        """Skips every unread md message and rebuilds each book from ``snapshot_source``; publishes the results."""
        if self._snapshot_source is None:
            raise RuntimeError("resync needs a snapshot_source")
        self._reader.resync()
        self.resyncs += 1
        for topic in self._topics.values():
            self._resync_topic(topic, self._snapshot_source)

    def _resync_topic(self, topic: _Topic, source: SnapshotSource) -> None:
        try:
            engine_seq, bids, asks = source(topic.symbol_id)
            topic.book.replace(bids, asks)
        except Exception:  # a failing source must not kill the bridge: the book is stale until the next resync
            log.exception("snapshot_source(%d) failed; %s marked stale", topic.symbol_id, topic.name)
            self._mark_stale(topic)
            return
        # Every event the ring holds after the resync point with engine seq <= engine_seq is in the snapshot.
        topic.skip_through = int(engine_seq)
        topic.book.engine_seq = int(engine_seq)
        topic.book.stale = False
        topic.seq += 1
        self._send(topic, _ok_json({"seq": topic.seq, "engine_seq": topic.book.engine_seq, "type": "snapshot",
                                    "symbol": topic.name, **topic.book.to_dict()}))  # fmt: skip

    def _mark_stale(self, topic: _Topic) -> None:
        topic.book.stale = True
        topic.seq += 1
        self._send(topic, _ok_json({"seq": topic.seq, "engine_seq": topic.book.engine_seq, "type": "stale",
                                    "symbol": topic.name}))  # fmt: skip

    # ---- snapshot requests ---------------------------------------------------------------------------

    def _serve_requests(self, max_requests: int = 64) -> int:
        rep = self._rep
        assert rep is not None
        # Idle passes dominate the bridge's CPU, so they look at the socket's notification fd first (a poll(0)
        # syscall, ~5 us) and ask ZeroMQ for EVENTS (20-60 us on a cold cache) only when it signals. That is
        # ZMQ_FD's contract: the fd signals any change after the last EVENTS call, and this loop always ends
        # with an EVENTS call that said "nothing to read".
        if not self._rep_fd.poll(0):
            return 0
        done = 0
        while done < max_requests and int(rep.getsockopt(zmq.EVENTS)) & zmq.POLLIN:
            frames = rep.recv_multipart(zmq.NOBLOCK)
            rep.send(self._answer(frames))  # REP must answer every request, or the socket is stuck
            done += 1
        return done

    def _answer(self, frames: list[bytes]) -> bytes:
        self.requests += 1
        try:
            return _ok_json(self._handle(frames))
        except BridgeRequestError as exc:
            reason = str(exc)
        except Exception as exc:  # never let one request kill the bridge
            log.exception("request failed")
            reason = f"internal error: {type(exc).__name__}"
        self.bad_requests += 1
        return _ok_json({"error": reason})

    def _handle(self, frames: list[bytes]) -> dict[str, Any]:
        if len(frames) != 1:
            raise BridgeRequestError(f"expected one frame, got {len(frames)}")
        try:
            req = json.loads(frames[0])
        except (ValueError, UnicodeDecodeError):
            raise BridgeRequestError("request is not JSON") from None
        if not isinstance(req, dict):
            raise BridgeRequestError("request must be a JSON object")
        op = req.get("op")
        if op == "snapshot":
            return self.snapshot(req.get("symbol"), req.get("depth"))
        if op == "stats":
            return self.stats()
        raise BridgeRequestError(f"unknown op {op!r} (expected 'snapshot' or 'stats')")

    def snapshot(self, symbol: Any, depth: Any = None) -> dict[str, Any]:
        """The REP answer for one symbol (by name): its book, the topic's last seq and engine seq."""
        if not isinstance(symbol, str):
            raise BridgeRequestError("'symbol' must be a symbol name")
        topic = self._by_name.get(symbol)
        if topic is None:
            raise BridgeRequestError(f"unknown symbol {symbol!r}")
        if depth is not None and (isinstance(depth, bool) or not isinstance(depth, int) or depth < 0):
            raise BridgeRequestError("'depth' must be a non-negative integer")
        return {"symbol": topic.name, "seq": topic.seq, "engine_seq": topic.book.engine_seq,
                "stale": topic.book.stale, "session": self.session, **topic.book.to_dict(depth)}  # fmt: skip

    # ---- inspection and shutdown ---------------------------------------------------------------------

    def book(self, symbol: int | str) -> L2Book:
        """The bridge's book of a symbol id or name (read it only while the bridge is not running)."""
        return (self._by_name[symbol] if isinstance(symbol, str) else self._topics[symbol]).book

    def seq(self, symbol: int | str) -> int:
        """The seq of the last message published on the symbol's topic."""
        return (self._by_name[symbol] if isinstance(symbol, str) else self._topics[symbol]).seq

    def stats(self) -> dict[str, int]:
        return {
            "events_in": self.events_in, "published": self.published, "skipped": self.skipped,
            "unmapped": self.unmapped, "overruns": self.overruns, "lost_total": self.lost_total,
            "resyncs": self.resyncs, "requests": self.requests, "bad_requests": self.bad_requests,
        }  # fmt: skip

    def close(self) -> None:
        """Closes both sockets (linger 0), the context if it made it, and the md ring if it attached it."""
        for sock in (self._pub, self._rep):
            if sock is not None:
                sock.close(linger=0)
        self._pub = self._rep = None
        if self._own_ctx:
            self._ctx.term()
            self._own_ctx = False
        if self._owns_md:
            self._md.close()
            self._owns_md = False

    def __enter__(self) -> Bridge:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# ---- command line ----------------------------------------------------------------------------------------


def _parse_symbols(text: str) -> dict[int, str]:
    """'0=AAA,1=BBB' -> {0: 'AAA', 1: 'BBB'}."""
    out: dict[int, str] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        sid, sep, name = item.partition("=")
        if not sep or not sid.strip().isdigit() or not name.strip():
            raise argparse.ArgumentTypeError(f"bad symbol {item!r}: expected ID=NAME")
        out[int(sid)] = name.strip()
    if not out:
        raise argparse.ArgumentTypeError("no symbols")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hotpath.bridge --md NAME --symbols 0=AAA,1=BBB [--pub EP] [--rep EP]``: runs until
    SIGINT/SIGTERM, then closes its sockets and exits 0. Prints one "ready" line to stdout once bound."""
    parser = argparse.ArgumentParser(
        prog="python -m hotpath.bridge", description="market-data bridge: md ring -> ZeroMQ PUB + snapshots"
    )
    parser.add_argument("--md", required=True, help="the engine's market-data ring (/dev/shm name, e.g. PREFIX_md)")
    parser.add_argument("--symbols", required=True, type=_parse_symbols, help="symbol ids and names: 0=AAA,1=BBB")
    parser.add_argument("--pub", default=DEFAULT_PUB_ENDPOINT, help="PUB bind endpoint (tcp://127.0.0.1:P, ipc://)")
    parser.add_argument("--rep", default=DEFAULT_REP_ENDPOINT, help="REP bind endpoint (snapshot requests)")
    parser.add_argument("--heartbeat-s", type=float, default=1.0, help="heartbeat period per topic; 0 = off")
    parser.add_argument(
        "--max-sleep-ms",
        type=float,
        default=IDLE_MAX_SLEEP_S * 1e3,
        help="longest idle sleep: bounds the latency after silence, sets the idle CPU cost",
    )
    parser.add_argument("--control", metavar="ENDPOINT",
                        help="the engine's control endpoint: resync from its snapshots after an overrun "
                             "(without it, an overrun marks the books stale)")  # fmt: skip
    parser.add_argument("--log-level", default="INFO")
    args = parser.parse_args(argv)
    logging.basicConfig(level=args.log_level, stream=sys.stderr, format="%(asctime)s %(name)s %(message)s")

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()  # the loop sees it within one back-off sleep

    snapshot_source: SnapshotSource | None = None
    control = None
    if args.control:
        from .control_client import ControlClient
        from .md_view import control_snapshot

        control = ControlClient(args.control)
        snapshot_source = control_snapshot(control.request, args.symbols)
    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with Bridge(
            args.md,
            args.symbols,
            args.pub,
            args.rep,
            heartbeat_s=args.heartbeat_s,
            snapshot_source=snapshot_source,
            idle=BackoffIdle(max_sleep_s=args.max_sleep_ms / 1e3),
        ) as bridge:
            print(f"ready pub={bridge.pub_endpoint} rep={bridge.rep_endpoint}", flush=True)
            bridge.run(stop)
            log.info("stopping: %s", bridge.stats())
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if control is not None:
            control.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
