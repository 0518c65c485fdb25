"""The Python single-call path in isolation: ``Engine.submit`` of a passive limit in human units, then
``Engine.cancel`` of it, each call between two ``perf_counter_ns`` reads, pinned to the last core.

    .venv/bin/python bench/single_call.py [--calls 100000] [--engines 5]

The submit's order id is read from its events between the two timed windows: it is the caller's work on
the submit's result (``Engine.submit`` returns events decoded when read), not part of the cancel call.

Prints, over ``--engines`` fresh engines, the min and median of each one's p50 for submit and for cancel. To
compare two versions on this noisy machine, run them alternately (e.g. one from a ``git worktree`` with
``PYTHONPATH`` pointing at it) and compare the mins: docs/BENCHMARKS.md has an example.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from c_engine import Engine, EngineConfig, SymbolConfig


def one_engine(calls: int) -> tuple[float, float]:
    """(submit p50, cancel p50) in ns over ``calls`` submit/cancel pairs on a fresh engine."""
    engine = Engine(EngineConfig(max_orders=1 << 20))
    engine.add_symbol(SymbolConfig("S", tick_size=1.0, lot_size=1.0))
    submit, cancel, now = engine.submit, engine.cancel, time.perf_counter_ns
    lat = np.empty(2 * calls, dtype=np.int64)
    for i in range(calls):
        t0 = now()
        events = submit(1, "S", "buy", 5.0, float(1000 - i % 50), tif="GTC", cloid=i + 1, ts_ns=i)
        lat[2 * i] = now() - t0
        order_id = events[0].order_id
        t0 = now()
        cancel(1, order_id, ts_ns=i)
        lat[2 * i + 1] = now() - t0
    return float(np.percentile(lat[0::2], 50)), float(np.percentile(lat[1::2], 50))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--calls", type=int, default=100_000)
    ap.add_argument("--engines", type=int, default=5)
    a = ap.parse_args()
    os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    runs = [one_engine(a.calls) for _ in range(a.engines)]
    subs, cxls = [r[0] for r in runs], [r[1] for r in runs]
    print(
        f"submit p50 min {min(subs):.0f} ns median {np.median(subs):.0f} ns   "
        f"cancel p50 min {min(cxls):.0f} ns median {np.median(cxls):.0f} ns"
    )


if __name__ == "__main__":
    main()
