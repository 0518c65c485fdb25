"""Runs the engine benchmarks (``make bench``): the C benchmark, then the same op stream through Python.

1. ``build/engine_bench`` (bench/engine_bench.c; ``make build/engine_bench`` builds it, this script builds
   nothing) ``--runs`` times (default 5) on a pinned core; every figure is the median over the runs. The first
   run also writes the generated commands (``--dump-commands``: the raw 64-byte ``pt_command_t`` array, prefill
   first), so every tier below replays exactly the same stream, and ``--json`` with its results and the symbol
   and client limits it used, from which the Python engines are configured.
2. Python tiers on that stream, each on a fresh engine with the prefill applied untimed:
   - single call: ``Engine.submit`` / ``Engine.cancel`` in human units, one call per op, each timed with
     ``time.perf_counter_ns`` (its overhead is measured and printed);
   - batch: ``Engine.execute_batch`` on chunks of ``--chunk`` commands (ops/s, median of ``--py-runs``);
   - reference: ``c_engine.reference.ReferenceEngine.execute`` (pure Python) on the first ``--ref-ops`` ops
     (default 200k: the whole 2 M takes minutes).
   The batch and single-call tiers' end states are checked against the C run's ``state_hash``, the reference's
   events against the C engine's events for the same prefix.
3. ``--callgrind``: instructions and simulated L1d/LL cache misses per op of the C per-op loop, in all and per op
   kind, under ``valgrind --tool=callgrind --cache-sim=yes --toggle-collect=bench_run_ops_by_kind``
   (``--callgrind-ops``, default 200k): figures that machine noise cannot move, plus the hottest functions.
4. ``--perf``: ``perf record`` of one C run and the hottest functions by samples (cpu-clock on this VM).

Targets (benchmarks, never test assertions): C >= 12 M ops/s with p99 <= 400 ns; batch API >= 3 M ops/s;
single call p50 <= 2 us. Results go to stdout and ``build/bench/results.json``; docs/BENCHMARKS.md keeps the log.
"""

from __future__ import annotations

import argparse
import gc
import inspect
import json
import os
import platform
import re
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

from bench.bench_common import git_commit  # noqa: E402
from c_engine import (  # noqa: E402
    COMMAND_DTYPE,
    ClientLimits,
    Command,
    Engine,
    EngineConfig,
    Event,
    Op,
    SymbolConfig,
    Tif,
)

SYMBOL = "BENCH"
TARGET_C_OPS = 12e6
TARGET_C_P99_NS = 400
TARGET_BATCH_OPS = 3e6
TARGET_SINGLE_P50_NS = 2000


def stale_sources(binary: Path) -> list[str]:
    """C sources newer than the binary: the numbers would not be those of the tree."""
    built = binary.stat().st_mtime
    files = [*ROOT.glob("c_engine/src/*.[ch]"), *ROOT.glob("c_engine/include/*.h"), ROOT / "bench" / "engine_bench.c"]
    return [str(f.relative_to(ROOT)) for f in files if f.stat().st_mtime > built]


def fmt_ops(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1e6:.2f} M" if x >= 1e5 else f"{x / 1e3:.1f} k"


def fmt_ns(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x / 1000:.2f} us" if x >= 10_000 else f"{x:.0f} ns"


# ---- the C benchmark -----------------------------------------------------------------------------


def c_args(a: argparse.Namespace, commit: str) -> list[str]:
    args = [str(a.bin), "--ops", str(a.ops), "--seed", str(a.seed), "--commit", commit, "--chunk", str(a.chunk)]
    if a.core is not None:
        args += ["--core", str(a.core)]
    return args


def run_c(a: argparse.Namespace, commit: str, out: Path) -> list[dict[str, Any]]:
    results = []
    for i in range(a.runs):
        js = out / f"c_run{i}.json"
        args = c_args(a, commit) + ["--json", str(js)]
        if i == 0:
            args += ["--dump-commands", str(out / "commands.bin")]
        print(f"$ {' '.join(args)}", flush=True)
        proc = subprocess.run(args, capture_output=True, text=True)
        if i == 0 or a.verbose:
            print(proc.stdout.rstrip())
        else:
            for line in proc.stdout.splitlines():
                if line.startswith(("memory", "core", "throughput", "batch API", "  all", "targets")):
                    print(line)
        if proc.returncode != 0:
            sys.exit(f"engine_bench failed ({proc.returncode}):\n{proc.stderr}")
        results.append(json.loads(js.read_text()))
        print(flush=True)
    return results


