"""What control-plane reads cost: the request's round trip, and how long each one parks the matching loop.

``position``, ``snapshot`` and ``state_hash`` read the engine's state, which only the loop's thread may touch while
it runs, so the control thread parks the loop at a pass boundary for the read (``pt_loop.h``, "Controller"):
for that long no order is matched. ``stats`` and ``symbols`` read nothing of the engine and pause nothing. This
benchmark starts the engine process (its C loop busy-spinning on its own core), rests ``--orders`` orders over
``--levels`` price levels a side from one client, then sends ``--requests`` of each op from this process and
reports, per op: the round trip (p50, p99) and the pause the server measured (mean, max; the control server's
own ``perf_counter_ns`` around the parked section, from its ``stats``). The gateway serves books and risk from its
own state for this reason, never by a control read per request. These requests carry the operator key, which
the per-caller rate limit leaves alone, so they measure the ops themselves.

Then the flood (``--flood-s`` seconds a variant): another process sends full-depth snapshots back to back, as
fast as its replies come, while this process times order -> ACK round trips of a second client (a post-only
buy far behind the touch, then its cancel, one after another). Three variants, each on a fresh engine with the
same book: no flood; a flood with the rate limit off (``control_pause_us_per_s = 0``); a flood with the default
limit (each caller may pause the loop 5 ms a second; a refused snapshot pauses nothing). Reported: the ACK
round trip p50, p99, p99.9 and max (the timed client spins on its event ring), the share of the time the loop
was paused (the server's own measure), and how many snapshots were served and refused. The flooder, this process
and the engine's control thread share the cores the engine leaves free, so part of what a flood costs is CPU,
not pause. Writes ``build/bench/control.json``.

Usage: .venv/bin/python bench/control_bench.py [--orders N] [--levels L] [--requests R] [--flood-s S]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import textwrap
import time
import uuid
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit, start_engine_process, stop_engine_process  # noqa: E402
from c_engine import Command, EngineConfig, Event, EventType, Side, SymbolConfig  # noqa: E402
from hotpath import Client, ControlClient  # noqa: E402
from hotpath.control_client import load_operator_key  # noqa: E402
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
    p.add_argument("--flood-s", type=float, default=3.0, help="seconds of ACK timing per flood variant")
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


#: the flooder: full-depth snapshots back to back until its time is up; prints "served refused"
FLOODER = textwrap.dedent("""
    import sys, time
    from hotpath.control_client import ControlClient, ControlError
    endpoint, seconds = sys.argv[1], float(sys.argv[2])
    served = refused = 0
    with ControlClient(endpoint, timeout_s=10.0, wait_rate_limited=False) as ctl:
        print("ready", flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            try:
                ctl.request("snapshot", symbol="BENCH", depth=1 << 16)
                served += 1
            except ControlError as e:
                if e.code != "RATE_LIMITED":
                    raise
                refused += 1
    print(served, refused, flush=True)
""")


def ack_round_trips(client: Client, seconds: float) -> list[int]:
    """Order -> ACK round trips (ns) of post-only buys far behind the touch, each cancelled before the next."""
    trips = []
    end = time.monotonic() + seconds
    cloid = 0
    while time.monotonic() < end:
        cloid += 1
        order = Command.new(client.client_id, 0, Side.BUY, 1, 5_000, post_only=True, cloid=cloid,
                            ts_ns=time.monotonic_ns())  # fmt: skip
        t0 = time.perf_counter_ns()
        client.send(order)
        got: list[Event] = []
        while not got:  # spins: the wait is microseconds unless the loop is paused
            got = client.poll(1)
        ack = got[0]
        trips.append(time.perf_counter_ns() - t0)
        if ack.type != EventType.ACK:
            raise RuntimeError(f"the timed order was not acknowledged: {ack}")
        client.cancel(ack.order_id)
        client.wait_events(1, timeout_s=10)
    return trips


def flood_variant(config: EngineProcessConfig, a: argparse.Namespace, flood: bool) -> dict[str, Any]:
    """One engine with the book; ACK round trips for ``a.flood_s`` seconds, with a flooder process or not."""
    proc = start_engine_process(config)
    try:
        with Client(1, endpoint=config.endpoint, heartbeat=False) as maker, \
                Client(2, endpoint=config.endpoint, heartbeat=False) as timed:  # fmt: skip
            fill_book(maker, a.orders, a.levels)
            ack_round_trips(timed, 0.3)  # warm-up
            flooder = None
            if flood:
                flooder = subprocess.Popen([sys.executable, "-c", FLOODER, config.endpoint, str(a.flood_s + 0.5)],
                                           stdout=subprocess.PIPE, text=True)  # fmt: skip
                assert flooder.stdout is not None
                assert flooder.stdout.readline().strip() == "ready"
                time.sleep(0.2)  # flooding
            with ControlClient(config.endpoint, operator_key=load_operator_key(prefix=config.prefix)) as ctl:
                count0, total0, _ = pause_totals(ctl)
                t0 = time.monotonic()
                trips = sorted(ack_round_trips(timed, a.flood_s))
                window_s = time.monotonic() - t0
                count1, total1, _ = pause_totals(ctl)
            served = refused = 0
            if flooder is not None:
                out, _ = flooder.communicate(timeout=60)
                served, refused = (int(x) for x in out.split())
            maker.close(cancel=True)
    finally:
        stop_engine_process(proc, config.prefix)

    def pct(q: float) -> float:
        return trips[min(len(trips) - 1, int(len(trips) * q))] / 1e3

    return {"acks": len(trips), "ack_p50_us": pct(0.5), "ack_p99_us": pct(0.99), "ack_p999_us": pct(0.999),
            "ack_max_us": trips[-1] / 1e3, "snapshots_served": served, "snapshots_refused": refused,
            "loop_paused_share": (total1 - total0) / 1e6 / window_s, "pauses": count1 - count0}  # fmt: skip


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
            with ControlClient(config.endpoint, operator_key=load_operator_key(prefix=prefix)) as ctl:
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
    print(f"order -> ACK of one client, {a.flood_s:g} s each, while another process floods full-depth snapshots:",
          flush=True)  # fmt: skip
    variants = (("no flood", config, False),
                ("flood, no rate limit", dataclasses.replace(config, control_pause_us_per_s=0.0), True),
                ("flood, rate limit", config, True))  # fmt: skip
    results["flood"] = {}
    for label, cfg, flood in variants:
        cfg = dataclasses.replace(cfg, prefix=f"{prefix}_{len(results['flood'])}")
        r = results["flood"][label] = flood_variant(cfg, a, flood)
        print(f"  {label:22s} ACK p50 {r['ack_p50_us']:7.1f} us  p99 {r['ack_p99_us']:8.1f} us  p99.9 "
              f"{r['ack_p999_us']:8.1f} us  max {r['ack_max_us']:8.1f} us  (n={r['acks']:,}); loop paused "
              f"{100 * r['loop_paused_share']:.1f}% of the time; snapshots served {r['snapshots_served']:,}, "
              f"refused {r['snapshots_refused']:,}", flush=True)  # fmt: skip
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "control.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {a.out / 'control.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
