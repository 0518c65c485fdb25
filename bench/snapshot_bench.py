"""Recovery with snapshots against a full replay, for a book of about 1 M resting orders after 10 M journaled
commands; what a snapshot costs; what the journal costs per command with and without its checksums.

The run: ``--commands`` synthetic commands (8 clients; resting limits on 2 x 2,048 price levels around 10,000
ticks, each cancelled after an exponential lifetime or left resting, so that about ``--orders`` rest at the end;
0.5% crossing IOCs that trade) go through an in-process engine, journaled in segments exactly as the engine
process journals them (``hotpath.journal``: a segment of ``--every`` records between two snapshots, the first
one half as long, so the tail after the last snapshot is half a segment: the average tail). At each segment's
end the engine's snapshot is saved (``Engine.save_snapshot``: encoded, written, fsynced, renamed), timed.

Then recovery, both ways through ``hotpath.journal.recover`` (what the engine process runs at start: every
record's checksum, the replay in batches), alternating, ``--runs`` times each, with the journal in the page cache:

- full replay: the snapshots moved aside, so every segment is replayed from the empty engine;
- snapshot + tail: the newest snapshot loaded (checksum, invariants, state hash checked) and its tail replayed.

Both must end at the state hash the run ended at. Then a real engine process (``python -m
hotpath.engine_process``) starts on the same journal (its recovery time is in its status file) and the operator's
``checkpoint`` op makes its loop take a snapshot of the 1 M-order book: the reply says how long the loop paused
(the encoding and the journal switch) and how long the helper thread took to write the file. Last, unless
``--no-journal-bench``, ``bench/journal_bench.py`` gives ns per journal append with the per-record CRC32C next
to the layout without it. Writes ``build/bench/snapshot.json``.

Usage: .venv/bin/python bench/snapshot_bench.py [--commands N] [--orders N] [--every N] [--runs R] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit, start_engine_process, stop_engine_process  # noqa: E402
from c_engine import COMMAND_DTYPE, Engine, EngineConfig, Flag, Op, OrderType, Side, SymbolConfig, Tif  # noqa: E402
from hotpath.control_client import ControlClient, load_operator_key  # noqa: E402
from hotpath.engine_process import EngineProcessConfig  # noqa: E402
from hotpath.journal import Journal, list_snapshots, recover, segment_path, snapshot_path  # noqa: E402

#: the mid price in ticks, and how far from it resting orders go (levels per side)
MID, SPREAD_LEVELS = 10_000, 2_048
CLIENTS = 8
#: share of commands that are crossing IOCs
IOC_SHARE = 0.005
#: records per segment the engine replays in one execute_batch
CHUNK = 1 << 16


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--commands", type=int, default=10_000_000, help="commands journaled (about)")
    p.add_argument("--orders", type=int, default=1_000_000, help="resting orders at the end (about)")
    p.add_argument("--every", type=int, default=1_000_000, help="records per segment (snapshot_every)")
    p.add_argument("--runs", type=int, default=3, help="recoveries of each kind")
    p.add_argument("--seed", type=int, default=20261207)
    p.add_argument("--dir", type=Path, default=ROOT / "build" / "bench" / "snapshot_run", help="scratch (a disk)")
    p.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    p.add_argument("--no-engine-process", action="store_true", help="skip the engine process's checkpoint")
    p.add_argument("--no-journal-bench", action="store_true", help="skip bench/journal_bench.py")
    return p.parse_args(argv)


def generate(n: int, resting: int, seed: int) -> np.ndarray:
    """About ``n`` commands ending with about ``resting`` orders on the book (the module docstring)."""
    rng = np.random.default_rng(seed)
    n_ioc = int(n * IOC_SHARE)
    a = (n - n_ioc + resting) // 2  # resting NEWs; a - resting of them are cancelled before the end
    lifetime = resting / a  # mean lifetime (as a share of the run) that leaves `resting` alive at the end
    t_new = (np.arange(a) + rng.random(a)) / a
    t_cancel = t_new + rng.exponential(lifetime, a)
    cancelled = np.flatnonzero(t_cancel < 1.0)
    t_ioc = rng.random(n_ioc)
    # events: kind 0 = resting NEW j, 1 = cancel of j, 2 = IOC; sorted by time
    times = np.concatenate([t_new, t_cancel[cancelled], t_ioc])
    kind = np.concatenate([np.zeros(a, np.int8), np.ones(len(cancelled), np.int8), np.full(n_ioc, 2, np.int8)])
    ref = np.concatenate([np.arange(a), cancelled, np.full(n_ioc, -1)])
    order = np.argsort(times, kind="stable")
    kind, ref = kind[order], ref[order]
    total = len(kind)
    is_new = kind != 1
    ids = np.cumsum(is_new)  # every NEW is accepted: the engine numbers them in arrival order
    id_of = np.zeros(a, np.int64)
    id_of[ref[kind == 0]] = ids[kind == 0]

    cmds = np.zeros(total, dtype=COMMAND_DTYPE)
    cmds["client_id"] = rng.integers(1, CLIENTS + 1, total)
    cmds["ts_ns"] = np.arange(1, total + 1, dtype=np.uint64) * 1000
    side = rng.integers(0, 2, total)
    cmds["side"] = np.where(side == 0, int(Side.BUY), int(Side.SELL))
    new = kind == 0
    offset = np.minimum(rng.geometric(1 / 256, total), SPREAD_LEVELS)
    cmds["op"] = np.where(kind == 1, int(Op.CANCEL), int(Op.NEW))
    cmds["order_type"] = np.where(kind == 1, 0, int(OrderType.LIMIT))
    cmds["tif"] = np.where(kind == 2, int(Tif.IOC), np.where(new, int(Tif.GTC), 0))
    cmds["flags"] = np.where(kind == 1, 0, int(Flag.HAS_PRICE))
    cmds["price"] = np.where(new, np.where(side == 0, MID - offset, MID + offset), 0)
    cmds["price"] = np.where(kind == 2, np.where(side == 0, MID + SPREAD_LEVELS, MID - SPREAD_LEVELS), cmds["price"])
    cmds["qty"] = np.where(new, rng.integers(5, 51, total), np.where(kind == 2, rng.integers(1, 4, total), 0))
    cancel = kind == 1
    cmds["order_id"][cancel] = id_of[ref[cancel]]
    # a cancel comes from the order's owner: take the client of its NEW
    pos_of_new = np.empty(a, np.int64)
    pos_of_new[ref[new]] = np.flatnonzero(new)
    cmds["client_id"][cancel] = cmds["client_id"][pos_of_new[ref[cancel]]]
    return cmds


def process_config(args: argparse.Namespace) -> EngineProcessConfig:
    return EngineProcessConfig(
        prefix=f"pt_snapbench_{os.getpid()}",
        clients=tuple(range(1, CLIENTS + 1)),
        symbols=(SymbolConfig("BENCH", max_price_ticks=10 * MID),),
        engine=EngineConfig(
            max_orders=max(1 << 21, 2 * args.orders), max_levels_per_side=1 << 12, max_symbols=1, max_clients=16
        ),  # fmt: skip
        journal_path=str(args.dir / "journal"),
        journal_capacity=args.every + CHUNK,
        snapshot_every=args.every,
        snapshot_keep=1000,
        status_path=str(args.dir / "status.json"),
        core=max(os.sched_getaffinity(0)),
    )


def make_engine(config: EngineProcessConfig) -> Engine:
    engine = Engine(config.engine)
    for sym in config.symbols:
        engine.add_symbol(sym)
    return engine


def build_history(config: EngineProcessConfig, cmds: np.ndarray, every: int) -> dict[str, Any]:
    """Runs the commands through an engine, journaled in segments with a snapshot between two (timed)."""
    assert config.journal_path is not None
    base, fingerprint = config.journal_path, config.fingerprint()
    engine = make_engine(config)
    ends = list(range(every // 2, len(cmds), every))  # segment k ends at ends[k]; the last segment is the tail
    bounds = [0, *ends, len(cmds)]
    saves: list[dict[str, float]] = []
    t0 = time.perf_counter()
    for k in range(len(bounds) - 1):
        lo, hi = bounds[k], bounds[k + 1]
        with Journal.create(segment_path(base, k), config.journal_capacity, fingerprint) as journal:
            for start in range(lo, hi, CHUNK):
                chunk = cmds[start : min(hi, start + CHUNK)]
                engine.execute_batch(chunk)
                journal.append(chunk)
            journal.flush()
        if hi < len(cmds):
            s0 = time.perf_counter()
            # without the state hash, as the engine loop's checkpoints write them
            info = engine.save_snapshot(snapshot_path(base, k + 1), journal_position=hi, segment=k + 1,
                                        config_hash=fingerprint, state_hash=False)  # fmt: skip
            saves.append({"s": time.perf_counter() - s0, "live_orders": info.live_orders, "bytes": info.bytes})
        print(f"  segment {k}: records {lo:,}..{hi:,}, {engine.stats()['live_orders']:,} resting", flush=True)
    stats = engine.stats()
    return {"build_s": time.perf_counter() - t0, "state_hash": engine.state_hash(), "saves": saves,
            "segments": len(bounds) - 1, "tail": len(cmds) - ends[-1], "live_orders": stats["live_orders"],
            "trades": stats["next_trade_id"] - 1}  # fmt: skip


def time_recovery(config: EngineProcessConfig, full: bool) -> dict[str, Any]:
    assert config.journal_path is not None
    base = config.journal_path
    aside = [Path(snapshot_path(base, k)) for k in list_snapshots(base)] if full else []
    for p in aside:
        p.rename(p.with_suffix(".aside"))
    try:
        t0 = time.perf_counter()
        engine, journal, rec = recover(base, lambda: make_engine(config), config.journal_capacity,
                                       config.fingerprint())  # fmt: skip
        total = time.perf_counter() - t0
        state = engine.state_hash()
        journal.close()
    finally:
        for p in aside:
            p.with_suffix(".aside").rename(p)
    return {"s": total, "load_s": rec.load_s, "replay_s": rec.replay_s, "replayed": rec.replayed,
            "state_hash": state, "snapshot": rec.snapshot}  # fmt: skip


def engine_process_checkpoint(config: EngineProcessConfig) -> dict[str, Any]:
    proc = start_engine_process(config, timeout_s=300.0)
    try:
        key = load_operator_key(prefix=config.prefix)
        with ControlClient(config.endpoint, 120.0, operator_key=key) as ctl:
            reply = ctl.request("checkpoint")
    finally:
        stop_engine_process(proc, config.prefix)
    assert config.status_path is not None
    status = json.loads(Path(config.status_path).read_text())
    return {"pause_us": reply["pause_us"], "write_ms": reply["write_ms"], "bytes": reply["bytes"],
            "live_orders": reply["live_orders"], "recovery_ms": status.get("recovery_ms"),
            "replayed": status.get("replayed")}  # fmt: skip


def median(values: list[float]) -> float:
    return statistics.median(values)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    shutil.rmtree(args.dir, ignore_errors=True)
    args.dir.mkdir(parents=True)
    args.out.mkdir(parents=True, exist_ok=True)
    config = process_config(args)
    print(f"cpu: {cpu_model()}; commit {git_commit('c_engine', 'hotpath')}")
    t0 = time.perf_counter()
    cmds = generate(args.commands, args.orders, args.seed)
    print(f"{len(cmds):,} commands generated in {time.perf_counter() - t0:.1f} s; journaling them", flush=True)
    built = build_history(config, cmds, args.every)
    del cmds
    saves = built["saves"]
    last = saves[-1]
    print(f"history: {built['segments']} segments, {built['live_orders']:,} resting at the end, "
          f"{built['trades']:,} trades; built in {built['build_s']:.1f} s")  # fmt: skip
    print(f"snapshot of {last['live_orders']:,} resting orders: {last['bytes'] / 1e6:.1f} MB, saved (encoded, "
          f"written, fsynced) in {last['s'] * 1e3:.0f} ms (median of all {len(saves)}: "
          f"{median([s['s'] for s in saves]) * 1e3:.0f} ms)")  # fmt: skip

    runs: dict[str, list[dict[str, Any]]] = {"full": [], "snapshot": []}
    for _ in range(args.runs):
        for kind in ("full", "snapshot"):
            r = time_recovery(config, full=kind == "full")
            assert r["state_hash"] == built["state_hash"], f"{kind} recovery ended at another state"
            runs[kind].append(r)
    full_s = median([r["s"] for r in runs["full"]])
    snap_s = median([r["s"] for r in runs["snapshot"]])
    snap = runs["snapshot"][0]
    print(f"recovery, full replay of {runs['full'][0]['replayed']:,} records: {full_s:.2f} s (median of {args.runs})")
    print(f"recovery, snapshot + tail of {snap['replayed']:,} records: {snap_s:.3f} s (load "
          f"{median([r['load_s'] for r in runs['snapshot']]) * 1e3:.0f} ms, replay "
          f"{median([r['replay_s'] for r in runs['snapshot']]) * 1e3:.0f} ms); {full_s / snap_s:.1f}x faster, "
          "same state hash")  # fmt: skip
    result: dict[str, Any] = {"cpu": cpu_model(), "commit": git_commit("c_engine", "hotpath"), "args": {
        k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}, "history": built,
        "recovery": {"full_s": full_s, "snapshot_s": snap_s, "speedup": full_s / snap_s, "runs": runs}}  # fmt: skip

    if not args.no_engine_process:
        cp = engine_process_checkpoint(config)
        result["engine_process"] = cp
        print(f"engine process: recovered in {cp['recovery_ms']:.0f} ms; a checkpoint of {cp['live_orders']:,} "
              f"resting orders paused the loop {cp['pause_us'] / 1e3:.1f} ms; the helper wrote the "
              f"{cp['bytes'] / 1e6:.1f} MB file in {cp['write_ms']:.0f} ms")  # fmt: skip
    if not args.no_journal_bench:
        proc = subprocess.run([sys.executable, str(ROOT / "bench" / "journal_bench.py"), "--runs", "7"],
                              capture_output=True, text=True)  # fmt: skip
        print(proc.stdout, end="")
        path = args.out / "journal.json"
        if proc.returncode == 0 and path.exists():
            result["journal"] = json.loads(path.read_text())
    (args.out / "snapshot.json").write_text(json.dumps(result, indent=1, default=str))
    shutil.rmtree(args.dir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