def median_of(runs: list[dict[str, Any]], *path: str) -> float:
    vals = []
    for r in runs:
        v: Any = r
        for p in path:
            v = v[p]
        vals.append(float(v))
    return statistics.median(vals)


# ---- Python tiers --------------------------------------------------------------------------------


def make_engine(cls: Any, meta: dict[str, Any]) -> Any:
    cfg = EngineConfig(max_orders=meta["max_orders"], max_levels_per_side=meta["max_levels_per_side"],
                       max_symbols=meta["max_symbols"], max_clients=meta["max_clients"])  # fmt: skip
    e = cls(cfg)
    e.add_symbol(SymbolConfig(name=SYMBOL, **meta["symbol"]))
    for c in range(meta["clients"]):
        e.set_client_limits(c, ClientLimits(**meta["limits"]))
    return e


def percentiles(lat: np.ndarray) -> dict[str, float]:
    q = np.percentile(lat, [50, 90, 99, 99.9, 99.99])
    return {"p50_ns": q[0], "p90_ns": q[1], "p99_ns": q[2], "p99_9_ns": q[3], "p99_99_ns": q[4],
            "max_ns": float(lat.max()), "mean_ns": float(lat.mean())}  # fmt: skip


def timer_overhead_ns(n: int = 200_000) -> float:
    pc = time.perf_counter_ns
    lat = np.empty(n, dtype=np.int64)
    for i in range(n):
        t0 = pc()
        lat[i] = pc() - t0
    return float(np.median(lat))


# One op of the single-call tier, its arguments ready: (is_cancel, client, symbol or order id, side, qty, price,
# tif, cloid, ts_ns); a cancel uses the first two and ts_ns.
SingleCall = tuple[bool, int, Any, str, float, float, str, int, int]


def _single_calls(ops: np.ndarray) -> list[SingleCall]:
    """Each op's call arguments in human units (tick and lot size 1), built before timing."""
    calls: list[SingleCall] = []
    for row in ops.tolist():
        c = Command(*(row[k] for k in _CMD_POSITIONS))
        if c.op == Op.CANCEL:
            calls.append((True, c.client_id, c.order_id, "", 0.0, 0.0, "", 0, c.ts_ns))
        else:
            calls.append((False, c.client_id, SYMBOL, "buy" if c.side == 1 else "sell", float(c.qty), float(c.price),
                          "IOC" if c.tif == Tif.IOC else "GTC", c.cloid, c.ts_ns))  # fmt: skip
    return calls


def _single_loop(e: Engine, calls: list[SingleCall], lat: np.ndarray) -> tuple[int, int]:
    """Runs the calls, each between two perf_counter_ns reads; returns (events, elapsed ns).

    Each call is written out as a caller writes it, its arguments in local variables. Through ``f(*args, **kw)``
    from a stored tuple and dict per op, as this tier first did, the p50 was 1.35-1.65x as long (5 of 6 paired
    runs of 300k ops; docs/BENCHMARKS.md): the harness's unpacking and its 2 M keyword dicts, not the API."""
    submit, cancel, pc = e.submit, e.cancel, time.perf_counter_ns
    nevents = 0
    t_start = pc()
    for i, (is_cancel, client, what, side, qty, price, tif, cloid, ts_ns) in enumerate(calls):
        if is_cancel:
            t0 = pc()
            ev = cancel(client, what, ts_ns=ts_ns)
            lat[i] = pc() - t0
        else:
            t0 = pc()
            ev = submit(client, what, side, qty, price, tif=tif, cloid=cloid, ts_ns=ts_ns)
            lat[i] = pc() - t0
        nevents += len(ev)
    return nevents, pc() - t_start


