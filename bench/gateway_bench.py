"""The gateway's cost over the bare framework, and uvloop against asyncio, in one run.

::

    python bench/gateway_bench.py [--orders 2000] [--seconds 3] [--concurrency 16] [--subscribers 100]

An engine process (pinned to the last core, as ``proptrade up`` runs it) and, one after the other, four
servers under the same uvicorn settings (httptools, access log off) on 127.0.0.1: the gateway with uvloop and
with asyncio, and a bare FastAPI app with one ``POST /order`` (the same request model, a declared response
model, no engine) with uvloop and with asyncio. For each:

- **round trip**: sequential ``POST /order`` over one keep-alive connection (httpx), ``--orders`` of them after
  a warm-up; p50/p90/p99/p99.9/max. Gateway orders are IOC buys below an empty book: each is ACKed and
  cancelled by the engine, so the book never grows.
- **throughput**: ``--concurrency`` keep-alive connections posting orders as fast as they are answered for
  ``--seconds`` (an asyncio httpx load generator in this process, on loopback only), in requests/s.
- **market data** (gateways only): ``--subscribers`` WebSocket clients on ``/ws/md`` while one client rests and
  cancels orders as fast as it can for ``--seconds``; messages received per second over all subscribers.

The ratios are the point (the targets: round trip p50 <= 2x the bare framework's, throughput >= 0.8x); the
load generator shares the machine with the server, so absolute rates understate a dedicated client's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import numpy as np

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from fastapi import FastAPI
from pydantic import BaseModel

from bench.bench_common import cpu_model, git_commit, start_engine_process, stop_engine_process
from gateway.models import OrderRequest
from gateway.server import bind, ready_line

PLATFORM = """
[engine]
ring_capacity = 4096
md_capacity = 65536

[[symbols]]
name = "SIM"
tick_size = 0.01
band_ticks = 100000
reference_price = 10000

[[accounts]]
name = "bench"
client = 20
api_key = "bench-key"

[probe]
hz = 0

[gateway]
port = 0
rate_per_s = 0
ws_queue = 100000
"""
KEY = {"X-API-Key": "bench-key"}
ORDER = {"client_id": "bench", "side": "buy", "type": "limit", "price": 99.0, "size": 1, "time_in_force": "IOC"}
RESTING = {"client_id": "bench", "side": "buy", "type": "limit", "price": 98.0, "size": 1}


class Ack(BaseModel):
    """The bare app's answer: a declared response model, as the gateway's routes have."""

    status: str
    order_id: int
    client_id: str
    price: float | None
    size: float


def bare_app() -> FastAPI:
    """The framework floor: one POST /order with the gateway's request model and a declared response model."""
    app = FastAPI()
    counter = iter(range(1, 1 << 62))

    async def order(req: OrderRequest) -> Ack:
        return Ack(status="accepted", order_id=next(counter), client_id=req.client_id, price=req.price,
                   size=req.size)  # fmt: skip

    app.add_api_route("/order", order, methods=["POST"])
    return app


def serve_bare(loop: str) -> None:
    import uvicorn

    app = bare_app()

    sock = bind("127.0.0.1", 0)
    host, port = sock.getsockname()[:2]
    config = uvicorn.Config(app, loop=loop, http="httptools", lifespan="on", access_log=False, log_level="warning")

    class Server(uvicorn.Server):
        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            ready_line(f"http://{host}:{port}")

    Server(config).run(sockets=[sock])


def start(argv: list[str], stdin: bytes | None = None) -> tuple[subprocess.Popen[bytes], str]:
    proc = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE if stdin else None,
                            stdout=subprocess.PIPE)  # fmt: skip
    if stdin is not None:
        assert proc.stdin is not None
        proc.stdin.write(stdin)
        proc.stdin.close()
    assert proc.stdout is not None
    line = proc.stdout.readline().decode().strip()
    if not line.startswith("ready "):
        proc.kill()
        raise RuntimeError(f"{argv} did not start: {line!r}")
    return proc, line.removeprefix("ready ")


def stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def round_trips(url: str, n: int, headers: dict[str, str]) -> np.ndarray[Any, Any]:
    import httpx

    out = np.empty(n, dtype=np.int64)
    with httpx.Client(base_url=url, headers=headers, timeout=10.0) as client:
        for _ in range(min(200, n)):  # warm-up
            client.post("/order", json=ORDER).raise_for_status()
        for i in range(n):
            t0 = time.perf_counter_ns()
            r = client.post("/order", json=ORDER)
            out[i] = time.perf_counter_ns() - t0
            if r.status_code != 200:
                raise RuntimeError(f"{url}: {r.status_code} {r.text}")
    return out


