"""ml_bench: single-row inference (onnxruntime vs scikit-learn vs a numpy forward pass), feature cost, and the
predictor maker's decision time, in one run.

    .venv/bin/python bench/ml_bench.py [--train N] [--rows N] [--events N] [--live-seconds S] [--cold-mb MB]

Models are fitted on ``synthetic:N:1`` (features of ``ml.features``, the direction target, full-size models as
``proptrade ml train`` makes them). Each single-row figure times one call on one recorded feature row, cycling
over ``--rows`` rows, after a warm-up; percentiles of ``time.perf_counter_ns`` per call. The numpy forward pass
is the fitted pipeline written out (fill, scale, weights, softmax) for the linear and MLP models; a forest has
none here. Feature cost: ``IncrementalFeatures.on_event`` per engine event, ``sample`` per sample point, and
``batch_features`` per row (the incremental ones in C, ``hotpath.book_features``, called from Python).

Decision: the predictor maker's ``on_book`` with the forest direction model and the linear adverse model, from
its entry (the book already updated) to its return: the book window's deltas into the features, the sample, both
models (one ``JointPredictor`` run), and the requote, whose orders are written to the engine (the venue, or the
engine's command ring) before it returns. In a backtest on ``synthetic:20000:2``, and live: ``--live-seconds``
on a launched platform (``hotpath.testing.FLOW_ONLY_CONFIG``: the engine process, two Poisson flow agents on
SIM), the maker attached as ``mm_1`` through ``strategies.live`` (``LiveTrading``, ``run_live``). CPU time
(``time.thread_time_ns``) is printed beside wall time: the machine is shared, and other work inflates wall
time only.

A/B, a gain measured under one load: the inference alone (the two models' own sessions, two runs, against
the joint one, on the same rows, interleaved call by call), and the whole decision, backtest and live, in a
maker whose decisions alternate between its own and one whose feature row is copied in Python, not written
by the C features into the models' bound input (the kernel's row into a new array, its model columns from that
into the input; the live A/B on a second launched platform after the first).
A live decision starts on caches other processes used since the last one; ``--cold-mb`` (default 24) repeats
the backtest A/B with two decisions in every 40 made after reading that many MB of other data, a stand-in
for that which does not depend on what else the machine runs.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import Any

import numpy as np
import numpy.typing as npt

ROOT = Path(__file__).resolve().parents[1]


def _pct(samples: list[int]) -> str:
    a = np.array(samples, dtype=np.float64) / 1e3
    return "p50 {:8.2f} us  p99 {:8.2f} us  p99.9 {:8.2f} us  max {:9.2f} us".format(
        *np.percentile(a, [50, 99, 99.9]), a.max()
    )


def _time(fn: Callable[[npt.NDArray[np.float64]], Any], rows: npt.NDArray[np.float64], calls: int) -> list[int]:
    for i in range(min(2000, calls)):
        fn(rows[i % len(rows)])
    out = []
    clock = time.perf_counter_ns
    for i in range(calls):
        row = rows[i % len(rows)]
        t0 = clock()
        fn(row)
        out.append(clock() - t0)
    return out


def _numpy_forward(pipeline: Any) -> Callable[[npt.NDArray[np.float32]], npt.NDArray[np.float64]] | None:
    """The linear or MLP pipeline as numpy (cast, fill NaN with 0, standardise, layers, softmax)."""
    steps = dict(pipeline.steps)
    scale = steps.get("scale")
    model = steps["model"]
    if scale is None:
        return None
    mean, inv = scale.mean_.astype(np.float64), 1.0 / scale.scale_.astype(np.float64)
    if hasattr(model, "coefs_"):
        pairs = zip(model.coefs_, model.intercepts_, strict=True)
        layers = [(w.astype(np.float64), b.astype(np.float64)) for w, b in pairs]
    elif hasattr(model, "coef_"):
        layers = [(model.coef_.T.astype(np.float64), model.intercept_.astype(np.float64))]
    else:
        return None

    def forward(x: npt.NDArray[np.float32]) -> npt.NDArray[np.float64]:
        h = (np.nan_to_num(x.astype(np.float64), nan=0.0) - mean) * inv
        for i, (w, b) in enumerate(layers):
            h = h @ w + b
            if i + 1 < len(layers):
                np.maximum(h, 0.0, out=h)
        e: npt.NDArray[np.float64] = np.exp(h - h.max())
        out: npt.NDArray[np.float64] = e / e.sum()
        return out

    return forward


class _Alternating:
    """Scores alternately from the joint session (odd calls) and from the two models' own sessions, two runs
    (even calls: the path before the joint graph)."""

    def __init__(self, signal: Any, adverse: Any) -> None:
        from ml.predictor import JointPredictor

        self.joint = JointPredictor([signal, adverse])
        self.signal, self.adverse = signal, adverse
        self.calls = 0
        signal.session, adverse.session  # noqa: B018 - made now, not in the first call

    def scores(self, row: npt.NDArray[np.float64]) -> list[float]:
        self.calls += 1
        if self.calls % 2:
            return self.joint.scores(row)
        return [self.signal.score(row), self.adverse.score(row)]


def _alternate(maker: Any) -> None:
    """Makes ``maker``'s decisions alternate between its own (even ones: the C features write the model columns
    into the models' bound input) and one whose row is copied in Python (odd ones): the kernel's row into a new
    array (``IncrementalFeatures.sample``), its model columns from that into the input (``JointPredictor.scores``)."""
    current = maker._decide
    joint, features = maker.joint, maker.features

    def copied(trading: Any) -> None:
        maker._feed_book(trading)
        maker.score, maker.p_adverse = joint.scores(features.sample(trading.now_ns()))
        maker.decisions += 1
        maker.requote(trading)

    def alternating(trading: Any) -> None:
        (copied if len(maker.decision_ns) % 2 else current)(trading)

    maker._decide = alternating


def _maker(symbol: str, forest: Path, adverse: Path, alternate: bool, **params: Any) -> Any:
    """The decision's maker (module docstring), timing its decisions; ``alternate``: the A/B one."""
    from ml.predictor import Predictor
    from ml.predictor_maker import PredictorMaker, PredictorMakerParams

    signal_model, adverse_model = Predictor(forest), Predictor(adverse)
    maker = PredictorMaker(PredictorMakerParams(symbol=symbol, **params), signal_model, adverse_model)
    maker.decision_ns, maker.decision_cpu_ns = [], []
    if alternate:
        _alternate(maker)
    return maker


