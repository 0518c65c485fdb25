"""Sustained batched throughput of one link acting for many accounts, beside a one-account client.

A link is one client's ring pair granted many accounts (``Client(1, accounts=[...])``, ``pt_loop_grant``): each
command names the account it acts for and the loop checks it against the grant; every event of a granted account
comes back on the link. On two cores (the engine process, ``python -m hotpath.engine_process``, busy-spinning on
one; this process, busy-polling, on the other), this measures how many orders a second such a link sustains.

The commands are built once, before any timing: ``--accounts`` ids, paired in order, each pair a 1-lot GTC sell
of the first account and a 1-lot IOC buy of the second at the same price, so every buy takes the sell just
before it and the book is empty after each pair. They are pushed ``--batch`` rows at a time with
``Client.send_batch`` from a ``COMMAND_DTYPE`` array, round and round through the accounts, and the events are
drained with ``Client.poll_batch`` in the same loop. A batch is pushed only while the events of everything in
flight fit in the event ring, so the engine never waits on this reader and ``send_batch`` never backs off. Each
run ends when every order's events (ACK and FILL for each) are back; the rate is those orders over that time.
Every run checks the counts, that the events' account ids sum to what the pushed orders' do (each event reached
the link for the right account), and that the engine counted the same commands.

The same loop on the same array (its ``client_id`` column set to that client's own id) runs on a one-account
client (no grant) attached to the same engine, alternating with the link run by run, so each pair of runs shares
this VM's period; the ratio link / one-account is the median of the per-pair ratios. Target: the link's median
>= 200 k orders/s. Writes ``build/bench/link.json``.

Usage: .venv/bin/python bench/link_bench.py [--accounts N] [--batch B] [--seconds S] [--runs R] [--cores C,E]
"""

from __future__ import annotations

import argparse
import gc
import json
import math
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
import numpy.typing as npt

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit  # noqa: E402
from bench.zmq_engine_server import die_with_parent  # noqa: E402
from c_engine import COMMAND_DTYPE, Command, EngineConfig, EventType, Side, Stp, SymbolConfig, Tif  # noqa: E402
from hotpath import Client  # noqa: E402
from hotpath.engine_control import EngineControl  # noqa: E402
from hotpath.engine_process import EngineProcessConfig  # noqa: E402
from hotpath.names import SHM_DIR  # noqa: E402

ACK, FILL = int(EventType.ACK), int(EventType.FILL)
LINK_ID, SINGLE_ID = 1, 2
FIRST_ACCOUNT = 3  #: the link's accounts are FIRST_ACCOUNT .. FIRST_ACCOUNT + accounts - 1
PRICE_TICKS = 1_000
TARGET_ORDERS_PER_S = 200_000
START_TIMEOUT_S = 30.0
DRAIN_TIMEOUT_S = 10.0  #: after the last push, how long the rest of the events may take
RING_CAPACITY = 1 << 13  #: slots of each client ring (commands and events alike)


class BenchError(RuntimeError):
    """The run went wrong (lost or unexpected events, the engine exited): no figure is reported."""


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--accounts", type=int, default=1_000, help="accounts granted to the link, even (default 1,000)")
    p.add_argument("--batch", type=int, default=512, help="rows per send_batch, even (default 512)")
    p.add_argument("--seconds", type=float, default=3.0, help="pushing time per run (default 3)")
    p.add_argument("--runs", type=int, default=5, help="runs of each kind, alternating (default 5)")
    p.add_argument("--warmup-seconds", type=float, default=0.5, help="one discarded run of each kind first")
    p.add_argument("--cores", help="CLIENT,ENGINE cores (default: the first and the last allowed)")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    a = p.parse_args(argv)
    if a.accounts < 2 or a.accounts % 2 or a.batch < 2 or a.batch % 2 or a.batch > RING_CAPACITY // 2:
        p.error(f"--accounts and --batch must be even and >= 2, --batch at most {RING_CAPACITY // 2}")
    return a


