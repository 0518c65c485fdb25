"""An order's round trip through the Binance-compatible API with the stock ccxt client, next to the gateway's own
API, in one run.

::

    python bench/binance_api_bench.py [--orders 500] [--rounds 3]

``proptrade up`` launches a platform (the engine on its own core, the gateway, no agents) on a free port; two
clients then place and cancel orders, one pair at a time, each over one keep-alive connection on 127.0.0.1:

- **ccxt**: ``ccxt.binance`` (sync, pointed at the gateway, its throttle off so that only the round trip is
  timed) ``create_order`` (LIMIT GTC, FULL answer) then ``cancel_order``: two signed requests, with ccxt's own
  signing, parsing and unification included;
- **seed**: httpx ``POST /order`` then ``POST /cancel/{order_id}`` on the gateway's own API.

The clients run off the engine's core. Each pair (create + cancel) is timed with the monotonic clock; the
orders rest far below the market, so the book never grows. Per round: ``--orders`` pairs of each after 50 of
warm-up, the two clients alternating in blocks of 50 so that the machine's drift hits both alike; the
percentiles of every round's pairs are printed, and the ratio of the p50s (the cost of Binance's shapes,
signing and the ccxt client over the seed API).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ccxt
import httpx
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.bench_common import cpu_model, git_commit  # noqa: E402
from hotpath.testing import ServedPlatform  # noqa: E402

SECRET = "bench-secret-" + "b" * 51
CONFIG = """
[engine]
ring_capacity = 4096
md_capacity = 65536
max_orders = 65536

[[symbols]]
name = "SIM"
tick_size = 0.01
band_ticks = 5000
reference_price = 10000

[bridge]
enabled = false

[[accounts]]
name = "bench"
client = 20
api_key = "bench-key"
secret_file = "{secret}"

[probe]
hz = 0

[gateway]
port = 0
rate_per_s = 0
"""
#: pairs per block: the clients alternate every BLOCK pairs
BLOCK = 50


def launch(directory: Path) -> ServedPlatform:
    """``proptrade up`` on :data:`CONFIG` in ``directory``, its secret in a file there."""
    secret = directory / "bench.secret"
    secret.write_text(SECRET)
    return ServedPlatform(CONFIG.replace("{secret}", str(secret)), directory, "bnb")


def ccxt_pair(url: str) -> Callable[[int], None]:
    ex = ccxt.binance({"apiKey": "bench-key", "secret": SECRET, "enableRateLimit": False,
                       "options": {"defaultType": "spot", "fetchMarkets": {"types": ["spot"]},
                                   "fetchCurrencies": False, "fetchMargins": False}})  # fmt: skip
    ex.urls["api"]["public"] = ex.urls["api"]["private"] = f"{url}/api/v3"
    ex.load_markets()

    def pair(i: int) -> None:
        order = ex.create_order("SIM/USD", "limit", "buy", 1, 90.0 + (i % 100) / 100)
        if ex.cancel_order(order["id"], "SIM/USD")["status"] != "canceled":
            raise RuntimeError(f"ccxt: not cancelled: {order}")

    return pair


def seed_pair(url: str) -> Callable[[int], None]:
    client = httpx.Client(base_url=url, headers={"X-API-Key": "bench-key"}, timeout=10.0)
    body: dict[str, Any] = {"client_id": "bench", "symbol": "SIM", "side": "buy", "type": "limit", "size": 1}

    def pair(i: int) -> None:
        ack = client.post("/order", json={**body, "price": 90.0 + (i % 100) / 100}).json()
        if client.post(f"/cancel/{ack['order_id']}").json()["status"] != "cancelled":
            raise RuntimeError(f"seed: not cancelled: {ack}")

    return pair


def percentiles(ns: np.ndarray[Any, Any]) -> str:
    p = np.percentile(ns, [50, 90, 99]) / 1e3
    return f"p50 {p[0]:8.1f} us  p90 {p[1]:8.1f}  p99 {p[2]:8.1f}  max {ns.max() / 1e3:9.1f}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--orders", type=int, default=500, help="create + cancel pairs per client and round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"binance_api_bench: orders {args.orders} per client and round, rounds {args.rounds}, blocks of {BLOCK}")
    print(f"cpu: {cpu_model()}, {len(os.sched_getaffinity(0))} cores; "
          f"commit {git_commit('gateway', 'bench/binance_api_bench.py')}")  # fmt: skip
    cores = os.sched_getaffinity(0)
    # the engine spins on the last core (proptrade up's default): the clients keep off it, as the gateway does
    os.sched_setaffinity(0, (cores - {max(cores)}) or cores)
    with tempfile.TemporaryDirectory() as tmp:
        platform = launch(Path(tmp))
        try:
            clients = {"ccxt": ccxt_pair(platform.url), "seed": seed_pair(platform.url)}
            for pair in clients.values():
                for i in range(BLOCK):
                    pair(i)
            p50s: dict[str, list[float]] = {name: [] for name in clients}
            for round_ in range(args.rounds):
                times: dict[str, list[int]] = {name: [] for name in clients}
                for start in range(0, args.orders, BLOCK):
                    for name, pair in clients.items():
                        for i in range(start, min(start + BLOCK, args.orders)):
                            t0 = time.perf_counter_ns()
                            pair(i)
                            times[name].append(time.perf_counter_ns() - t0)
                for name, values in times.items():
                    ns = np.array(values)
                    p50s[name].append(float(np.percentile(ns, 50)))
                    print(f"[{round_}] {name:5s} create+cancel {percentiles(ns)}")
        finally:
            left = platform.stop()
            if left:
                print(f"removed what the run left: {left}")
    ratio = float(np.median([c / s for c, s in zip(p50s["ccxt"], p50s["seed"], strict=True)]))
    print(f"median over rounds: ccxt p50 {np.median(p50s['ccxt']) / 1e3:.1f} us, seed p50 "
          f"{np.median(p50s['seed']) / 1e3:.1f} us; ccxt/seed {ratio:.2f}x")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
