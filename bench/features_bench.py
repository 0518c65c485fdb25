"""The cost of the microstructure features: incremental per event and per sample, batch per row.

::

    .venv/bin/python bench/features_bench.py [--commands 20000] [--runs 5] [--seed 5] [--json OUT.json]

One synthetic session (``ml.features.synthetic_session``: ``SyntheticFlow`` through ``execute_batch``) is built
before anything is timed, with its events decoded into ``Event`` tuples and its batch inputs recorded. Then,
each ``--runs`` times, with a fresh ``IncrementalFeatures`` (spec defaults, one own client):

- *update only*: every event through ``on_event`` and no sample: the per-event update cost;
- *direct*: the market events' fields passed to ``on_book_delta``/``on_trade`` (what a hot-path reader that
  decodes fields itself would call), no sample;
- *full*: every event through ``on_event`` and a ``sample`` after each command: per event of the stream, and
  (full - update only) per sample; and *full* again with no own client (the queue proxy's share: client 1 of
  the flow's 8 has a few hundred orders resting, where a market maker has a handful);
- *batch*: ``batch_features`` over the recorded arrays, per row.

Medians over the runs are printed with the parameters, the CPU model and the commit. Each loop is timed
whole, twice: wall time by a monotonic clock (``time.perf_counter_ns``) and CPU time of this process
(``time.process_time_ns``), which other work on a shared machine does not inflate; no per-event clock reads.
Then, apart, each ``sample`` call is timed alone (after its command's events) for its percentiles.

``IncrementalFeatures`` runs in C (``hotpath.book_features``); the figures include the Python calls into it.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.bench_common import cpu_model, git_commit  # noqa: E402
from c_engine import Event, EventType  # noqa: E402
from ml.features import (  # noqa: E402
    FeatureSpec,
    IncrementalFeatures,
    batch_features,
    synthetic_batch_inputs,
    synthetic_session,
)

#: the client whose orders count as one's own (queue-position proxy)
OWN_CLIENT = 1


def median_ns(fn: Callable[[], None], runs: int) -> tuple[float, float]:
    """Medians over ``runs`` calls of ``fn``: (wall ns, CPU ns of this process)."""
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        fn()
        cpu.append(time.process_time_ns() - c0)
        wall.append(time.perf_counter_ns() - t0)
    return statistics.median(wall), statistics.median(cpu)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--commands", type=int, default=20_000)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--seed", type=int, default=5)
    parser.add_argument("--json", type=Path, default=None, help="write the results here too")
    args = parser.parse_args(argv)

    spec = FeatureSpec()
    session = synthetic_session(args.commands, seed=args.seed)
    events = Event.unpack_all(np.ascontiguousarray(session.events).view(np.uint8).tobytes())
    ends = [i + 1 == len(events) or events[i + 1].ts_ns != e.ts_ns for i, e in enumerate(events)]
    delta, trade = int(EventType.BOOK_DELTA), int(EventType.TRADE)
    market = [(e.type, e.side, e.price, e.qty, e.ts_ns) for e in events if e.type in (delta, trade)]
    book, trades, own = synthetic_batch_inputs(session, own_client=OWN_CLIENT)
    n_events, n_samples, n_market = len(events), sum(ends), len(market)

    def update_only() -> None:
        f = IncrementalFeatures(spec, OWN_CLIENT)
        on_event = f.on_event
        for e in events:
            on_event(e)

    def direct() -> None:
        f = IncrementalFeatures(spec, OWN_CLIENT)
        on_delta, on_trade = f.on_book_delta, f.on_trade
        for t, side, price, qty, ts in market:
            if t == delta:
                on_delta(side, price, qty)
            else:
                on_trade(side, price, qty, ts)

    def full(own_client: int | None = OWN_CLIENT) -> None:
        f = IncrementalFeatures(spec, own_client)
        on_event, sample = f.on_event, f.sample
        for e, end in zip(events, ends, strict=True):
            on_event(e)
            if end:
                sample(e.ts_ns)

    def batch() -> None:
        batch_features(spec, book, trades, own)

    def sample_times() -> list[int]:
        f = IncrementalFeatures(spec, OWN_CLIENT)
        on_event, sample, clock = f.on_event, f.sample, time.perf_counter_ns
        out = []
        for e, end in zip(events, ends, strict=True):
            on_event(e)
            if end:
                t0 = clock()
                sample(e.ts_ns)
                out.append(clock() - t0)
        return out

    update_only()  # warm-up: imports, allocator
    results: dict[str, Any] = {
        "commands": args.commands,
        "events": n_events,
        "market_events": n_market,
        "samples": n_samples,
        "runs": args.runs,
        "spec_hash": spec.spec_hash(),
        "cpu": cpu_model(),
        "commit": git_commit("ml/features", "hotpath/src/book_features.c", "bench/features_bench.py"),
    }
    timed = {
        "update": (median_ns(update_only, args.runs), n_events),
        "direct": (median_ns(direct, args.runs), n_market),
        "full": (median_ns(full, args.runs), n_events),
        "no_own": (median_ns(lambda: full(None), args.runs), n_events),
        "batch": (median_ns(batch, args.runs), n_samples),
    }
    for name, ((wall, cpu), n) in timed.items():
        results[f"{name}_wall_ns"] = wall / n
        results[f"{name}_cpu_ns"] = cpu / n
    for kind in ("wall", "cpu"):
        per_sample = (timed["full"][0][kind == "cpu"] - timed["update"][0][kind == "cpu"]) / n_samples
        results[f"sample_{kind}_ns"] = per_sample
    alone = np.array(sample_times(), dtype=np.float64)
    results["sample_alone_p50_ns"], results["sample_alone_p99_ns"] = (float(v) for v in np.percentile(alone, [50, 99]))
    print(f"features_bench: {args.commands} commands, {n_events} events ({n_market} BOOK_DELTA/TRADE), "
          f"{n_samples} samples, {spec.width} features (spec {results['spec_hash']}), "
          f"medians of {args.runs} runs")  # fmt: skip
    print(f"cpu: {results['cpu']}; commit {results['commit']}")
    print(f"{'':37}{'wall':>10}{'CPU':>10}")
    rows = [
        ("incremental update only (on_event)", "update", "us per event"),
        ("incremental direct (on_book_delta)", "direct", "us per market event"),
        ("incremental sample (full - update)", "sample", "us per sample"),
        ("incremental full (events + samples)", "full", "us per event"),
        ("incremental full, no own orders", "no_own", "us per event"),
        ("batch (numpy)", "batch", "us per row"),
    ]
    for label, key, unit in rows:
        wall_ns, cpu_ns = results[f"{key}_wall_ns"], results[f"{key}_cpu_ns"]
        print(f"{label:<37}{wall_ns / 1e3:10.3f}{cpu_ns / 1e3:10.3f}  {unit}")
    p50, p99 = results["sample_alone_p50_ns"] / 1e3, results["sample_alone_p99_ns"] / 1e3
    print(f"incremental sample, each call timed: p50 {p50:.3f} us, p99 {p99:.3f} us (wall)")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