def choose_cores(a: argparse.Namespace) -> tuple[int, int]:
    """(client core, engine core); SystemExit(2) unless they are two different allowed cores."""
    allowed = sorted(os.sched_getaffinity(0))
    if len(allowed) < 2:
        print(f"link_bench.py: refusing: {len(allowed)} core allowed; the engine and this client both spin and "
              "need a core each", file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    client, engine = (int(c) for c in a.cores.split(",")) if a.cores else (allowed[0], allowed[-1])
    if client == engine or not {client, engine} <= set(allowed):
        print(f"link_bench.py: refusing: cores {client},{engine} must be two different cores of {allowed}",
              file=sys.stderr)  # fmt: skip
        raise SystemExit(2)
    return client, engine


def crossing_pairs(accounts: list[int], batch: int) -> npt.NDArray[Any]:
    """One row per account, in pairs (sell GTC by the first, buy IOC by the second, 1 lot at PRICE_TICKS), then
    the first ``batch`` rows again, so that ``rows[pos:pos + batch]`` is a whole batch for every even ``pos`` below
    ``len(accounts)``."""
    sell = Command.new(0, 0, Side.SELL, 1, PRICE_TICKS).pack()
    buy = Command.new(0, 0, Side.BUY, 1, PRICE_TICKS, tif=Tif.IOC, stp=Stp.NONE).pack()
    base = np.frombuffer((sell + buy) * (len(accounts) // 2), dtype=COMMAND_DTYPE).copy()
    base["client_id"] = accounts
    reps = math.ceil((len(accounts) + batch) / len(accounts))
    return np.concatenate([base] * reps)[: len(accounts) + batch].copy()


def throughput_run(client: Client, rows: npt.NDArray[Any], period: int, batch: int, seconds: float) -> dict[str, Any]:
    """Pushes ``rows`` ``batch`` at a time, cycling every ``period`` rows, for ``seconds`` while draining the
    events in the same loop; then drains the rest. Each order yields one ACK and one FILL on this ring."""
    now = time.perf_counter_ns
    ids = rows["client_id"].astype(np.int64)
    id_sums = np.concatenate([[0], np.cumsum(ids)])  # the account ids of rows[i:j] sum to id_sums[j] - id_sums[i]
    window = RING_CAPACITY  # events that may be owed: never more than the event ring holds
    pos = pushed = events = acks = fills = loops = 0
    ids_pushed = ids_back = 0
    t0 = now()
    stop_at = t0 + int(seconds * 1e9)
    deadline = stop_at + int(DRAIN_TIMEOUT_S * 1e9)
    t = t0
    while True:
        loops += 1
        if t < stop_at and 2 * (pushed + batch) - events <= window:
            client.send_batch(rows[pos : pos + batch])
            ids_pushed += int(id_sums[pos + batch] - id_sums[pos])
            pushed += batch
            pos = (pos + batch) % period
        got = client.poll_batch(4096)
        k = len(got)
        if k:
            types = got["type"]
            acks += int(np.count_nonzero(types == ACK))
            fills += int(np.count_nonzero(types == FILL))
            ids_back += int(got["client_id"].sum(dtype=np.int64))
            events += k
        t = now()
        if t >= stop_at and events >= 2 * pushed:
            break
        if t > deadline:
            raise BenchError(f"{events} of {2 * pushed} events back {DRAIN_TIMEOUT_S} s after the last push")
    if acks != pushed or fills != pushed or events != 2 * pushed:
        raise BenchError(f"{pushed} orders gave {acks} ACKs, {fills} FILLs, {events} events")
    if ids_back != 2 * ids_pushed:
        raise BenchError(f"the events' account ids sum to {ids_back}, the orders' twice to {2 * ids_pushed}")
    elapsed = (t - t0) / 1e9
    return {"orders": pushed, "events": events, "seconds": elapsed, "orders_per_s": pushed / elapsed,
            "events_per_s": events / elapsed, "client_loops": loops}  # fmt: skip


def counted_run(client: Client, control: EngineControl, rows: npt.NDArray[Any], a: argparse.Namespace,
                seconds: float) -> dict[str, Any]:  # fmt: skip
    """One run with the garbage collector off, checked against the engine's own command count."""
    before = control.counters()
    gc.collect()
    gc.disable()
    try:
        res = throughput_run(client, rows, a.accounts, a.batch, seconds)
    finally:
        gc.enable()
    after = control.counters()
    res["engine_commands"] = after["commands"] - before["commands"]
    res["engine_stalls"] = after["stalls"] - before["stalls"]  # events that waited on a full event ring
    if res["engine_commands"] != res["orders"]:
        raise BenchError(f"the engine counted {res['engine_commands']} commands, not {res['orders']}")
    return res


def summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    rates = [r["orders_per_s"] for r in runs]
    return {"median_orders_per_s": statistics.median(rates), "min_orders_per_s": min(rates),
            "max_orders_per_s": max(rates),
            "median_events_per_s": statistics.median(r["events_per_s"] for r in runs)}  # fmt: skip


def measure(config: EngineProcessConfig, control: EngineControl, a: argparse.Namespace,
            accounts: list[int]) -> dict[str, Any]:  # fmt: skip
    link_rows = crossing_pairs(accounts, a.batch)
    single_rows = link_rows.copy()
    single_rows["client_id"] = SINGLE_ID
    t_attach = time.perf_counter_ns()
    with Client(LINK_ID, endpoint=config.endpoint, accounts=accounts, heartbeat=False, timeout_s=START_TIMEOUT_S) \
            as link, Client(SINGLE_ID, endpoint=config.endpoint, heartbeat=False) as single:  # fmt: skip
        attach_s = (time.perf_counter_ns() - t_attach) / 1e9
        if sorted(link.accounts.values()) != sorted([LINK_ID, *accounts]):
            raise BenchError(f"the link was granted {len(link.accounts) - 1} accounts, not {len(accounts)}")
        print(f"attached: a link with {len(accounts):,} accounts and a one-account client in {attach_s:.2f} s",
              flush=True)  # fmt: skip
        t_warm = time.perf_counter_ns()
        for client, rows in ((link, link_rows), (single, single_rows)):
            counted_run(client, control, rows, a, a.warmup_seconds)
        print(f"warm-up: one run of {a.warmup_seconds:g} s of each kind, discarded ("
              f"{(time.perf_counter_ns() - t_warm) / 1e9:.2f} s)", flush=True)  # fmt: skip
        runs: list[dict[str, Any]] = []
        for k in range(a.runs):
            pair: dict[str, Any] = {"link": counted_run(link, control, link_rows, a, a.seconds)}
            pair["one_account"] = counted_run(single, control, single_rows, a, a.seconds)
            pair["ratio"] = pair["link"]["orders_per_s"] / pair["one_account"]["orders_per_s"]
            runs.append(pair)
            print(f"  run {k + 1}/{a.runs}: link {pair['link']['orders_per_s'] / 1e3:8.1f} k orders/s "
                  f"({pair['link']['events_per_s'] / 1e3:8.1f} k events/s, {pair['link']['engine_stalls']} stalls)   "
                  f"one account {pair['one_account']['orders_per_s'] / 1e3:8.1f} k orders/s   ratio "
                  f"{pair['ratio']:.2f}", flush=True)  # fmt: skip
        counters = control.counters()  # before the detaches, whose cancels of every account are dropped
        if counters["unrouted"] or counters["dropped"]:
            raise BenchError(f"the engine dropped events: {counters}")
    return {"attach_s": attach_s, "runs": runs, "link": summary([r["link"] for r in runs]),
            "one_account": summary([r["one_account"] for r in runs]),
            "ratio_median_of_runs": statistics.median(r["ratio"] for r in runs)}  # fmt: skip


# ---- the engine process, and its cleanup on every way out ------------------------------------------------


class Engine:
    """The engine process of this run; ``stop()`` (idempotent) ends it and removes its segments."""

    def __init__(self, config: EngineProcessConfig) -> None:
        self.config = config
        self.armed = True  #: while set, the process's exit is an error (the SIGCHLD handler raises)
        # Its own session, so a Ctrl-C reaches only this process, which stops the engine itself.
        self.proc = subprocess.Popen([sys.executable, "-m", "hotpath.engine_process", config.to_json()],
                                     preexec_fn=die_with_parent, start_new_session=True)  # noqa: PLW1509 (no threads yet)  # fmt: skip
        self.control: EngineControl | None = None

    def wait_ready(self) -> EngineControl:
        """The engine's control block, once its loop runs; TimeoutError after START_TIMEOUT_S."""
        self.control = EngineControl(self.config.prefix, START_TIMEOUT_S)
        return self.control

    def on_sigchld(self, signum: int, frame: Any) -> None:
        if self.armed and self.proc.poll() is not None:
            self.armed = False
            raise BenchError(f"the engine process exited with status {self.proc.returncode}")

    def stop(self) -> None:
        self.armed = False
        if self.control is not None:
            try:
                self.control.request_stop()  # the loop returns and the process unlinks its segments
            except Exception:
                pass
        for action in (None, self.proc.terminate, self.proc.kill):
            if self.proc.poll() is not None:
                break
            if action is not None:
                action()
            try:
                self.proc.wait(timeout=5)
                break
            except subprocess.TimeoutExpired:
                pass
        if self.control is not None:
            self.control.close()
            self.control = None
        for leftover in SHM_DIR.glob(f"{self.config.prefix}_*"):  # only if the engine could not remove them
            print(f"warning: removing leftover {leftover}", file=sys.stderr)
            leftover.unlink(missing_ok=True)


def _on_sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so every finally-block runs


def main(argv: list[str] | None = None) -> int:
    a = parse_args(argv)
    client_core, engine_core = choose_cores(a)
    commit = git_commit("bench/link_bench.py", "hotpath", "c_engine")
    cpu = cpu_model()
    accounts = list(range(FIRST_ACCOUNT, FIRST_ACCOUNT + a.accounts))
    prefix = f"pt_linkbench_{os.getpid()}_{uuid.uuid4().hex[:6]}"
    config = EngineProcessConfig(prefix=prefix, clients=(), symbols=(SymbolConfig("BENCH"),), core=engine_core,
                                 heartbeat_timeout_s=0.0, ring_capacity=RING_CAPACITY,
                                 engine=EngineConfig(max_orders=1 << 16, max_levels_per_side=1 << 10, max_symbols=4,
                                                     max_clients=FIRST_ACCOUNT + a.accounts + 16))  # fmt: skip
    print(f"link throughput: {a.accounts:,} accounts on one link, batches of {a.batch} rows (sell GTC + buy IOC "
          f"pairs), {a.runs} runs of {a.seconds:g} s per kind alternating with a one-account client; rings of "
          f"{RING_CAPACITY} slots; client core {client_core}, engine core {engine_core}; {cpu}; commit {commit}",
          flush=True)  # fmt: skip
    results: dict[str, Any] = {
        "commit": commit, "cpu": cpu, "cores": {"client": client_core, "engine": engine_core},
        "params": {"accounts": a.accounts, "batch": a.batch, "seconds": a.seconds, "runs": a.runs,
                   "warmup_seconds": a.warmup_seconds, "ring_capacity": RING_CAPACITY},
        "load_avg_before": os.getloadavg()[0],
    }  # fmt: skip
    affinity = os.sched_getaffinity(0)
    old_term = signal.signal(signal.SIGTERM, _on_sigterm)
    engine: Engine | None = None
    try:
        engine = Engine(config)
        signal.signal(signal.SIGCHLD, engine.on_sigchld)
        control = engine.wait_ready()
        os.sched_setaffinity(0, {client_core})
        results.update(measure(config, control, a, accounts))
    finally:
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        if engine is not None:
            engine.stop()
        os.sched_setaffinity(0, affinity)
        signal.signal(signal.SIGTERM, old_term)
    link, single = results["link"], results["one_account"]
    verdict = "PASS" if link["median_orders_per_s"] >= TARGET_ORDERS_PER_S else "FAIL"
    results["target_orders_per_s"] = TARGET_ORDERS_PER_S
    results["pass"] = verdict == "PASS"
    print(f"\n{'':26s} {'median':>10s} {'min':>10s} {'max':>10s}   (k orders/s)   events/s median")
    for label, s in ((f"link, {a.accounts:,} accounts", link), ("one-account client", single)):
        print(f"{label:26s} {s['median_orders_per_s'] / 1e3:10.1f} {s['min_orders_per_s'] / 1e3:10.1f} "
              f"{s['max_orders_per_s'] / 1e3:10.1f}   {s['median_events_per_s'] / 1e3:17.1f} k")  # fmt: skip
    print(f"link / one account, median of the per-run ratios: {results['ratio_median_of_runs']:.2f}")
    print(f"target: link >= {TARGET_ORDERS_PER_S / 1e3:.0f} k orders/s: {verdict}")
    a.out.mkdir(parents=True, exist_ok=True)
    (a.out / "link.json").write_text(json.dumps(results, indent=2))
    print(f"wrote {a.out / 'link.json'}")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; the engine process and its segments are cleaned up", file=sys.stderr)
        sys.exit(130)