def _ab(maker: Any, only: list[int] | None = None) -> str:
    """The alternating maker's decisions (``only``: these indices), the row written into the bound input by C
    (even) against the row copied in Python (odd), and their p50 ratio."""
    keep = range(len(maker.decision_ns)) if only is None else only
    into = [maker.decision_ns[i] for i in keep if i % 2 == 0]
    copied = [maker.decision_ns[i] for i in keep if i % 2]
    ic = [maker.decision_cpu_ns[i] for i in keep if i % 2 == 0]
    cc = [maker.decision_cpu_ns[i] for i in keep if i % 2]
    return (f"{len(keep)} decisions\n    row copied in Python: {_pct(copied)}  CPU p50 {np.median(cc) / 1e3:.2f} us"
            f"\n    row written by C:     {_pct(into)}  CPU p50 {np.median(ic) / 1e3:.2f} us"
            f"\n    p50 ratio copied/into {np.median(copied) / np.median(into):.2f}x "
            f"(CPU {np.median(cc) / np.median(ic):.2f}x)")  # fmt: skip


def _cold(maker: Any, mb: float, period: int) -> list[int]:
    """Makes two decisions in every ``period`` (one of each path of an alternating maker) start after reading
    ``mb`` MB of other data, as a live decision starts after other processes ran; returns the list their
    indices will be added to."""
    junk = np.ones(max(1, int(mb * 2**20 / 8)))
    cold: list[int] = []
    on_book = maker.on_book

    def thrashed(trading: Any, symbol_id: int) -> None:
        n = len(maker.decision_ns)
        if symbol_id == maker.sid and n % period < 2:
            junk.sum()
            cold.append(n)
        on_book(trading, symbol_id)

    maker.on_book = thrashed
    return cold


