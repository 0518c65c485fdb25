"""Backtest replay speed: market messages per second through the C engine, engine only and with a Python
strategy called on every top-of-book change.

::

    python bench/replay_bench.py [--messages 10000000] [--runs 3] [--binance FILE]

Sources: a synthetic day (``SyntheticSource``: the seeded flow, exponential gaps of 2.3 ms on average, so 10 M
messages span a 6.4-hour day) and the Binance USD-M sample (depth diffs and trades, rebuilt by update id).

- **engine only**: the source replayed into the engine with nothing watching (synthetic: the commands in
  blocks through ``execute_batch``; Binance: ``BinanceReplay`` per diff, trades as IOCs).
- **with a strategy**: ``BacktestVenue`` running the inventory-skew maker with no requote interval, so it is
  called on every change of the top of book and on every own event, with 100 us of each latency. Commands that
  concern it run back to back in C (``Engine.execute_until_watched``); the rest of the work is Python.

Each variant runs ``--runs`` times; the table shows the median messages/s, the best and worst run, and for the
strategy runs the share of messages that called it. Targets (docs/BENCHMARKS.md): >= 1 M messages/s engine
only, >= 200 k messages/s with the strategy.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from c_engine import Engine, EngineConfig  # noqa: E402
from strategies.backtest import (  # noqa: E402
    BacktestConfig,
    BacktestVenue,
    ConstantLatency,
    SyntheticSource,
)
from strategies.backtest.binance_source import BinanceSource  # noqa: E402
from strategies.makers import InventorySkewMaker, InventorySkewParams  # noqa: E402

SAMPLE = ROOT.parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"
NEVER = 1 << 62
#: a 6.5-hour day of 10 M messages: 2.34 ms apart on average
MEAN_GAP_NS = 2_340_000


def _engine_only(source: Any) -> int:
    engine = Engine(source.engine_config() if hasattr(source, "engine_config") else EngineConfig())
    for sym in source.symbols():
        engine.add_symbol(sym)
    source.open(engine)
    while source.peek_ns() is not None:
        source.run_until(engine, NEVER)
    return int(source.executed)


def _with_strategy(source: Any, params: InventorySkewParams) -> tuple[int, int]:
    latency = ConstantLatency(100_000)
    config = BacktestConfig(latency, latency, latency, maker_fee_bps=0.0, taker_fee_bps=0.0)
    maker = InventorySkewMaker(params)
    calls = 0
    requote = maker.requote

    def counted(trading: Any) -> None:
        nonlocal calls
        calls += 1
        requote(trading)

    maker.requote = counted  # type: ignore[method-assign]  # count the strategy's decisions
    result = BacktestVenue(maker, source, config).run()
    return result.messages, calls


#: CPU seconds of each timed call, in call order (the machine is shared: a rate per CPU-second does not count
#: the time other processes had the core)
_cpu: list[float] = []


def _time(fn: Any) -> tuple[float, Any]:
    start, cpu = time.perf_counter(), time.process_time()
    out = fn()
    _cpu.append(time.process_time() - cpu)
    return time.perf_counter() - start, out


def _row(label: str, messages: int, seconds: list[float], extra: str = "") -> str:
    rates = sorted(messages / s for s in seconds)
    per_cpu = statistics.median(messages / s for s in _cpu[-len(seconds) :])
    return (f"{label:44s} {messages:>11,} {statistics.median(rates):>13,.0f} {rates[0]:>12,.0f} "
            f"{rates[-1]:>12,.0f} {per_cpu:>12,.0f}  {extra}")  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=10_000_000, help="synthetic messages (default 10 M)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--binance", type=Path, default=SAMPLE, help="Binance capture (skipped if absent)")
    args = parser.parse_args()
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip()  # fmt: skip
    print(f"replay_bench: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, commit {commit}, "
          f"{args.runs} runs each")  # fmt: skip
    print(f"{'variant':44s} {'messages':>11s} {'median msg/s':>13s} {'worst':>12s} {'best':>12s} "
          f"{'msg/CPU-s':>12s}")  # fmt: skip
    syn_params = InventorySkewParams("SYN", half_spread=0.02, size=5, max_position=100, quote_interval_s=0.0,
                                     skew=0.001)  # fmt: skip
    bn_params = InventorySkewParams("BTCUSDT", half_spread=0.5, size=0.01, max_position=0.2, quote_interval_s=0.0,
                                    skew=2.0)  # fmt: skip

    def synthetic() -> SyntheticSource:
        return SyntheticSource(args.messages, seed=1, mean_gap_ns=MEAN_GAP_NS)

    times, n = [], 0
    for _ in range(args.runs):
        t, n = _time(lambda: _engine_only(synthetic()))
        times.append(t)
    print(_row("synthetic day, engine only", n, times))
    times, calls = [], 0
    for _ in range(args.runs):
        t, (n, calls) = _time(lambda: _with_strategy(synthetic(), syn_params))
        times.append(t)
    print(_row("synthetic day, strategy on every top change", n, times, f"strategy called on {calls / n:.1%}"))
    if args.binance.exists():
        source_times = []
        for _ in range(args.runs):
            t, source = _time(lambda: BinanceSource(args.binance))
            source_times.append(t)
        print(f"{'binance sample: parse and sort':44s} {source.total:>11,} {'':>13s}   median "
              f"{statistics.median(source_times):.2f} s (not in the rates below)")  # fmt: skip
        times = []
        for _ in range(args.runs):
            source = BinanceSource(args.binance)
            t, n = _time(lambda s=source: _engine_only(s))
            times.append(t)
        print(_row("binance sample, engine only", n, times))
        times = []
        for _ in range(args.runs):
            source = BinanceSource(args.binance)
            t, (n, calls) = _time(lambda s=source: _with_strategy(s, bn_params))
            times.append(t)
        print(_row("binance sample, strategy on every top change", n, times, f"strategy called on {calls / n:.1%}"))
    else:
        print(f"binance: {args.binance} not found (the shared data folder beside the project): skipped")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
