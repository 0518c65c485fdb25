"""The gateway's cost over the bare framework, and uvloop against asyncio, in one run.

::

    python bench/gateway_bench.py [--orders 2000] [--seconds 3] [--concurrency 16] [--subscribers 100]
                                  [--rounds 1] [--loops uvloop,asyncio]

An engine process (pinned to the last core, as ``proptrade up`` runs it; this process and the servers on the
others) and, one after the other, four servers under the same uvicorn settings (httptools, access log off) on
127.0.0.1: the gateway with uvloop and with asyncio, and a bare FastAPI app with one ``POST /order`` (the same
request model, a declared response model, no engine) with uvloop and with asyncio. For each:

- **round trip**: sequential ``POST /order`` over one keep-alive connection (httpx), ``--orders`` of them after
  a warm-up; p50/p90/p99/p99.9/max. Gateway orders are IOC buys below an empty book: each is ACKed and
  cancelled by the engine, so the book never grows.
- **throughput**: ``--concurrency`` keep-alive connections posting orders as fast as they are answered for
  ``--seconds`` (an asyncio httpx load generator in this process, on loopback only), in requests/s.
- **market data** (gateways only): ``--subscribers`` WebSocket clients on ``/ws/md`` while one client rests and
  cancels orders as fast as it can for ``--seconds``; messages received per second over all subscribers.

With ``--rounds N`` the whole set runs N times, servers interleaved, and the medians over rounds are printed
(this shared VM's speed drifts: a ratio taken within one round is steadier than one across runs). The ratios are
the point (the targets: round trip p50 <= 2x the bare framework's, throughput >= 0.8x); the load generator
shares the machine with the server, so absolute rates understate a dedicated client's. Each server's CPU time
per sequential order (from /proc) is printed too: it is the server's own cost, which the machine's other load
does not inflate as it does a latency.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
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
#: the load generator's sockets send each request at once: without it, httpx's header and body writes wait on
#: Nagle's algorithm and the server's delayed ACK (a 40 ms round trip under the asyncio loop)
NODELAY = [(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)]


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
    proc = subprocess.Popen([sys.executable, *argv], stdin=subprocess.PIPE if stdin else None, stdout=subprocess.PIPE)
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


def cpu_s(pid: int) -> float:
    """CPU time (user + system, every thread) the process ``pid`` has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def round_trips(url: str, n: int, headers: dict[str, str]) -> np.ndarray[Any, Any]:
    import httpx

    out = np.empty(n, dtype=np.int64)
    transport = httpx.HTTPTransport(socket_options=NODELAY)
    with httpx.Client(base_url=url, headers=headers, timeout=10.0, transport=transport) as client:
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
    transport = httpx.AsyncHTTPTransport(limits=limits, socket_options=NODELAY)
    async with httpx.AsyncClient(base_url=url, headers=headers, timeout=10.0, transport=transport) as client:
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
    transport = httpx.AsyncHTTPTransport(socket_options=NODELAY)
    async with httpx.AsyncClient(base_url=url, headers=KEY, timeout=10.0, transport=transport) as client:
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


