"""Ring ping-pong: the latency floors of the hot path's SPSC rings ((a) and (a') in docs/BENCHMARKS.md).

(a')  Python -> C echo -> Python: this process (pinned to the first core) creates two ``SharedMemoryRing``s
      (ping and pong, ``/dev/shm/pt_pingpong_<pid>-ping``/``-pong``), starts ``build/ring_pingpong --echo-only``
      pinned to the second core, and per round trip reads ``time.perf_counter_ns`` (CLOCK_MONOTONIC), pushes a
      64-byte message with ``Ring.push``, busy-polls ``Ring.pop`` (no sleep, no yield) until the echo returns,
      reads the clock again and stores the difference. The floor for any Python strategy on these rings.
(a)   C -> C echo -> C: ``build/ring_pingpong`` itself (two forked processes, rdtsc; see its header).

Both sides spin, so this needs two cores and refuses (exit status 2) with fewer. Each measurement warms up
(reported, then discarded) and records >= 1 M round trips in a log-linear (HDR-style) histogram with the same
buckets as the C side (<= 1.6% error; Python's are in ns, the C ones in TSC ticks). Percentiles p50..p99.99 and
max, the timer's own cost, then a comparison table (a) vs (a') with medians over ``--runs``. Writes
``build/bench/ring_pingpong.json`` and, with matplotlib, ``build/bench/ring_pingpong.png`` (percentile curves).
Every segment and child process is removed on exit, Ctrl-C and errors included.

Usage: .venv/bin/python bench/ring_pingpong.py [--round-trips N] [--warmup N] [--cores A,B] [--runs R]
       [--max-seconds S] [--bin build/ring_pingpong] [--out build/bench]
"""

from __future__ import annotations

import argparse
import array
import json
import os
import platform
import resource
import signal
import statistics
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit  # noqa: E402
from hotpath.names import SHM_DIR  # noqa: E402
from hotpath.ring import SharedMemoryRing  # noqa: E402

PING_MAGIC = 0x474E495050505450  #: word 1 of every message (ring_pingpong.c)
STOP_MAGIC = 0x504F54535050544E  #: word 1 of the stop message: the echo echoes it and exits
MIN_ROUND_TRIPS = 200_000  #: the least --max-seconds may cut the Python run to
PCTS = (50.0, 90.0, 99.0, 99.9, 99.99)
#: The percentile curve (json and plot), as in ring_pingpong.c.
CURVE = (0, 10, 20, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 97, 98, 99, 99.5, 99.7, 99.8, 99.9, 99.95, 99.97,
         99.99, 99.995, 99.999, 99.9995, 99.9999, 100)  # fmt: skip
H_SUB_BITS = 7  #: the histogram of bench/bench_util.h: < 128 exact, then 64 buckets per octave


class EchoDied(RuntimeError):
    pass


# ---- the log-linear histogram of bench_util.h, over ns ----------------------------------------------


def hist_summary(ns: np.ndarray) -> dict[str, Any]:
    """Percentiles as bench_util.h reports them: each bucket's highest value, capped by the exact max."""
    v = ns.astype(np.int64)
    big = v >= (1 << H_SUB_BITS)
    idx = v.copy()
    _, exp = np.frexp(v[big].astype(np.float64))  # v = m * 2**exp, m in [0.5, 1): floor(log2 v) = exp - 1
    shift = exp.astype(np.int64) - 1 - (H_SUB_BITS - 1)
    idx[big] = shift * (1 << (H_SUB_BITS - 1)) + (v[big] >> shift)
    counts = np.bincount(idx)
    cum = np.cumsum(counts)
    vmax = int(v.max())
    half = 1 << (H_SUB_BITS - 1)

    def high(i: int) -> int:
        if i < (1 << H_SUB_BITS):
            return i
        s = i // half - 1
        return ((i - s * half + 1) << s) - 1

    def pct(p: float) -> float:
        if p >= 100:
            return float(vmax)
        rank = max(1, int(p / 100.0 * len(v) + 0.999999))
        return float(min(high(int(np.searchsorted(cum, rank))), vmax))

    out: dict[str, Any] = {"n": int(len(v)), "mean_ns": float(v.mean())}
    for p in PCTS:
        out[f"p{p:g}_ns"] = pct(p)
    out["max_ns"] = float(vmax)
    out["curve"] = [[p, pct(p)] for p in CURVE]
    return out


# ---- (a'): Python initiator, C echo --------------------------------------------------------------------


