"""``proptrade demo`` (``make run``): the engine on seeded synthetic order flow, live in the terminal.

Until the multi-process hot path exists, the platform's default demo runs the C engine in-process: the
flow is pushed in batches (one C crossing per batch, the throughput figure), and every batch a few single
commands go through the one-call API and are timed (the latency percentiles). Once a second it prints the
engine's throughput (time inside ``execute_batch``) and the end-to-end rate (which also pays for generating the
flow in numpy), the top of book, trades, live orders and the single-call latency percentiles. Ctrl-C or
``--seconds`` stops it.
"""

from __future__ import annotations

import argparse
import signal
import sys
import time
from types import FrameType
from typing import TextIO

import numpy as np

from ._config import ClientLimits, EngineConfig, Level, SymbolConfig
from ._engine import Engine
from ._wire import EventType
from .flow import SyntheticFlow

__all__ = ["main", "run"]

BATCH = 4096
SAMPLES_PER_BATCH = 16


def _build_engine() -> tuple[Engine, int]:
    engine = Engine(EngineConfig(max_orders=1 << 18, max_symbols=4, max_clients=64))
    symbol = engine.add_symbol(SymbolConfig("DEMO", tick_size=0.01, lot_size=1, max_order_lots=10_000))
    limits = ClientLimits(max_order_qty=1_000, max_open_orders=100_000, max_position=1_000_000)
    for client in range(1, 9):
        engine.set_client_limits(client, limits)
    return engine, symbol


def _fmt_level(engine: Engine, symbol: int, level: Level | None) -> str:
    if level is None:
        return "      --      "
    price, qty = engine.price(symbol, level.price), engine.size(symbol, level.qty)
    return f"{qty:>7g} @ {price:<9.2f}"


def run(seconds: float = 0.0, seed: int = 1, out: TextIO = sys.stdout) -> dict[str, float]:
    """Runs the demo; returns the final counters (used by the tests)."""
    engine, symbol = _build_engine()
    flow = SyntheticFlow(symbol, seed=seed)
    stop = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stop
        stop = True

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    print(f"proptrade demo: C engine, synthetic flow (seed {seed}), batches of {BATCH}; Ctrl-C stops", file=out)
    start = last_report = time.monotonic()
    ts = 1
    ops = trades = 0
    window_ops = window_batch_ops = window_batch_ns = 0
    latencies: list[int] = []
    try:
        while not stop:
            batch = flow.next_batch(BATCH, ts)
            ts = int(batch["ts_ns"][-1]) + 1_000
            t0 = time.perf_counter_ns()
            events = engine.execute_batch(batch)
            window_batch_ns += time.perf_counter_ns() - t0
            window_batch_ops += len(batch)
            flow.observe(events)
            ops += len(batch)
            window_ops += len(batch)
            trades += int(np.count_nonzero(events["type"] == EventType.TRADE))
            for _ in range(SAMPLES_PER_BATCH):
                cmd = flow.sample_command(ts)
                ts += 1_000
                t0 = time.perf_counter_ns()
                sample_events = engine.execute(cmd)
                latencies.append(time.perf_counter_ns() - t0)
                ops += 1
                window_ops += 1
                flow.observe(np.frombuffer(b"".join(e.pack() for e in sample_events), dtype=events.dtype))
            now = time.monotonic()
            if now - last_report >= 1.0:
                lat = np.percentile(np.array(latencies), [50, 99, 99.9]) / 1000.0
                bid, ask = engine.l1(symbol)
                print(
                    f"{now - start:6.1f}s  engine {window_batch_ops / window_batch_ns * 1e3:5.2f} M ops/s "
                    f"(end to end {window_ops / (now - last_report) / 1e6:4.2f} M)  "
                    f"bid {_fmt_level(engine, symbol, bid)} ask {_fmt_level(engine, symbol, ask)}  "
                    f"trades {trades:>9,}  live {flow.live_orders:>6,}  "
                    f"single call p50 {lat[0]:.2f} us p99 {lat[1]:.2f} us p99.9 {lat[2]:.2f} us",
                    file=out,
                    flush=True,
                )
                last_report, window_ops, latencies = now, 0, []
                window_batch_ops = window_batch_ns = 0
            if seconds and now - start >= seconds:
                break
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    elapsed = time.monotonic() - start
    engine.check()
    print(f"stopped after {elapsed:.1f}s: {ops:,} commands, {trades:,} trades, state hash {engine.state_hash():#018x}",
          file=out)  # fmt: skip
    return {"ops": ops, "trades": trades, "seconds": elapsed}


def main(args: argparse.Namespace) -> int:
    run(seconds=float(getattr(args, "seconds", 0.0) or 0.0), seed=int(getattr(args, "seed", 1)))
    return 0
