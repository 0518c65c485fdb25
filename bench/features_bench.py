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

Medians over the runs are printed with the parameters, the CPU model and the commit. A monotonic clock
(``time.perf_counter_ns``) times whole loops; no per-event clock reads.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

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


def median_ns(fn: Callable[[], None], runs: int) -> float:
    times = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times)


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

    update_only()  # warm-up: imports, allocator
    results = {
        "commands": args.commands,
        "events": n_events,
        "market_events": n_market,
        "samples": n_samples,
        "runs": args.runs,
        "spec_hash": spec.spec_hash(),
        "cpu": cpu_model(),
        "commit": git_commit("ml/features", "bench/features_bench.py"),
    }
    t_update = median_ns(update_only, args.runs)
    t_direct = median_ns(direct, args.runs)
    t_full = median_ns(full, args.runs)
    t_no_own = median_ns(lambda: full(None), args.runs)
    t_batch = median_ns(batch, args.runs)
    results.update(
        update_ns_per_event=t_update / n_events,
        direct_ns_per_market_event=t_direct / n_market,
        full_ns_per_event=t_full / n_events,
        sample_ns_per_sample=(t_full - t_update) / n_samples,
        no_own_ns_per_event=t_no_own / n_events,
        batch_ns_per_row=t_batch / n_samples,
    )
    print(f"features_bench: {args.commands} commands, {n_events} events ({n_market} BOOK_DELTA/TRADE), "
          f"{n_samples} samples, {spec.width} features (spec {results['spec_hash']}), "
          f"medians of {args.runs} runs")  # fmt: skip
    print(f"cpu: {results['cpu']}; commit {results['commit']}")
    print(f"incremental update only (on_event) : {results['update_ns_per_event'] / 1e3:8.3f} us per event")
    print(
        f"incremental direct (on_book_delta) : {results['direct_ns_per_market_event'] / 1e3:8.3f} us per market event"
    )
    print(f"incremental sample                 : {results['sample_ns_per_sample'] / 1e3:8.3f} us per sample")
    print(f"incremental full (events + samples): {results['full_ns_per_event'] / 1e3:8.3f} us per event")
    print(f"incremental full, no own orders    : {results['no_own_ns_per_event'] / 1e3:8.3f} us per event")
    print(f"batch (numpy)                      : {results['batch_ns_per_row'] / 1e3:8.3f} us per row")
    if args.json is not None:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