def python_round_trips(ping: SharedMemoryRing, pong: SharedMemoryRing, msgs: list[bytes], n: int) -> array.array[int]:
    """n round trips, busy-polling; the i-th round trip's ns in the result (timer overhead included)."""
    lat = array.array("q", bytes(8 * n))
    push, pop, now = ping.push, pong.pop, time.perf_counter_ns
    for i in range(n):
        m = msgs[i & 255]
        t0 = now()
        if not push(m):
            raise RuntimeError("ping ring full: the echo is not consuming")
        while (r := pop()) is None:
            pass
        t1 = now()
        lat[i] = t1 - t0
        if r[0] != (i & 255):
            raise RuntimeError(f"echo out of sequence at round trip {i}")
    return lat


def timer_overhead(n: int = 1_000_000) -> dict[str, Any]:
    lat = array.array("q", bytes(8 * n))
    now = time.perf_counter_ns
    for i in range(n):
        t0 = now()
        t1 = now()
        lat[i] = t1 - t0
    return hist_summary(np.frombuffer(lat, dtype=np.int64))


#: What run_python has alive: cleanup() (idempotent) removes it, from run_python's finally and again at exit.
_LIVE: dict[str, Any] = {"echo": None, "rings": [], "armed": False, "affinity": None}


def cleanup() -> None:
    """Stops the echo (SIGTERM, then SIGKILL after 2 s), closes and unlinks the rings, restores the affinity."""
    _LIVE["armed"] = False
    echo = _LIVE["echo"]
    if echo is not None:
        if echo.poll() is None:
            echo.terminate()
            try:
                echo.wait(timeout=2)
            except subprocess.TimeoutExpired:
                echo.kill()
                echo.wait(timeout=5)
        _LIVE["echo"] = None
    while _LIVE["rings"]:
        _LIVE["rings"].pop().close()
    if _LIVE["affinity"] is not None:
        os.sched_setaffinity(0, _LIVE["affinity"])
        _LIVE["affinity"] = None


def on_chld(signum: int, frame: Any) -> None:
    """SIGCHLD while measuring: the echo died, so break out of any spin (costs the loop nothing)."""
    echo = _LIVE["echo"]
    if _LIVE["armed"] and echo is not None and echo.poll() is not None:
        _LIVE["armed"] = False
        raise EchoDied(f"the echo process exited with status {echo.returncode}")


def run_python(a: argparse.Namespace) -> dict[str, Any]:
    """One (a') measurement; every segment and the echo process are gone when it returns or raises."""
    name = f"pt_pingpong_{os.getpid()}"
    msgs = [struct.pack("<QQ48x", k, PING_MAGIC) for k in range(256)]
    signal.signal(signal.SIGCHLD, on_chld)
    try:
        _LIVE["rings"].append(SharedMemoryRing.create(f"{name}-ping", a.capacity))
        _LIVE["rings"].append(SharedMemoryRing.create(f"{name}-pong", a.capacity))
        ping, pong = _LIVE["rings"]
        _LIVE["affinity"] = os.sched_getaffinity(0)
        os.sched_setaffinity(0, {a.core_a})
        _LIVE["armed"] = True
        echo = _LIVE["echo"] = subprocess.Popen(
            [str(a.bin), "--echo-only", name, "--core", str(a.core_b), "--idle-timeout", "30"]
        )
        # First contact, bounded: the echo may take a moment to start and attach.
        ping.push(struct.pack("<QQ48x", 255, PING_MAGIC))
        deadline = time.monotonic() + 10
        while pong.pop() is None:
            if echo.poll() is not None or time.monotonic() > deadline:
                raise EchoDied(f"the echo did not answer within 10 s (status {echo.poll()})")
        w0 = time.perf_counter_ns()
        python_round_trips(ping, pong, msgs, a.warmup)
        warm_s = (time.perf_counter_ns() - w0) / 1e9
        n = a.round_trips
        est_s = n * warm_s / max(a.warmup, 1)
        note = ""
        if est_s > a.max_seconds:
            n = max(MIN_ROUND_TRIPS, int(a.max_seconds * a.warmup / warm_s))
            note = (
                f"  (cut from {a.round_trips} round trips: they would take ~{est_s:.0f} s, over --max-seconds "
                f"{a.max_seconds:g})"
            )
        ru0 = resource.getrusage(resource.RUSAGE_SELF)
        t0 = time.perf_counter_ns()
        lat = python_round_trips(ping, pong, msgs, n)
        run_s = (time.perf_counter_ns() - t0) / 1e9
        ru1 = resource.getrusage(resource.RUSAGE_SELF)
        overhead = timer_overhead()
        res = {"round_trips": n, "warmup": a.warmup, "warmup_s": warm_s, "run_s": run_s, "note": note.strip(),
               "preempted": ru1.ru_nivcsw - ru0.ru_nivcsw, "latency": hist_summary(np.frombuffer(lat, np.int64)),
               "timer_overhead": overhead}  # fmt: skip
        # Stop the echo the polite way: it echoes the stop message, then exits.
        _LIVE["armed"] = False
        ping.push(struct.pack("<QQ48x", 0, STOP_MAGIC))
        deadline = time.monotonic() + 5
        while pong.pop() is None and time.monotonic() < deadline and echo.poll() is None:
            pass
        echo.wait(timeout=5)
        return res
    finally:
        cleanup()
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)


