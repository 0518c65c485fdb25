"""The engine behind a ZeroMQ REP socket: benchmark (c) of bench/hotpath_bench.py, the baseline the rings beat.

One process hosts an in-process ``c_engine.Engine`` (cffi) behind a REP socket bound to an ``ipc://`` endpoint.
Each request is one 64-byte ``pt_command_t``; the reply is the bytes of the events the engine process would route
to that client's event ring (ACK, REJECT, FILL, CANCELED, MODIFIED: the market-data events BOOK_DELTA and TRADE
are dropped, as the ring path sends them elsewhere), so the client does the same work as on the rings. A request
``b"PING"`` is answered ``b"PONG"`` (readiness), ``b"STOP"`` with ``b"BYE"`` and the server exits.

The server blocks in ``recv`` (the normal ZeroMQ way: it sleeps until woken), pinned to ``--core``. It dies with
its parent (PR_SET_PDEATHSIG), and exits after ``--idle-timeout`` seconds without a request, so a crashed
benchmark never leaves it behind.

Usage: .venv/bin/python bench/zmq_engine_server.py ENDPOINT [--core C] [--idle-timeout S]
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import sys
from pathlib import Path

import numpy as np
import zmq

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from c_engine import COMMAND_DTYPE, EngineConfig, EventType, SymbolConfig  # noqa: E402

#: market-data event types: not part of a client's reply (the engine process routes them to the md ring)
MD_TYPES = (int(EventType.BOOK_DELTA), int(EventType.TRADE))
PR_SET_PDEATHSIG = 1


def die_with_parent() -> None:
    """Linux: SIGTERM when the parent exits, so a killed benchmark takes this server with it."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass


def make_engine(config: EngineConfig, symbols: tuple[SymbolConfig, ...]) -> object:
    from c_engine import Engine

    engine = Engine(config)
    for sym in symbols:
        engine.add_symbol(sym)
    return engine


def client_events(engine: object, raw: bytes) -> bytes:
    """Runs one wire command and returns its client-routed events as bytes (the ring path's event set)."""
    events = engine.execute_batch(np.frombuffer(raw, dtype=COMMAND_DTYPE))  # type: ignore[attr-defined]
    types = events["type"]
    if (types == MD_TYPES[0]).any() or (types == MD_TYPES[1]).any():
        events = events[(types != MD_TYPES[0]) & (types != MD_TYPES[1])]
    return events.tobytes()  # type: ignore[no-any-return]


def serve(endpoint: str, idle_timeout_s: float) -> int:
    engine = make_engine(EngineConfig(max_orders=1 << 16, max_levels_per_side=1 << 10, max_symbols=8,
                                      max_clients=64), (SymbolConfig("TEST"),))  # fmt: skip
    ctx = zmq.Context()
    sock = ctx.socket(zmq.REP)
    sock.setsockopt(zmq.LINGER, 0)
    sock.setsockopt(zmq.RCVTIMEO, int(idle_timeout_s * 1000))
    sock.bind(endpoint)
    try:
        while True:
            try:
                raw = sock.recv()
            except zmq.Again:
                print(f"zmq_engine_server: no request for {idle_timeout_s:g} s, exiting", file=sys.stderr)
                return 3
            if len(raw) == 64:
                sock.send(client_events(engine, raw))
            elif raw == b"PING":
                sock.send(b"PONG")
            elif raw == b"STOP":
                sock.send(b"BYE")
                return 0
            else:
                sock.send(b"")  # REP must answer every request; an empty reply tells the client it was bad
    finally:
        sock.close(0)
        ctx.term()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("endpoint", help="e.g. ipc:///tmp/xyz/engine.ipc")
    ap.add_argument("--core", type=int, default=None, help="pin to this core (default: not pinned)")
    ap.add_argument("--idle-timeout", type=float, default=60.0)
    a = ap.parse_args()
    die_with_parent()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # finally-blocks run: the socket file is removed
    if a.core is not None:
        os.sched_setaffinity(0, {a.core})
    return serve(a.endpoint, a.idle_timeout)


if __name__ == "__main__":
    sys.exit(main())