def run_once(args: argparse.Namespace, loops: list[str], prefix: str, payload: bytes,
             round_: int) -> dict[str, dict[str, float]]:  # fmt: skip
    """One round: each server of each loop in turn; returns name -> p50 (ns), rps, md msg/s."""
    results: dict[str, dict[str, float]] = {}
    for loop in loops:
        for kind in ("gateway", "bare"):
            if kind == "gateway":
                argv = ["-m", "gateway.server", "--prefix", prefix, "--from-launcher", "--loop", loop]
                proc, url = start(argv, payload)
            else:
                proc, url = start([__file__, "--serve-bare", loop])
            try:
                headers = KEY if kind == "gateway" else {}
                cpu0 = cpu_s(proc.pid)
                rt = round_trips(url, args.orders, headers)
                cpu1 = cpu_s(proc.pid)
                rps = asyncio.run(throughput(url, args.seconds, args.concurrency, headers))
                md = asyncio.run(market_data(url, args.seconds, args.subscribers)) if kind == "gateway" else 0.0
            finally:
                stop(proc)
            name = f"{kind} {loop}"
            cpu_us = (cpu1 - cpu0) / (len(rt) + min(200, len(rt))) * 1e6  # the warm-up's orders too
            results[name] = {"p50": float(np.percentile(rt, 50)), "rps": rps, "md": md, "cpu": cpu_us}
            print(f"[{round_}] {name:16s} round trip {percentiles(rt)}  server cpu {cpu_us:6.1f} us/order")
            extra = f"   md {md:11,.0f} msg/s to {args.subscribers} subscribers" if md else ""
            print(f"[{round_}] {name:16s} throughput {rps:9,.0f} req/s{extra}", flush=True)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--subscribers", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=1, help="repeat the whole set; report medians over rounds")
    parser.add_argument("--loops", default="uvloop,asyncio", help="comma-separated: uvloop, asyncio")
    parser.add_argument("--serve-bare", choices=("uvloop", "asyncio"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.serve_bare:
        serve_bare(args.serve_bare)
        return 0
    import dataclasses

    from hotpath.launcher import load_config

    loops = [loop for loop in args.loops.split(",") if loop]
    prefix = f"pt_gwb_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    platform = load_config(PLATFORM, prefix=prefix)
    print(f"gateway_bench: orders {args.orders}, seconds {args.seconds}, concurrency {args.concurrency}, "
          f"subscribers {args.subscribers}, rounds {args.rounds}, loops {loops}")  # fmt: skip
    print(f"cpu: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; engine pinned to the last; "
          f"commit {git_commit('gateway', 'bench/gateway_bench.py')}")  # fmt: skip
    engine_cfg = dataclasses.replace(platform.engine, core=max(os.sched_getaffinity(0)))
    engine = start_engine_process(engine_cfg)
    # As proptrade up runs them: every process but the engine on the other cores (the servers inherit this).
    # A server left free to land on the engine's core time-slices with its busy loop: milliseconds per order.
    os.sched_setaffinity(0, (os.sched_getaffinity(0) - {engine_cfg.core}) or os.sched_getaffinity(0))
    rounds: list[dict[str, dict[str, float]]] = []
    try:
        payload = platform.gateway_payload().encode()
        for round_ in range(args.rounds):
            rounds.append(run_once(args, loops, prefix, payload, round_))
    finally:
        stop_engine_process(engine, prefix)

    def median(name: str, field: str) -> float:
        return statistics.median(r[name][field] for r in rounds)

    def median_ratio(a: str, b: str, field: str) -> float:
        return statistics.median(r[a][field] / r[b][field] for r in rounds)

    print(f"medians over {args.rounds} round(s):")
    for loop in loops:
        for kind in ("gateway", "bare"):
            name = f"{kind} {loop}"
            md = f", md {median(name, 'md'):,.0f} msg/s" if kind == "gateway" else ""
            print(f"  {name:16s} round trip p50 {median(name, 'p50') / 1e3:7.1f} us, "
                  f"server cpu {median(name, 'cpu'):6.1f} us/order, "
                  f"throughput {median(name, 'rps'):7,.0f} req/s{md}")  # fmt: skip
    for loop in loops:
        gw, bare = f"gateway {loop}", f"bare {loop}"
        print(f"{loop}: gateway/bare round trip p50 {median_ratio(gw, bare, 'p50'):.2f}x (target <= 2), "
              f"throughput {median_ratio(gw, bare, 'rps'):.2f}x (target >= 0.8), "
              f"server cpu per sequential order {median_ratio(gw, bare, 'cpu'):.2f}x")  # fmt: skip
    if len(loops) == 2:
        uv, aio = "gateway uvloop", "gateway asyncio"
        print(f"gateway uvloop/asyncio: round trip p50 {median_ratio(uv, aio, 'p50'):.2f}x, "
              f"throughput {median_ratio(uv, aio, 'rps'):.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