def print_python_run(res: dict[str, Any]) -> None:
    print(f"warm-up        {res['warmup']} round trips in {res['warmup_s']:.3f} s (then discarded)")
    note = ("\n" + " " * 15 + res["note"]) if res["note"] else ""
    print(f"run            {res['round_trips']} round trips in {res['run_s']:.3f} s "
          f"({res['round_trips'] / res['run_s'] / 1e6:.2f} M round trips/s); {res['preempted']} involuntary context "
          f"switches of the Python process{note}")  # fmt: skip
    print(
        "\nround trip (ns, time.perf_counter_ns = CLOCK_MONOTONIC, <= 1.6% bucket error; includes the timer overhead)"
    )
    print_header()
    print_lat("Py<->C (a')", res["latency"])
    print_lat("overhead", res["timer_overhead"])


def print_header() -> None:
    cols = ["count", "mean", *(f"p{p:g}" for p in PCTS), "max"]
    print(f"  {'':<11} {cols[0]:>9} " + " ".join(f"{c:>8}" for c in cols[1:-1]) + f" {cols[-1]:>10}")


def print_lat(label: str, s: dict[str, Any]) -> None:
    vals = [s["mean_ns"], *(s[f"p{p:g}_ns"] for p in PCTS)]
    print(f"  {label:<11} {s['n']:>9} " + " ".join(f"{v:8.1f}" for v in vals) + f" {s['max_ns']:10.1f}")


# ---- (a): the C binary ------------------------------------------------------------------------------


def run_c(a: argparse.Namespace, commit: str, out: Path, k: int) -> dict[str, Any]:
    js = out / f"ring_pingpong_c_{k}.json"
    args = [str(a.bin), "--round-trips", str(a.round_trips), "--warmup", str(a.warmup), "--cores",
            f"{a.core_a},{a.core_b}", "--capacity", str(a.capacity), "--commit", commit, "--json", str(js)]  # fmt: skip
    print("$ " + " ".join(args[:-2]), flush=True)
    proc = subprocess.run(args, timeout=300)  # run() kills the C parent on any exception; its child follows it
    if proc.returncode != 0:
        raise RuntimeError(f"ring_pingpong exited with status {proc.returncode}")
    res: dict[str, Any] = json.loads(js.read_text())
    js.unlink()
    return res


# ---- main ------------------------------------------------------------------------------------------