async def throughput(url: str, seconds: float, concurrency: int, headers: dict[str, str]) -> float:
    import httpx

    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    done = 0
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits, timeout=10.0) as client:
        deadline = time.monotonic() + seconds

        async def worker() -> None:
            nonlocal done
            while time.monotonic() < deadline:
                (await client.post("/order", json=ORDER)).raise_for_status()
                done += 1

        t0 = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        return done / (time.monotonic() - t0)


async def market_data(url: str, seconds: float, subscribers: int) -> float:
    import httpx
    from websockets.asyncio.client import connect

    ws_url = url.replace("http://", "ws://") + "/ws/md"
    clients = [await connect(ws_url, max_queue=None) for _ in range(subscribers)]
    received = 0
    stop_at = time.monotonic() + seconds

    async def reader(ws: Any) -> None:
        nonlocal received
        try:
            while True:
                await asyncio.wait_for(ws.recv(), max(0.1, stop_at - time.monotonic() + 1))
                received += 1
        except (TimeoutError, Exception):
            return

    readers = [asyncio.create_task(reader(ws)) for ws in clients]
    async with httpx.AsyncClient(base_url=url, headers=KEY, timeout=10.0) as client:
        t0 = time.monotonic()
        while time.monotonic() < stop_at:  # each rest + cancel: two book deltas per subscriber
            ack = (await client.post("/order", json=RESTING)).json()
            await client.post(f"/cancel/{ack['order_id']}")
        elapsed = time.monotonic() - t0
    counted = received
    for ws in clients:
        await ws.close()
    await asyncio.gather(*readers, return_exceptions=True)
    return counted / elapsed


def percentiles(ns: np.ndarray[Any, Any]) -> str:
    p = np.percentile(ns, [50, 90, 99, 99.9]) / 1e3
    return (f"p50 {p[0]:7.1f} us  p90 {p[1]:7.1f}  p99 {p[2]:7.1f}  p99.9 {p[3]:7.1f}  "
            f"max {ns.max() / 1e3:8.1f}")  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--serve-bare", choices=("uvloop", "asyncio"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    from hotpath.launcher import load_config

    prefix = f"pt_gwb_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    platform = load_config(PLATFORM, prefix=prefix)
    print(f"gateway_bench: orders {args.orders}, seconds {args.seconds}, concurrency {args.concurrency}, "
          f"subscribers {args.subscribers}")  # fmt: skip
    print(f"cpu: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; engine pinned to the last; "
          f"commit {git_commit('gateway', 'bench/gateway_bench.py')}")  # fmt: skip
    import dataclasses

    engine_cfg = dataclasses.replace(platform.engine, core=max(os.sched_getaffinity(0)))
    engine = start_engine_process(engine_cfg)
    results: dict[str, dict[str, float]] = {}
    try:
        payload = platform.gateway_payload().encode()
        for loop in ("uvloop", "asyncio"):
            for kind in ("gateway", "bare"):
                if kind == "gateway":
                    argv = ["-m", "gateway.server", "--prefix", prefix, "--from-launcher", "--loop", loop]
                    proc, url = start(argv, payload)
                else:
                    proc, url = start([__file__, "--serve-bare", loop])
                try:
                    headers = KEY if kind == "gateway" else {}
                    rt = round_trips(url, args.orders, headers)
                    rps = asyncio.run(throughput(url, args.seconds, args.concurrency, headers))
                    md = asyncio.run(market_data(url, args.seconds, args.subscribers)) if kind == "gateway" else 0.0
                finally:
                    stop(proc)
                name = f"{kind} {loop}"
                results[name] = {"p50": float(np.percentile(rt, 50)), "rps": rps}
                print(f"{name:16s} round trip {percentiles(rt)}")
                extra = f"   md {md:11,.0f} msg/s to {args.subscribers} subscribers" if md else ""
                print(f"{name:16s} throughput {rps:9,.0f} req/s{extra}")
    finally:
        stop_engine_process(engine, prefix)
    for loop in ("uvloop", "asyncio"):
        gw, bare = results[f"gateway {loop}"], results[f"bare {loop}"]
        print(f"{loop}: gateway/bare round trip p50 {gw['p50'] / bare['p50']:.2f}x (target <= 2), "
              f"throughput {gw['rps'] / bare['rps']:.2f}x (target >= 0.8)")  # fmt: skip
    print(f"gateway uvloop/asyncio: round trip p50 "
          f"{results['gateway uvloop']['p50'] / results['gateway asyncio']['p50']:.2f}x, throughput "
          f"{results['gateway uvloop']['rps'] / results['gateway asyncio']['rps']:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
