"""AsyncClient order -> ACK round trip beside the synchronous Client and the Python <-> C ring echo floor.

In one run, on two cores (the engine's, by default the last one, and the client's, the other one): the engine
process (``python -m hotpath.engine_process``, its C loop busy-spinning on its core) and this process, which
attaches two accounts through the control plane, a ``Client`` and an ``AsyncClient``, and times, in
alternating blocks of ``--block`` round trips (this VM's speed drifts within seconds, so each kind gets the
same mix of fast and slow periods):

- sync:  ``Client.submit`` (a buy limit far below the market: it rests, exactly one ACK) then ``wait_events(1)``
         (spin, yield, then back-off sleeps: the client as a strategy uses it);
- async: ``await AsyncClient.submit(...)`` on the default asyncio event loop (the drain task spins on the loop
         while a response is owed).

Each order is then cancelled (untimed) so the book stays empty. Latencies are read with ``time.perf_counter_ns``
around the call and summarised in the log-linear histogram of ``bench/ring_pingpong.py``. The floor, Python ->
C echo -> Python over two bare rings (``ring_pingpong.run_python``, needs ``build/ring_pingpong``: ``make
bench-async`` builds it), is measured in the same run. The target: async p50 <= 2x sync p50 (the median over
blocks of the per-block ratio). Writes ``build/bench/async_client.json``.

Usage: .venv/bin/python bench/async_client_bench.py [--round-trips N] [--block B] [--warmup N] [--cores C,E]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import signal
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import ring_pingpong  # noqa: E402
from bench.bench_common import cpu_model, git_commit, start_engine_process, stop_engine_process  # noqa: E402
from bench.ring_pingpong import hist_summary  # noqa: E402
from c_engine import EventType, SymbolConfig  # noqa: E402
from hotpath import AsyncClient, Client  # noqa: E402
from hotpath.engine_process import EngineProcessConfig  # noqa: E402

_ACK = int(EventType.ACK)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--round-trips", type=int, default=20_000, help="timed round trips per kind (default 20,000)")
    p.add_argument("--block", type=int, default=1_000, help="round trips per alternating block")
    p.add_argument("--warmup", type=int, default=2_000, help="untimed round trips per kind first")
    p.add_argument("--cores", help="CLIENT,ENGINE cores (default: the two last allowed)")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    return p.parse_args(argv)


def choose_cores(a: argparse.Namespace) -> tuple[int, int]:
    if a.cores:
        client, engine = (int(x) for x in a.cores.split(","))
        return client, engine
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        raise SystemExit("needs two cores: the engine spins on one, this client on the other")
    return allowed[-2], allowed[-1]


def start_engine(prefix: str, engine_core: int) -> tuple[subprocess.Popen[bytes], EngineProcessConfig]:
    config = EngineProcessConfig(prefix=prefix, clients=(), symbols=(SymbolConfig("BENCH"),), core=engine_core,
                                 heartbeat_timeout_s=0.0, ring_capacity=1024)  # fmt: skip
    return start_engine_process(config), config


def sync_block(client: Client, n: int, out: list[int]) -> None:
    now = time.perf_counter_ns
    for _ in range(n):
        t0 = now()
        client.submit("BENCH", "buy", 1, 90)
        ack = client.wait_events(1)[0]
        out.append(now() - t0)
        assert ack.type == _ACK, ack
        client.cancel(ack.order_id)
        client.wait_events(1)


async def async_block(client: AsyncClient, n: int, out: list[int]) -> None:
    now = time.perf_counter_ns
    for _ in range(n):
        t0 = now()
        ack = await client.submit("BENCH", "buy", 1, 90)
        out.append(now() - t0)
        assert ack.type == _ACK, ack
        await client.cancel(ack.order_id)


async def measure(endpoint: str, a: argparse.Namespace) -> dict[str, Any]:
    sync_client = Client(1, endpoint=endpoint, heartbeat=False)
    async_client = await AsyncClient.connect(2, endpoint=endpoint, heartbeat=False)
    try:
        sync_block(sync_client, a.warmup, [])
        await async_block(async_client, a.warmup, [])
        sync_ns: list[int] = []
        async_ns: list[int] = []
        ratios = []
        gc.disable()
        try:
            for start in range(0, a.round_trips, a.block):
                n = min(a.block, a.round_trips - start)
                s0, a0 = len(sync_ns), len(async_ns)
                sync_block(sync_client, n, sync_ns)
                await async_block(async_client, n, async_ns)
                ratios.append(statistics.median(async_ns[a0:]) / statistics.median(sync_ns[s0:]))
                print(f"  block {start // a.block + 1}: sync p50 {statistics.median(sync_ns[s0:]) / 1e3:.1f} us, "
                      f"async p50 {statistics.median(async_ns[a0:]) / 1e3:.1f} us", flush=True)  # fmt: skip
        finally:
            gc.enable()
    finally:
        await async_client.close()
        sync_client.close()
    return {
        "sync": hist_summary(np.array(sync_ns)),
        "async": hist_summary(np.array(async_ns)),
        "async_over_sync_p50_median_of_blocks": statistics.median(ratios),
        "blocks": len(ratios),
    }


def measure_floor(a: argparse.Namespace, client_core: int, engine_core: int) -> dict[str, Any]:
    binary = ROOT / "build" / "ring_pingpong"
    if not binary.exists():
        return {"skipped": f"{binary} not built (make bench-async builds it)"}
    ns = argparse.Namespace(round_trips=a.round_trips, warmup=a.warmup, core_a=client_core, core_b=engine_core,
                            capacity=1024, max_seconds=1e9, bin=binary)  # fmt: skip
    try:
        return ring_pingpong.run_python(ns)
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    client_core, engine_core = choose_cores(a)
    prefix = f"pt_asyncbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    print(
        f"AsyncClient vs Client order -> ACK: {a.round_trips:,} round trips each in blocks of {a.block:,}; "
        f"client core {client_core}, engine core {engine_core}; {cpu_model()}; commit {git_commit()}",
        flush=True,
    )
    results: dict[str, Any] = {"commit": git_commit(), "cpu": cpu_model(), "cores": [client_core, engine_core]}
    print("floor: Python <-> C echo over bare rings", flush=True)
    results["floor"] = measure_floor(a, client_core, engine_core)
    proc, config = start_engine(prefix, engine_core)
    os.sched_setaffinity(0, {client_core})
    try:
        results.update(asyncio.run(measure(config.endpoint, a)))
    finally:
        stop_engine_process(proc, prefix)
    floor = results["floor"].get("latency", results["floor"])
    rows = [("floor (ring echo)", floor), ("sync Client", results["sync"]), ("AsyncClient", results["async"])]
    print(f"\n{'':20s} {'p50 us':>8s} {'p90 us':>8s} {'p99 us':>8s} {'p99.9 us':>9s}")
    for label, r in rows:
        if "p50_ns" in r:
            print(f"{label:20s} " + " ".join(f"{r[f'p{p}_ns'] / 1e3:8.2f}" for p in ("50", "90", "99", "99.9")))
        else:
            print(f"{label:20s} {r.get('skipped', 'n/a')}")
    ratio = results["async_over_sync_p50_median_of_blocks"]
    verdict = "PASS" if ratio <= 2.0 else "FAIL"
    print(f"\nasync p50 / sync p50, median over {results['blocks']} blocks: {ratio:.2f} (target <= 2.0: {verdict})")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "async_client.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {a.out / 'async_client.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