def median_summary(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = ["mean_ns", *(f"p{p:g}_ns" for p in PCTS), "max_ns"]
    return {k: {"median": statistics.median(r["latency"][k] for r in runs),
                "min": min(r["latency"][k] for r in runs), "max": max(r["latency"][k] for r in runs)}
            for k in keys}  # fmt: skip


def write_plot(c_runs: list[dict[str, Any]], py_runs: list[dict[str, Any]], path: Path, title: str) -> None:
    """Percentile curves of every run (x: 'nines', y: log ns)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 5))

    def xs(curve: list[list[float]], n: int) -> list[float]:
        return [float(np.log10(n)) if p >= 100 else -float(np.log10(1 - p / 100)) for p, _ in curve]

    for label, runs, color in (("(a) C <-> C", c_runs, "tab:blue"), ("(a') Python <-> C", py_runs, "tab:orange")):
        for i, r in enumerate(runs):
            lat = r["latency"]
            ax.plot(xs(lat["curve"], lat["n"]), [v for _, v in lat["curve"]], color=color, alpha=0.8, marker=".",
                    label=label if i == 0 else None)  # fmt: skip
    ticks = [0, 1, 2, 3, 4, 5, 6]
    ax.set_xticks(ticks, ["0", "90", "99", "99.9", "99.99", "99.999", "99.9999"])
    ax.set_xlabel("percentile (the last point of each curve is the max)")
    ax.set_yscale("log")
    ax.set_ylabel("round trip, ns (log)")
    ax.set_title(title, fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    print(f"plot: {path}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--round-trips", type=int, default=1_000_000)
    ap.add_argument("--warmup", type=int, default=100_000)
    ap.add_argument("--cores", default="0,1", help="initiator core, echo core (default 0,1)")
    ap.add_argument("--capacity", type=int, default=1024, help="slots per ring")
    ap.add_argument("--runs", type=int, default=1, help="measure (a') then (a) this many times; medians reported")
    ap.add_argument("--max-seconds", type=float, default=60.0,
                    help=f"cut the Python run to what fits (never below {MIN_ROUND_TRIPS})")  # fmt: skip
    ap.add_argument("--bin", type=Path, default=ROOT / "build" / "ring_pingpong")
    ap.add_argument("--out", type=Path, default=ROOT / "build" / "bench")
    a = ap.parse_args()
    a.core_a, a.core_b = (int(c) for c in a.cores.split(","))
    allowed = os.sched_getaffinity(0)
    if len(allowed) < 2:
        print(f"ring_pingpong.py: refusing: only {len(allowed)} core available; the two busy-polling sides need a "
              "core each (on one core they collapse to ~8 ms round trips)", file=sys.stderr)  # fmt: skip
        return 2
    if a.core_a == a.core_b or not {a.core_a, a.core_b} <= allowed:
        print(
            f"ring_pingpong.py: refusing: cores {a.cores} must be two different cores of {sorted(allowed)}",
            file=sys.stderr,
        )
        return 2
    if not a.bin.exists():
        print(f"ring_pingpong.py: {a.bin} not built (make bench-ring builds it)", file=sys.stderr)
        return 1
    a.out.mkdir(parents=True, exist_ok=True)
    commit = git_commit("hotpath", "bench", "Makefile")
    cpu = cpu_model()
    print(f"ring_pingpong.py  {time.strftime('%Y-%m-%d %H:%M:%S')}  commit {commit}  python "
          f"{platform.python_version()}")  # fmt: skip
    print(f"cpu            {cpu} ({os.cpu_count()} online, {len(allowed)} allowed); initiator pinned to core "
          f"{a.core_a}, echo to core {a.core_b}")  # fmt: skip
    print(f"parameters     {a.round_trips} round trips after {a.warmup} warm-up, x {a.runs} run(s); 64-byte "
          f"messages; two SPSC rings of {a.capacity} slots; both sides busy-poll")  # fmt: skip

    py_runs: list[dict[str, Any]] = []
    c_runs: list[dict[str, Any]] = []
    for k in range(a.runs):
        print(f"\n==== run {k + 1}/{a.runs}: (a') Python initiator, C echo ({a.bin.name} --echo-only)", flush=True)
        py_runs.append(run_python(a))
        print_python_run(py_runs[-1])
        print(f"\n==== run {k + 1}/{a.runs}: (a) C initiator, C echo", flush=True)
        c_runs.append(run_c(a, commit, a.out, k))

    cm, pm = median_summary(c_runs), median_summary(py_runs)
    print(f"\n(a) vs (a') round trip, ns: median over {a.runs} run(s) [min-max]; commit {commit}, {cpu}, cores "
          f"{a.core_a},{a.core_b}")  # fmt: skip
    head_c, head_p = "(a) C<->C", "(a') Py<->C"
    print(f"  {'':<8} {head_c:>28} {head_p:>28} {'ratio':>7}")
    for key in ["mean_ns", *(f"p{p:g}_ns" for p in PCTS), "max_ns"]:
        c, p = cm[key], pm[key]
        cs = f"{c['median']:.0f} [{c['min']:.0f}-{c['max']:.0f}]"
        ps = f"{p['median']:.0f} [{p['min']:.0f}-{p['max']:.0f}]"
        print(f"  {key[:-3]:<8} {cs:>28} {ps:>28} {p['median'] / c['median']:6.1f}x")
    print(f"  round trips: (a) {c_runs[0]['round_trips']} per run, (a') {py_runs[0]['round_trips']} per run; "
          f"timer overhead p50: (a) {c_runs[0]['timer_overhead']['p50_ns']:.0f} ns rdtsc, "
          f"(a') {py_runs[0]['timer_overhead']['p50_ns']:.0f} ns perf_counter_ns")  # fmt: skip

    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S"), "commit": commit, "cpu": cpu, "cores": [a.core_a, a.core_b],
              "python": platform.python_version(), "argv": sys.argv[1:], "c_runs": c_runs, "python_runs": py_runs,
              "median": {"c": cm, "python": pm}}  # fmt: skip
    js = a.out / "ring_pingpong.json"
    js.write_text(json.dumps(report, indent=1))
    print(f"\nresults: {js}")
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        print("matplotlib not importable: no plot")
    else:
        write_plot(
            c_runs,
            py_runs,
            a.out / "ring_pingpong.png",
            f"ring ping-pong round trip, 64-byte messages, cores {a.core_a},{a.core_b}, {commit}\n{cpu}",
        )
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        print("\ninterrupted; segments and processes cleaned up", file=sys.stderr)
        sys.exit(130)
    finally:
        cleanup()  # a second chance if an exception (a signal) cut run_python's cleanup short
        leftovers = sorted(p.name for p in SHM_DIR.glob(f"pt_pingpong_{os.getpid()}-*"))
        if leftovers:
            print(f"warning: left in /dev/shm: {leftovers}", file=sys.stderr)
