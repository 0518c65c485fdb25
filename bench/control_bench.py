"""What control-plane reads cost: the request's round trip, and how long each one parks the matching loop.

``position``, ``snapshot`` and ``state_hash`` read the engine's state, which only the loop's thread may touch while
it runs, so the control thread parks the loop at a pass boundary for the read (``pt_loop.h``, "Controller"):
for that long no order is matched. ``stats`` and ``symbols`` read nothing of the engine and pause nothing. This
benchmark starts the engine process (its C loop busy-spinning on its own core), rests ``--orders`` orders over
``--levels`` price levels a side from one client, then sends ``--requests`` of each op from this process and
reports, per op: the round trip (p50, p99) and the pause the server measured (mean, max; the control server's
own ``perf_counter_ns`` around the parked section, from its ``stats``). The gateway serves books and risk from its
own state for this reason, never by a control read per request. Writes ``build/bench/control.json``.

Usage: .venv/bin/python bench/control_bench.py [--orders N] [--levels L] [--requests R]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit, start_engine_process, stop_engine_process  # noqa: E402
from c_engine import EngineConfig, SymbolConfig  # noqa: E402
from hotpath import Client, ControlClient  # noqa: E402
from hotpath.engine_process import EngineProcessConfig  # noqa: E402

#: (label, op, fields); the symbol and client are filled in
OPS: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("stats", "stats", {}),
    ("position", "position", {"client": 1, "symbol": "BENCH"}),
    ("snapshot depth 10", "snapshot", {"symbol": "BENCH", "depth": 10}),
    ("snapshot full depth", "snapshot", {"symbol": "BENCH", "depth": 1 << 16}),
    ("state_hash", "state_hash", {}),
)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--orders", type=int, default=20_000, help="resting orders in the book (default 20,000)")
    p.add_argument("--levels", type=int, default=1_000, help="price levels a side they spread over")
    p.add_argument("--requests", type=int, default=300, help="requests of each op")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    return p.parse_args(argv)


def fill_book(client: Client, orders: int, levels: int) -> None:
    for i in range(orders):
        level = i % levels
        if i % 2:
            client.submit("BENCH", "sell", 1, 20_000 + level)
        else:
            client.submit("BENCH", "buy", 1, 10_000 - level)
        if i % 256 == 255:
            client.wait_events(256, timeout_s=30)
    client.wait_events(orders % 256, timeout_s=30)


def pause_totals(ctl: ControlClient) -> tuple[int, float, float]:
    s = ctl.request("stats")
    return int(s["pauses"]), float(s["pause_mean_us"]) * int(s["pauses"]), float(s["pause_max_us"])


def measure_op(ctl: ControlClient, op: str, fields: dict[str, Any], n: int) -> dict[str, Any]:
    count0, total0, _ = pause_totals(ctl)
    trips = []
    for _ in range(n):
        t0 = time.perf_counter_ns()
        ctl.request(op, **fields)
        trips.append(time.perf_counter_ns() - t0)
    count1, total1, max_us = pause_totals(ctl)
    pauses = count1 - count0  # the stats requests around the batch pause nothing
    trips.sort()
    return {
        "round_trip_p50_us": trips[len(trips) // 2] / 1e3,
        "round_trip_p99_us": trips[int(len(trips) * 0.99)] / 1e3,
        "pauses": max(pauses, 0),
        "pause_mean_us": (total1 - total0) / pauses if pauses > 0 else 0.0,
        "pause_max_us_of_the_run_so_far": max_us,
    }


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    prefix = f"pt_ctlbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    engine_core = max(os.sched_getaffinity(0))
    config = EngineProcessConfig(prefix=prefix, clients=(), symbols=(SymbolConfig("BENCH"),), core=engine_core,
                                 heartbeat_timeout_s=0.0, ring_capacity=4096,
                                 engine=EngineConfig(max_orders=max(1 << 16, 2 * a.orders), max_levels_per_side=1 << 14,
                                                     max_symbols=4, max_clients=64))  # fmt: skip
    print(f"control-plane reads: {a.requests} of each op over a book of {a.orders:,} orders on {a.levels:,} levels a "
          f"side; engine core {engine_core}; {cpu_model()}; commit {git_commit()}", flush=True)  # fmt: skip
    proc = start_engine_process(config)
    results: dict[str, Any] = {"commit": git_commit(), "cpu": cpu_model(), "orders": a.orders, "levels": a.levels}
    try:
        with Client(1, endpoint=config.endpoint, heartbeat=False) as client:
            fill_book(client, a.orders, a.levels)
            with ControlClient(config.endpoint) as ctl:
                for label, op, fields in OPS:
                    results[label] = measure_op(ctl, op, fields, a.requests)
                    r = results[label]
                    print(f"  {label:22s} round trip p50 {r['round_trip_p50_us']:8.1f} us  p99 "
                          f"{r['round_trip_p99_us']:8.1f} us   loop paused {r['pauses']:4d} times, mean "
                          f"{r['pause_mean_us']:8.1f} us", flush=True)  # fmt: skip
            client.close(cancel=True)
    finally:
        stop_engine_process(proc, prefix)
    results["pause_mean_us_median_of_paused_ops"] = statistics.median(
        results[label]["pause_mean_us"] for label, _, _ in OPS if results[label]["pauses"]
    )
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "control.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {a.out / 'control.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