def _live_decisions(forest: Path, adverse: Path, seconds: float, alternate: bool = False) -> Any:
    """The predictor maker (``_maker``) after ``seconds`` on a launched platform (module docstring)."""
    import threading

    from hotpath import BookView, Client
    from hotpath.md_view import control_snapshot
    from hotpath.testing import FLOW_ONLY_CONFIG, launched_platform
    from strategies.live import LiveTrading, run_live

    maker = _maker("SIM", forest, adverse, alternate, half_spread=0.02, size=1, max_position=100,
                   quote_interval_s=0.05)  # fmt: skip
    with TemporaryDirectory() as run_dir, launched_platform(FLOW_ONLY_CONFIG, Path(run_dir)) as run:
        with Client("mm_1", prefix=run.prefix) as client:
            sid = client.symbol_id("SIM")
            view = BookView(client.market_data(), [sid], control_snapshot(client.request, client.symbol_names))
            view.resync()
            run_live(LiveTrading(maker, client, view), threading.Event(), seconds=seconds)
    return maker


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--train", type=int, default=20000, help="synthetic commands to train on")
    parser.add_argument("--rows", type=int, default=20000, help="single-row calls per model")
    parser.add_argument("--events", type=int, default=20000, help="synthetic commands for the feature cost")
    parser.add_argument("--live-seconds", type=float, default=0.0, help="seconds of the live decision run (0: none)")
    parser.add_argument("--cold-mb", type=float, default=24.0, help="MB read before a cold decision (0: no cold run)")
    args = parser.parse_args()
    warnings.simplefilter("ignore")

    from c_engine import Event, EventType
    from ml.backtest import default_config
    from ml.cli import main as ml_main
    from ml.data import load_synthetic
    from ml.features import FeatureSpec, IncrementalFeatures, batch_features, synthetic_session, to_float32
    from ml.predictor import Predictor
    from strategies.backtest import BacktestVenue, SyntheticSource

    commit = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True)
    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.processor())  # fmt: skip
    print(f"ml_bench: commit {commit.stdout.strip()}, {cpu}, {os.cpu_count()} cpus, python {platform.python_version()}")
    print(f"parameters: train synthetic:{args.train}:1, {args.rows} single-row calls, {args.events} feature commands")

    with TemporaryDirectory() as tmp:
        paths = {}
        for kind in ("linear", "forest", "mlp"):
            paths[kind] = Path(tmp) / f"{kind}.onnx"
            ml_main(["train", "--data", f"synthetic:{args.train}:1", "--model", kind, "--out", str(paths[kind])])
        adverse_path = Path(tmp) / "adverse.onnx"
        ml_main(["train", "--data", f"synthetic:{args.train}:1", "--target", "adverse", "--model", "linear",
                 "--out", str(adverse_path)])  # fmt: skip
        # The fitted pipelines: refit exactly as train does (same data, seed), for scikit-learn and numpy.
        from ml.dataset import build_dataset
        from ml.labels import time_split
        from ml.models import make_model

        ds = build_dataset(load_synthetic(args.train, 1))
        split = time_split(len(ds.features), ds.params.reach)
        x, y, _ = ds.xy("direction", split.train)
        rows = ds.features[split.test]
        print("\nsingle-row inference (direction model, one row per call)")
        for kind, path in paths.items():
            predictor = Predictor(path)
            pipeline = make_model(kind, "direction").fit(to_float32(x), y)
            cols = predictor.columns
            ort = _time(predictor.predict_row, rows, args.rows)

            def skl_call(r: npt.NDArray[np.float64], p: Any = pipeline, c: Any = cols) -> Any:
                return p.predict_proba(to_float32(r[c])[None, :])

            skl = _time(skl_call, rows, args.rows // 10)
            print(f"  {kind:<7} onnxruntime  {_pct(ort)}")
            print(f"  {kind:<7} scikit-learn {_pct(skl)}   ratio p50 {np.median(skl) / np.median(ort):6.1f}x")
            forward = _numpy_forward(pipeline)
            if forward is not None:

                def np_call(r: npt.NDArray[np.float64], f: Any = forward, c: Any = cols) -> Any:
                    return f(to_float32(r[c]))

                fwd = _time(np_call, rows, args.rows)
                check = max(
                    float(np.abs(forward(to_float32(r[cols])) - predictor.predict_row(r)).max()) for r in rows[:500]
                )
                print(f"  {kind:<7} numpy        {_pct(fwd)}   (max diff vs onnx {check:.1e})")

        print("\nfeatures")
        spec = FeatureSpec()
        session = synthetic_session(args.events, seed=3)
        events = Event.unpack_all(np.ascontiguousarray(session.events).view(np.uint8).tobytes())
        inc = IncrementalFeatures(spec)
        market = [e for e in events if e.type in (int(EventType.BOOK_DELTA), int(EventType.TRADE))]
        ends = [i for i, e in enumerate(events) if i + 1 == len(events) or events[i + 1].ts_ns != e.ts_ns]
        t0, c0 = time.perf_counter_ns(), time.process_time_ns()
        for e in events:
            inc.on_event(e)
        per_event_cpu = (time.process_time_ns() - c0) / len(events)
        per_event = (time.perf_counter_ns() - t0) / len(events)
        inc2 = IncrementalFeatures(spec)
        sample_ns = []
        j = 0
        for i in ends:
            while j <= i:
                inc2.on_event(events[j])
                j += 1
            t1 = time.perf_counter_ns()
            inc2.sample(events[i].ts_ns)
            sample_ns.append(time.perf_counter_ns() - t1)
        data = load_synthetic(args.events, 3)
        t2, c2 = time.perf_counter_ns(), time.process_time_ns()
        batch_features(spec, data.book, data.trades)
        per_row_cpu = (time.process_time_ns() - c2) / data.samples
        per_row = (time.perf_counter_ns() - t2) / data.samples
        print(f"  incremental on_event: {per_event / 1e3:.3f} us per event, CPU {per_event_cpu / 1e3:.3f} us "
              f"({len(events)} events, {len(market)} market)")  # fmt: skip
        print(f"  incremental sample:   {_pct(sample_ns)}")
        print(f"  batch:                {per_row / 1e3:.3f} us per row, CPU {per_row_cpu / 1e3:.3f} us "
              f"({data.samples} rows)")  # fmt: skip

        print("\npredictor maker decision (on_book: features + direction and adverse models + requote)")
        maker = _maker("SYN", paths["forest"], adverse_path, False)
        BacktestVenue(maker, SyntheticSource(20000, seed=2), default_config(10.0)).run()
        print(f"  backtest: {len(maker.decision_ns)} decisions: {_pct(maker.decision_ns)}")
        print(f"            CPU time: {_pct(maker.decision_cpu_ns)}")
        if args.live_seconds > 0:
            live = _live_decisions(paths["forest"], adverse_path, args.live_seconds)
            ns, cpu_ns = live.decision_ns, live.decision_cpu_ns
            print(f"  live ({args.live_seconds:g} s): {len(ns)} decisions: {_pct(ns) if ns else '-'}")
            print(f"            CPU time: {_pct(cpu_ns) if cpu_ns else '-'}")

        print("\nA/B: the two models' own sessions (two runs) against the joint session (one run)")
        two = _Alternating(Predictor(paths["forest"]), Predictor(adverse_path))
        inference = _time(two.scores, rows, 2 * args.rows)  # an even warm-up: joint on even indices
        print(f"  inference, interleaved: two sessions {_pct(inference[1::2])}")
        print(f"                          joint        {_pct(inference[0::2])}   "
              f"ratio p50 {np.median(inference[1::2]) / np.median(inference[0::2]):.2f}x")  # fmt: skip
        print("\nA/B: the decision with the feature row copied in Python against the row written into the input by C")
        maker = _maker("SYN", paths["forest"], adverse_path, True)
        BacktestVenue(maker, SyntheticSource(20000, seed=2), default_config(10.0)).run()
        print(f"  decision, backtest, alternating: {_ab(maker)}")
        if args.cold_mb > 0:
            maker = _maker("SYN", paths["forest"], adverse_path, True)
            cold = _cold(maker, args.cold_mb, 40)
            BacktestVenue(maker, SyntheticSource(20000, seed=2), default_config(10.0)).run()
            print(f"  decision, backtest, alternating, each after reading {args.cold_mb:g} MB: {_ab(maker, cold)}")
        if args.live_seconds > 0:
            live = _live_decisions(paths["forest"], adverse_path, args.live_seconds, alternate=True)
            if len(live.decision_ns) > 1:
                print(f"  decision, live ({args.live_seconds:g} s), alternating: {_ab(live)}")


if __name__ == "__main__":
    main()