def tier_single(meta: dict[str, Any], prefill: np.ndarray, ops: np.ndarray, warmup: int) -> dict[str, Any]:
    """One human-unit call per op: Engine.submit for new orders, Engine.cancel for cancels."""
    calls = _single_calls(ops)  # inputs built before timing
    lat = np.empty(len(calls), dtype=np.int64)
    t0 = time.perf_counter_ns()
    w = make_engine(Engine, meta)
    w.execute_batch(prefill)
    _single_loop(w, calls[:warmup], lat)
    del w
    warm_s = (time.perf_counter_ns() - t0) / 1e9
    e = make_engine(Engine, meta)
    e.execute_batch(prefill)
    nevents, elapsed = _single_loop(e, calls, lat)
    return {"ops": len(calls), "ops_per_s": len(calls) / (elapsed / 1e9), "events": nevents, "warmup_ops": warmup,
            "warmup_s": warm_s, "state_hash": e.state_hash(), **percentiles(lat)}  # fmt: skip


def tier_batch(meta: dict[str, Any], prefill: np.ndarray, ops: np.ndarray, chunk: int, runs: int,
               warmup: int) -> dict[str, Any]:  # fmt: skip
    rates, nevents, h = [], 0, 0
    chunks = [ops[i : i + chunk] for i in range(0, len(ops), chunk)]
    t0 = time.perf_counter_ns()
    w = make_engine(Engine, meta)
    w.execute_batch(prefill)
    for c in chunks[: max(1, warmup // chunk)]:
        w.execute_batch(c)
    del w
    warm_s = (time.perf_counter_ns() - t0) / 1e9
    for _ in range(runs):
        e = make_engine(Engine, meta)
        e.execute_batch(prefill)
        nevents = 0
        t0 = time.perf_counter_ns()
        for c in chunks:
            nevents += len(e.execute_batch(c))
        rates.append(len(ops) / ((time.perf_counter_ns() - t0) / 1e9))
        h = e.state_hash()
    return {"ops": len(ops), "ops_per_s": statistics.median(rates), "all_ops_per_s": rates, "events": nevents,
            "warmup_ops": max(1, warmup // chunk) * chunk, "warmup_s": warm_s, "state_hash": h}  # fmt: skip


def tier_reference(meta: dict[str, Any], prefill: np.ndarray, ops: np.ndarray, warmup: int) -> dict[str, Any]:
    """The pure-Python reference, one ``execute`` per op; its events are kept and compared with the C engine's."""
    from c_engine.reference import ReferenceEngine

    pre = [Command(*(row[k] for k in _CMD_POSITIONS)) for row in prefill.tolist()]
    cmds = [Command(*(row[k] for k in _CMD_POSITIONS)) for row in ops.tolist()]
    t0 = time.perf_counter_ns()
    w = make_engine(ReferenceEngine, meta)
    for c in pre + cmds[:warmup]:
        w.execute(c)
    del w
    warm_s = (time.perf_counter_ns() - t0) / 1e9
    e = make_engine(ReferenceEngine, meta)
    for c in pre:
        e.execute(c)
    lat = np.empty(len(cmds), dtype=np.int64)
    out: list[list[Event]] = []
    execute, keep, pc = e.execute, out.append, time.perf_counter_ns
    # Keeping every event (for the comparison below) grows the heap, and the collector's full passes over it would
    # land in the latencies: they are this script's, not the engine's, so the collector is off while timing.
    gc.collect()
    gc.disable()
    t_start = pc()
    for i, c in enumerate(cmds):
        t0 = pc()
        keep(execute(c))
        lat[i] = pc() - t0
    elapsed = pc() - t_start
    gc.enable()
    ref_events = [ev for evs in out for ev in evs]
    c = make_engine(Engine, meta)
    c.execute_batch(prefill)
    c_events = Event.unpack_all(c.execute_batch(ops).tobytes())
    return {"ops": len(cmds), "ops_per_s": len(cmds) / (elapsed / 1e9), "events": len(ref_events),
            "events_match_c": ref_events == c_events, "warmup_ops": warmup, "warmup_s": warm_s,
            **percentiles(lat)}  # fmt: skip


#: where each Command field sits in a COMMAND_DTYPE row (the dtype also has the reserved fields; a structured
#: dtype always has names)
_CMD_POSITIONS = [(COMMAND_DTYPE.names or ()).index(f) for f in Command._fields]


def c_hash_after(meta: dict[str, Any], prefill: np.ndarray, ops: np.ndarray) -> int:
    e = make_engine(Engine, meta)
    e.execute_batch(prefill)
    e.execute_batch(ops)
    return int(e.state_hash())


# ---- callgrind and perf --------------------------------------------------------------------------


L3_BYTES = 32 << 20  # this machine's nominal L3


def callgrind_caches(ll_bytes: int) -> list[str]:
    """The simulated caches: this machine's 32 KiB L1d per core and a last level of ll_bytes, 16- or 12-way
    (whichever gives a power-of-two number of sets, as callgrind requires)."""
    ways = 16 if ((ll_bytes // (64 * 16)) & (ll_bytes // (64 * 16) - 1)) == 0 else 12
    return ["--D1=32768,8,64", f"--LL={ll_bytes},{ways},64"]


def _callgrind_rows(path: Path, inclusive: bool) -> list[tuple[str, list[int]]]:
    """(function, [Ir, Dr, Dw, I1mr, D1mr, D1mw, ILmr, DLmr, DLmw]) rows of callgrind_annotate."""
    ann = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if inclusive else 'no'}", str(path)],
                         capture_output=True, text=True)  # fmt: skip
    rows = []
    for line in ann.stdout.splitlines():
        tokens = re.sub(r"\(\s*[\d.]+%\)", "", line).split()
        if len(tokens) < 10 or not all(re.fullmatch(r"[\d,]+|\.", t) for t in tokens[:9]):
            continue
        name = tokens[9].split(":", 1)[-1] if tokens[9].startswith("???:") else tokens[9]
        if name != "PROGRAM":
            rows.append((name, [0 if t == "." else int(t.replace(",", "")) for t in tokens[:9]]))
    return rows


def run_callgrind(a: argparse.Namespace, commit: str, out: Path) -> dict[str, Any] | None:
    if shutil.which("valgrind") is None or shutil.which("callgrind_annotate") is None:
        print("callgrind: valgrind not found, skipped")
        return None
    cg_out = out / "callgrind.out"
    caches = callgrind_caches(a.callgrind_ll)
    args = ["valgrind", "--tool=callgrind", "--cache-sim=yes", *caches,
            "--toggle-collect=bench_run_ops_by_kind", f"--callgrind-out-file={cg_out}",
            str(a.bin), "--callgrind", "--ops", str(a.callgrind_ops), "--seed", str(a.seed),
            "--commit", commit]  # fmt: skip
    print(f"$ {' '.join(args)}", flush=True)
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"callgrind failed ({proc.returncode}):\n{proc.stderr[-2000:]}")
        return None
    m = re.search(r"(\d+) ops through bench_run_ops_by_kind \((\d+) passive, (\d+) cancel, (\d+) ioc\); "
                  r"live orders at end (\d+)", proc.stdout)  # fmt: skip
    if m is None:
        print(f"callgrind: unexpected engine_bench output:\n{proc.stdout}")
        return None
    n_ops, n_kind, live = (
        int(m.group(1)),
        dict(zip(("passive", "cancel", "ioc"), map(int, m.group(2, 3, 4)), strict=True)),
        m.group(5),
    )
    incl = dict(_callgrind_rows(cg_out, inclusive=True))
    total = incl.get("bench_run_ops_by_kind")
    if total is None:
        print("callgrind: bench_run_ops_by_kind not in the profile")
        return None
    res: dict[str, Any] = {"ops": n_ops, "live_orders_end": int(live), "caches": caches, "per_op": {}, "top": []}

    def per_op(v: list[int], n: int) -> dict[str, float]:
        return {"instructions": v[0] / n, "d1_misses": (v[4] + v[5]) / n, "ll_misses": (v[7] + v[8]) / n}

    res["per_op"]["all"] = per_op(total, n_ops)
    for k, n in n_kind.items():
        if f"bench_op_{k}" in incl and n:
            res["per_op"][k] = per_op(incl[f"bench_op_{k}"], n)
    print(
        f"callgrind ({n_ops} ops, live orders at end {live}; event sink included; simulated caches {' '.join(caches)})"
    )
    print(f"  {'op':9} {'instr/op':>9} {'D1 miss/op':>11} {'LL miss/op':>11}")
    for k, v in res["per_op"].items():
        print(f"  {k:9} {v['instructions']:9.0f} {v['d1_misses']:11.2f} {v['ll_misses']:11.3f}")
    print("  hottest functions by self instructions (per op of the whole mix):")
    print(f"  {'instr/op':>8} {'share':>6} {'D1 miss/op':>10}  function")
    for name, v in _callgrind_rows(cg_out, inclusive=False)[:14]:
        print(f"  {v[0] / n_ops:8.1f} {100 * v[0] / total[0]:5.1f}% {(v[4] + v[5]) / n_ops:10.2f}  {name}")
        res["top"].append(
            {"function": name, "instructions_per_op": v[0] / n_ops, "d1_misses_per_op": (v[4] + v[5]) / n_ops}
        )
    return res


def run_perf(a: argparse.Namespace, commit: str, out: Path) -> None:
    if shutil.which("perf") is None:
        print("perf: not found, skipped")
        return
    data = out / "perf.data"
    args = ["perf", "record", "-F", "20000", "-g", "-o", str(data), *c_args(a, commit)]
    print(f"$ {' '.join(args)}", flush=True)
    proc = subprocess.run(args, capture_output=True, text=True)
    if proc.returncode != 0:
        print(f"perf record failed:\n{proc.stderr[-2000:]}")
        return
    rep = subprocess.run(["perf", "report", "-i", str(data), "--stdio", "--no-children", "--sort", "symbol",
                          "-g", "none"], capture_output=True, text=True)  # fmt: skip
    print("perf: hottest functions over the whole run (generation and warm-up included), by samples")
    n = 0
    for line in rep.stdout.splitlines():
        if re.match(r"^\s+[\d.]+%", line):
            print("  " + line.strip())
            n += 1
            if n == 15:
                break


# ---- main ----------------------------------------------------------------------------------------


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--bin", type=Path, default=ROOT / "build" / "engine_bench")
    ap.add_argument("--runs", type=int, default=5, help="C runs; medians are reported (default 5)")
    ap.add_argument("--ops", type=int, default=2_000_000)
    ap.add_argument("--seed", type=int, default=42)
    ap.add_argument("--core", type=int, default=None, help="core to pin the C bench to (default: the last)")
    ap.add_argument("--chunk", type=int, default=4096, help="batch size for the batch APIs")
    ap.add_argument("--single-ops", type=int, default=None, help="ops for the single-call tier (default: all)")
    ap.add_argument("--ref-ops", type=int, default=200_000, help="ops for the pure-Python reference (a prefix)")
    ap.add_argument("--py-runs", type=int, default=3, help="runs of the batch tier (median)")
    ap.add_argument(
        "--py-warmup",
        type=int,
        default=100_000,
        help="ops run on a throwaway engine before each Python tier (a tenth for the reference)",
    )
    ap.add_argument("--no-python", action="store_true", help="skip the Python tiers")
    ap.add_argument("--no-reference", action="store_true", help="skip the pure-Python reference tier")
    ap.add_argument("--callgrind", action="store_true", help="also count instructions per op with callgrind")
    ap.add_argument("--callgrind-only", action="store_true", help="only the callgrind count")
    ap.add_argument("--callgrind-ops", type=int, default=200_000)
    ap.add_argument(
        "--callgrind-ll",
        type=int,
        default=L3_BYTES,
        metavar="BYTES",
        help="the simulated last-level cache (default: the nominal 32 MiB L3; this VM's share of it "
        "is 2-4 MiB in its slow periods: 2097152 with --callgrind-ops 2000000 counts the misses "
        "that go to memory then, docs/BENCHMARKS.md)",
    )
    ap.add_argument("--perf", action="store_true", help="also perf-record one C run")
    ap.add_argument("--commit", default=None, help="the label printed and logged (default: git HEAD, +dirty)")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench", help="where run files go")
    ap.add_argument("-v", "--verbose", action="store_true", help="print every C run in full")
    a = ap.parse_args()

    if not a.bin.exists():
        print(f"{a.bin} not found: build it with `make build/engine_bench` (or run `make bench`)", file=sys.stderr)
        return 2
    a.out.mkdir(parents=True, exist_ok=True)
    commit = a.commit or git_commit("c_engine", "bench", "Makefile")
    stale = stale_sources(a.bin)
    if stale:
        print(f"WARNING: {a.bin} is older than {', '.join(stale)}: run `make build/engine_bench` first", flush=True)
    # The Python tiers run pinned to the C bench's core too (children inherit it; engine_bench pins itself).
    core = a.core if a.core is not None else (os.cpu_count() or 1) - 1
    os.sched_setaffinity(0, {core})
    print(
        f"run_engine_bench  {time.strftime('%Y-%m-%d %H:%M:%S')}  commit {commit}  python {platform.python_version()}"
        f"  numpy {np.__version__}  pinned to core {core}  load average {os.getloadavg()[0]:.2f}"
    )
    print(f"binary {a.bin}; Python engine from {Path(inspect.getfile(Engine)).parent}\n")
    report: dict[str, Any] = {
        "date": time.strftime("%Y-%m-%d"),
        "commit": commit,
        "argv": sys.argv[1:],
        "loadavg_1m": os.getloadavg()[0],
        "python": platform.python_version(),
    }

    if a.callgrind_only:
        report["callgrind"] = run_callgrind(a, commit, a.out)
        (a.out / "results.json").write_text(json.dumps(report, indent=2, default=float))
        return 0

    runs = run_c(a, commit, a.out)
    meta = runs[0]
    report["c_runs"] = runs
    med = {
        "ops_per_s": median_of(runs, "ops_per_s"),
        "best_ops_per_s": max(r["ops_per_s"] for r in runs),
        "batch_ops_per_s": median_of(runs, "batch_ops_per_s"),
        "timed_run_ops_per_s": median_of(runs, "timed_run_ops_per_s"),
        "cpu_ops_per_s": median_of(runs, "cpu_ops_per_s"),
        "preempted_throughput": median_of(runs, "preempted_throughput"),
        "latency": {
            k: {f: median_of(runs, "latency", k, f) for f in runs[0]["latency"][k]} for k in runs[0]["latency"]
        },
    }
    report["c_median"] = med
    print(
        f"C medians over {a.runs} runs (commit {commit}, {meta['cpu']}, core {meta['core']}, seed {a.seed}, "
        f"{a.ops} ops; live orders at end {meta['live_orders_end']})"
    )
    print(f"  {'op':9} {'mean':>7} {'p50':>7} {'p90':>7} {'p99':>7} {'p99.9':>8} {'p99.99':>8} {'max':>9}   (ns)")
    for k, r in med["latency"].items():
        print(
            f"  {k:9} {r['mean_ns']:7.0f} {r['p50_ns']:7.0f} {r['p90_ns']:7.0f} {r['p99_ns']:7.0f} "
            f"{r['p99_9_ns']:8.0f} {r['p99_99_ns']:8.0f} {r['max_ns']:9.0f}"
        )
    print(
        f"  throughput {fmt_ops(med['ops_per_s'])} ops/s untimed; {fmt_ops(med['timed_run_ops_per_s'])} ops/s "
        f"with per-op rdtsc; pt_engine_submit_batch {fmt_ops(med['batch_ops_per_s'])} ops/s"
    )
    print(
        f"  runs: {', '.join(fmt_ops(r['ops_per_s']) for r in runs)} ops/s "
        f"(best {fmt_ops(max(r['ops_per_s'] for r in runs))}; a wide spread means a noisy machine: compare with "
        f"--callgrind); {fmt_ops(med['cpu_ops_per_s'])} ops per CPU-second, "
        f"{med['preempted_throughput']:.0f} involuntary context switches per pass"
    )
    # The machine around each run (engine_bench's probes, before / after its passes): a dependent load over
    # 4 MiB (the last-level cache this VM gets) and an L1-resident sum (the core's own speed).
    print("  run       ops/s   p99 (ns)   load over 4 MiB (ns)   L1 sum (ns/element), before / after")
    for r in runs:
        print(
            f"  {fmt_ops(r['ops_per_s']):>10} {r['latency']['all']['p99_ns']:8.0f}   "
            f"{r['probe_4mib_ns_before']:8.0f} / {r['probe_4mib_ns_after']:<8.0f}   "
            f"{r['probe_core_ns_before']:.3f} / {r['probe_core_ns_after']:.3f}"
        )
    for r in runs:
        if not r["replay_ok"]:
            print("  WARNING: a run did not reproduce the generator's events/state (see its output)")
    print()

    rows: list[dict[str, Any]] = [
        {"tier": "C pt_engine_submit, 1 call/op", "ops": a.ops, "ops_per_s": med["ops_per_s"],
         "p50_ns": med["latency"]["all"]["p50_ns"], "p99_ns": med["latency"]["all"]["p99_ns"],
         "target": "12 M ops/s, p99 <= 400 ns",
         "pass": med["ops_per_s"] >= TARGET_C_OPS and med["latency"]["all"]["p99_ns"] <= TARGET_C_P99_NS},
        {"tier": f"C pt_engine_submit_batch, {a.chunk}/call", "ops": a.ops, "ops_per_s": med["batch_ops_per_s"]},
    ]  # fmt: skip

    if not a.no_python:
        cmds = np.fromfile(a.out / "commands.bin", dtype=COMMAND_DTYPE)
        assert len(cmds) == meta["prefill"] + meta["ops"], "commands.bin does not match the run"
        prefill, ops = cmds[: meta["prefill"]], cmds[meta["prefill"] :]
        full_hash = int(meta["state_hash"], 16)

        print(
            f"python batch: Engine.execute_batch, chunks of {a.chunk}, {len(ops)} ops, {a.py_runs} runs ...", flush=True
        )
        b = tier_batch(meta, prefill, ops, a.chunk, a.py_runs, a.py_warmup)
        print(f"  warm-up {b['warmup_s']:.2f} s ({b['warmup_ops']} ops on a throwaway engine)")
        print(
            f"  {fmt_ops(b['ops_per_s'])} ops/s (runs: {', '.join(fmt_ops(x) for x in b['all_ops_per_s'])}); "
            f"state hash {'matches C' if b['state_hash'] == full_hash else 'DIFFERS from C'}"
        )
        rows.append({"tier": f"Python Engine.execute_batch, {a.chunk}/call", "ops": len(ops),
                     "ops_per_s": b["ops_per_s"], "target": "3 M ops/s",
                     "pass": b["ops_per_s"] >= TARGET_BATCH_OPS})  # fmt: skip
        report["python_batch"] = b

        n_single = min(a.single_ops or len(ops), len(ops))
        over = timer_overhead_ns()
        print(
            f"python single call: Engine.submit/cancel, {n_single} ops (perf_counter_ns pair overhead "
            f"{over:.0f} ns, included) ...",
            flush=True,
        )
        s = tier_single(meta, prefill, ops[:n_single], min(a.py_warmup, n_single))
        want = full_hash if n_single == len(ops) else c_hash_after(meta, prefill, ops[:n_single])
        print(f"  warm-up {s['warmup_s']:.2f} s ({s['warmup_ops']} ops on a throwaway engine)")
        print(
            f"  {fmt_ops(s['ops_per_s'])} ops/s, p50 {fmt_ns(s['p50_ns'])}, p99 {fmt_ns(s['p99_ns'])}, "
            f"p99.9 {fmt_ns(s['p99_9_ns'])}, max {fmt_ns(s['max_ns'])}; state hash "
            f"{'matches C' if s['state_hash'] == want else 'DIFFERS from C'}"
        )
        s["timer_overhead_ns"] = over
        rows.append({"tier": "Python Engine.submit/cancel, 1 call/op", "ops": n_single, "ops_per_s": s["ops_per_s"],
                     "p50_ns": s["p50_ns"], "p99_ns": s["p99_ns"], "target": "p50 <= 2 us",
                     "pass": s["p50_ns"] <= TARGET_SINGLE_P50_NS})  # fmt: skip
        report["python_single"] = s

        if not a.no_reference:
            n_ref = min(a.ref_ops, len(ops))
            print(f"python reference: ReferenceEngine.execute, first {n_ref} ops ...", flush=True)
            try:
                r = tier_reference(meta, prefill, ops[:n_ref], min(a.py_warmup // 10, n_ref))
            except ImportError as exc:
                print(f"  skipped: {exc}")
            else:
                print(f"  warm-up {r['warmup_s']:.2f} s ({r['warmup_ops']} ops on a throwaway engine)")
                same = "match" if r["events_match_c"] else "DIFFER from"
                print(
                    f"  {fmt_ops(r['ops_per_s'])} ops/s, p50 {fmt_ns(r['p50_ns'])}, p99 {fmt_ns(r['p99_ns'])}; "
                    f"its {r['events']} events {same} the C engine's"
                )
                rows.append({"tier": f"Python ReferenceEngine.execute (first {n_ref})", "ops": n_ref,
                             "ops_per_s": r["ops_per_s"], "p50_ns": r["p50_ns"], "p99_ns": r["p99_ns"]})  # fmt: skip
                report["python_reference"] = r
        print()

    if a.callgrind:
        report["callgrind"] = run_callgrind(a, commit, a.out)
        print()
    if a.perf:
        run_perf(a, commit, a.out)
        print()

    c_ops = med["ops_per_s"]
    print(f"{'tier':46} {'ops':>8} {'ops/s':>9} {'p50':>9} {'p99':>9} {'C/x':>7}  target")
    for row in rows:
        verdict = "" if "pass" not in row else ("PASS " if row["pass"] else "FAIL ") + row["target"]
        print(
            f"{row['tier']:46} {row['ops']:>8} {fmt_ops(row['ops_per_s']):>9} {fmt_ns(row.get('p50_ns')):>9} "
            f"{fmt_ns(row.get('p99_ns')):>9} {c_ops / row['ops_per_s']:6.1f}x  {verdict}"
        )
    print("(C/x: how many times the C per-op loop's ops/s; latencies include each tier's timer overhead)")
    report["table"] = rows

    (a.out / "results.json").write_text(json.dumps(report, indent=2, default=float))
    append_history(a.out / "history.jsonl", report)
    write_plot(rows, med, a.out / "engine_bench.png")
    print(f"\nresults: {a.out / 'results.json'}; this run's summary appended to {a.out / 'history.jsonl'}")
    return 0


def append_history(path: Path, report: dict[str, Any]) -> None:
    """One line per invocation, never overwritten: on a machine whose speed comes and goes, the record of every
    run is what a median or a claim about the targets can be checked against."""
    med = report["c_median"]
    line = {
        "time": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": report["commit"], "loadavg_1m": report["loadavg_1m"],
        "c_ops_per_s": med["ops_per_s"], "c_p99_ns": med["latency"]["all"]["p99_ns"],
        "c_runs_ops_per_s": [r["ops_per_s"] for r in report["c_runs"]],
        "c_runs_p99_ns": [r["latency"]["all"]["p99_ns"] for r in report["c_runs"]],
        "probe_4mib_ns": [[r["probe_4mib_ns_before"], r["probe_4mib_ns_after"]] for r in report["c_runs"]],
        "table": [{k: row[k] for k in ("tier", "ops_per_s", "p50_ns", "p99_ns", "pass") if k in row}
                  for row in report["table"]],
    }  # fmt: skip
    with path.open("a") as f:
        f.write(json.dumps(line, default=float) + "\n")


def write_plot(rows: list[dict[str, Any]], c_median: dict[str, Any], path: Path) -> None:
    """Throughput of every tier (log scale) beside the C latency percentiles per op kind."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (tiers, lat) = plt.subplots(1, 2, figsize=(13, 4), gridspec_kw={"width_ratios": [1.1, 1]})
    names = [r["tier"] for r in rows][::-1]
    tiers.barh(names, [r["ops_per_s"] for r in rows][::-1], color="tab:blue")
    tiers.axvline(12e6, color="tab:red", linestyle="--", linewidth=1, label="C target 12 M ops/s")
    tiers.axvline(3e6, color="tab:orange", linestyle=":", linewidth=1, label="batch target 3 M ops/s")
    tiers.set_xscale("log")
    tiers.set_xlabel("ops/s (log)")
    tiers.legend(loc="lower right", fontsize=8)
    tiers.tick_params(axis="y", labelsize=8)

    marks = [("p50", "p50_ns"), ("p90", "p90_ns"), ("p99", "p99_ns"), ("p99.9", "p99_9_ns")]
    for kind in ("passive", "cancel", "ioc", "all"):
        got = c_median["latency"].get(kind)
        if got:
            lat.plot([m for m, _ in marks], [got[k] for _, k in marks], marker="o", label=kind)
    lat.axhline(400, color="tab:red", linestyle="--", linewidth=1, label="p99 target 400 ns")
    lat.set_yscale("log")
    lat.set_ylabel("ns per op (log)")
    lat.set_title("C pt_engine_submit latency by op kind (median of runs)", fontsize=9)
    lat.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: {path}")


if __name__ == "__main__":
    sys.exit(main())
