"""The Avellaneda-Stoikov model simulator: steps per second one step at a time, paths per second vectorised.

::

    .venv/bin/python bench/as_model_bench.py [--paths 200] [--sims 1000 10000] [--runs 7]

- **Step by step** (``ASMarket``, as a reinforcement-learning environment drives it): ``--paths`` paths of the
  paper's model (200 steps each), one ``reset`` and 200 ``step`` calls a path, the offsets either fixed
  (the simulator alone) or the AS quotes computed each step with ``as_quotes`` (the simulator and the formula).
  Reported in steps per second; ``reset`` (which draws the path's uniforms) is inside the timed loop.
- **Vectorised** (``simulate``, as the paper's table is made): the inventory strategy at gamma = 0.1 over
  ``--sims`` paths at once, reported in paths per second (one path = 200 steps).

Each variant runs once untimed (warm-up, its duration printed), then ``--runs`` times; the median and min of
the runs are printed. The seed is fixed (1 for the first run, then 2, 3, ...), so every run does the same work
on every machine. Times come from ``time.perf_counter_ns`` (monotonic). Pinned to the last allowed core.
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.bench_common import cpu_model, git_commit  # noqa: E402
from strategies.as_model import PAPER_MODEL, ASMarket, InventoryPolicy, simulate  # noqa: E402
from strategies.avellaneda import ASParams, as_quotes  # noqa: E402

#: the risk aversion of the paper's first table
GAMMA = 0.1


def _steps_fixed(paths: int, seed: int) -> int:
    """``paths`` paths with fixed offsets; returns the steps taken."""
    market = ASMarket(PAPER_MODEL)
    step = market.step
    for i in range(paths):
        market.reset(seed if i == 0 else None)
        while not market.done:
            step(0.75, 0.75)
    return paths * PAPER_MODEL.n_steps


def _steps_with_as_quotes(paths: int, seed: int) -> int:
    """``paths`` paths quoting the AS bid and ask each step; returns the steps taken."""
    params = ASParams(GAMMA, PAPER_MODEL.sigma_price_per_sqrt_time, PAPER_MODEL.k_per_price)
    market = ASMarket(PAPER_MODEL)
    for i in range(paths):
        state = market.reset(seed if i == 0 else None)
        while not market.done:
            bid, ask = as_quotes(state.mid, state.inventory, market.time_left, params)
            result = market.step(state.mid - bid, ask - state.mid)
            state = state._replace(mid=result.mid, inventory=result.inventory)
    return paths * PAPER_MODEL.n_steps


def _vectorised(sims: int, seed: int) -> int:
    """``sims`` paths of the inventory strategy at once; returns the paths run."""
    params = ASParams(GAMMA, PAPER_MODEL.sigma_price_per_sqrt_time, PAPER_MODEL.k_per_price)
    simulate(InventoryPolicy(params), sims, seed, PAPER_MODEL)
    return sims


def _measure(label: str, unit: str, work: Callable[[int], int], runs: int) -> None:
    t0 = time.perf_counter_ns()
    work(1)
    warm_ms = (time.perf_counter_ns() - t0) / 1e6
    rates = []
    for run in range(runs):
        t0 = time.perf_counter_ns()
        done = work(run + 2)
        rates.append(done / ((time.perf_counter_ns() - t0) / 1e9))
    print(
        f"{label:<46} median {statistics.median(rates):>12,.0f} {unit}/s   min {min(rates):>12,.0f}"
        f"   (warm-up {warm_ms:.0f} ms, {runs} runs)"
    )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    ap.add_argument("--paths", type=int, default=200, help="paths per step-by-step run (200 steps each)")
    ap.add_argument("--sims", type=int, nargs="+", default=[1000, 10000], help="paths per vectorised run")
    ap.add_argument("--runs", type=int, default=7, help="timed runs per variant (after one warm-up)")
    a = ap.parse_args(argv)
    if a.paths < 1 or a.runs < 1 or min(a.sims) < 1:
        ap.error("--paths, --runs and --sims must be >= 1")
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {max(os.sched_getaffinity(0))})
    m = PAPER_MODEL
    print(
        f"as_model_bench: s = {m.start_mid_price:g}, sigma = {m.sigma_price_per_sqrt_time:g}, T = {m.horizon_time:g},"
        f" dt = {m.step_time:g} ({m.n_steps} steps), k = {m.k_per_price:g}, A = {m.a_per_time:g}, gamma = {GAMMA:g}"
    )
    commit = git_commit("strategies/as_model.py", "strategies/avellaneda.py", "bench/as_model_bench.py")
    print(f"commit {commit}; {cpu_model()}; Python {platform.python_version()}, numpy {np.__version__}")
    _measure(f"step by step, fixed offsets ({a.paths} paths)", "steps", partial(_steps_fixed, a.paths), a.runs)
    _measure(
        f"step by step, AS quotes each step ({a.paths} paths)", "steps", partial(_steps_with_as_quotes, a.paths), a.runs
    )
    for sims in a.sims:
        _measure(f"vectorised, inventory strategy ({sims} paths)", "paths", partial(_vectorised, sims), a.runs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
