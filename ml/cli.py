"""``proptrade ml``: train, evaluate and export the short-term predictors.

    proptrade ml train --data DATA [--kind K] [--target T] [--model KIND] --out models/NAME.onnx [--tiny]
    proptrade ml eval --model models/NAME.onnx --data DATA [--kind K]
    proptrade ml backtest [--model M] [--adverse-model A] --data DATA [--weight W] [--widen P] [--latency-us L]

``DATA`` is a LOBSTER message file (its order-book file beside it), a Binance USD-M capture or its Parquet
recording, a Parquet recording of engine commands, or ``synthetic:COMMANDS[:SEED]`` (``ml.data``, which tells
the kind from the name and the file's first bytes). ``train`` cuts the data in time order (train, validation,
test; ``ml.labels.time_split``), fits every model kind on the training rows, prints each one's metrics and the
naive baselines' on the validation and test rows, exports the chosen kind to ONNX, checks that onnxruntime
agrees with scikit-learn on the whole test set and prints that too. ``eval`` scores a model file on data it was
not trained on (the same data hash is refused) and prints the same table. ``backtest`` runs the predictor maker
and the plain inventory-skew maker on the same market (``ml.backtest.compare``; ``DATA`` here is
``synthetic:N[:SEED]``, a LOBSTER message file or a Binance capture) and prints PnL, Sharpe, fills and adverse
selection.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from .data import DATA_KINDS, DataError, MarketData, data_kind, load_data, parse_synthetic
from .dataset import TARGETS, Dataset, build_dataset, model_features
from .export import ModelMeta, SpecMismatch, export_model, parity, to_onnx_bytes, versions
from .features import FeatureSpec, to_float32
from .labels import LabelParams, time_split
from .models import MODEL_KINDS, baseline_predictions, evaluate, is_classifier, make_model

__all__ = ["build_parser", "main", "metric_table", "train"]

#: the metric columns of the table, per task
_COLUMNS = {True: ("accuracy", "f1", "auc"), False: ("r2", "corr")}


_DATA_HELP = "LOBSTER message file, Binance capture, commands .parquet, or synthetic:N[:SEED]"


def _binance_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--symbol", default="BTCUSDT", help="a Binance capture's symbol (default BTCUSDT)")
    p.add_argument("--tick-size", type=float, default=0.1, help="a Binance capture's tick (default 0.1)")
    p.add_argument("--lot-size", type=float, default=0.001, help="a Binance capture's lot (default 0.001)")


def _load(args: argparse.Namespace) -> MarketData:
    return load_data(args.data, args.kind, tick=args.tick, symbol=args.symbol, tick_size=args.tick_size,
                     lot_size=args.lot_size)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="proptrade ml", description="short-term predictors: train, evaluate")
    sub = parser.add_subparsers(dest="command", required=True)
    tr = sub.add_parser("train", help="train, evaluate and export a predictor")
    tr.add_argument("--data", required=True, help=_DATA_HELP)
    tr.add_argument("--kind", choices=DATA_KINDS, help="the data's kind (default: from its name)")
    tr.add_argument("--tick", type=int, default=100, help="LOBSTER tick in its price units (default 100: a cent)")
    _binance_options(tr)
    tr.add_argument("--target", choices=TARGETS, default="direction", help="what to predict (default direction)")
    tr.add_argument("--model", choices=MODEL_KINDS, default="forest", help="the kind to export (default forest)")
    tr.add_argument("--out", required=True, help="the model file to write (.onnx)")
    tr.add_argument("--horizon", type=int, default=LabelParams.horizon, help="samples ahead of the return")
    tr.add_argument("--flat-bps", type=float, default=LabelParams.flat_bps, help="the direction's flat band")
    tr.add_argument("--fill-horizon", type=int, default=LabelParams.fill_horizon, help="adverse: fill window")
    tr.add_argument("--markout", type=int, default=LabelParams.markout, help="adverse: samples after the fill")
    tr.add_argument("--tiny", action="store_true", help="small models (seconds; for tests)")
    tr.add_argument("--seed", type=int, default=0, help="the models' random seed")
    ev = sub.add_parser("eval", help="metrics of a model file on data it never saw")
    ev.add_argument("--model", required=True, help="the model file (.onnx)")
    ev.add_argument("--data", required=True, help=_DATA_HELP)
    ev.add_argument("--kind", choices=DATA_KINDS, help="the data's kind (default: from its name)")
    ev.add_argument("--tick", type=int, default=100, help="LOBSTER tick in its price units (default 100: a cent)")
    _binance_options(ev)
    bt = sub.add_parser("backtest", help="the predictor maker against the inventory-skew maker")
    bt.add_argument("--model", help="the signal model (return or direction)")
    bt.add_argument("--adverse-model", help="the adverse-selection model")
    bt.add_argument("--data", required=True, help="synthetic:N[:SEED], a LOBSTER message file or a Binance capture")
    bt.add_argument("--tick", type=int, default=100, help="LOBSTER tick in its price units (default 100: a cent)")
    _binance_options(bt)
    bt.add_argument("--weight", type=float, default=1.0, help="signal_weight (default 1)")
    bt.add_argument("--widen", type=float, default=0.02, help="adverse_widen, price units (default 0.02)")
    bt.add_argument("--half-spread", type=float, default=0.02, help="both makers' half spread (default 0.02)")
    bt.add_argument("--latency-us", type=float, default=10.0, help="each way, constant (default 10)")
    return parser


def backtest(args: argparse.Namespace, out: Any = None) -> dict[str, dict[str, float]]:
    """``proptrade ml backtest``: both makers on the same data; returns their summary rows."""
    from strategies.backtest import MarketSource

    from .backtest import compare, default_config, summary_row
    from .predictor import Predictor
    from .predictor_maker import PredictorMakerParams

    out = out or sys.stdout
    signal = Predictor(args.model) if args.model else None
    adverse = Predictor(args.adverse_model) if args.adverse_model else None
    name = args.data
    make: Callable[[], MarketSource]
    if name.startswith("synthetic:"):
        from strategies.backtest import SyntheticSource

        n, seed = parse_synthetic(name)
        symbol, make = "SYN", lambda: SyntheticSource(n, seed=seed)
    elif data_kind(name) == "binance":
        from strategies.backtest.binance_source import BinanceSource

        symbol = args.symbol
        make = lambda: BinanceSource(name, symbol=args.symbol, tick=args.tick_size, lot=args.lot_size)  # noqa: E731
    else:
        from pathlib import Path

        from strategies.backtest.lobster_source import LobsterSource

        message = Path(name)
        orderbook = message.with_name(message.name.replace("message", "orderbook"))
        symbol = message.name.split("_")[0]
        make = lambda: LobsterSource(message, orderbook, tick=args.tick)  # noqa: E731
    for model in (signal, adverse):
        if model is not None and name == model.meta.data_name:
            raise DataError(f"{name} is the data {model.path} was trained on: backtest on data it never saw")
    params = PredictorMakerParams(symbol=symbol, half_spread=args.half_spread, signal_weight=args.weight,
                                  adverse_widen=args.widen)  # fmt: skip
    config = default_config(args.latency_us)
    rows = {k: summary_row(v) for k, v in compare(make, params, signal, adverse, config).items()}
    print(f"data: {name}; " + "; ".join(config.describe()), file=out)
    print(f"predictor: signal {args.model}, adverse {args.adverse_model}, {params}", file=out)
    cols = list(next(iter(rows.values())))
    print(f"{'maker':<16}" + "".join(f"{c:>14}" for c in cols), file=out)
    for maker, row in rows.items():
        print(f"{maker:<16}" + "".join(f"{_fmt(row[c]):>14}" for c in cols), file=out)
    return rows


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def metric_table(metrics: dict[str, dict[str, dict[str, float]]], target: str) -> str:
    """``metrics[split][row]``: one line per split and row (a model or a baseline), the task's columns."""
    cols = _COLUMNS[is_classifier(target)]
    lines = [f"{'split':<6} {'predictor':<14} {'rows':>8} " + " ".join(f"{c:>9}" for c in cols)]
    for split, rows in metrics.items():
        for name, m in rows.items():
            cells = " ".join(f"{_fmt(m.get(c, math.nan)):>9}" for c in cols)
            lines.append(f"{split:<6} {name:<14} {int(m.get('n', 0)):>8} {cells}")
    return "\n".join(lines)


def _last_return_column(spec: FeatureSpec, horizon: int) -> int:
    """The model column of the past return over the label's horizon (or the nearest horizon the spec has)."""
    h = min(spec.return_horizons, key=lambda r: (abs(r - horizon), r))
    return model_features(spec).index(f"ret_{h}smp_bps")


def _scores(pipeline: Any, x: npt.NDArray[np.float64], target: str) -> npt.NDArray[Any]:
    x32 = to_float32(x)
    scores: npt.NDArray[Any] = pipeline.predict_proba(x32) if is_classifier(target) else pipeline.predict(x32)
    return scores


def train(args: argparse.Namespace, out: Any = None) -> ModelMeta:
    """``proptrade ml train``: fits, evaluates, exports; returns the written model's metadata."""
    out = out or sys.stdout
    params = LabelParams(args.horizon, args.flat_bps, args.fill_horizon, args.markout)
    started = time.perf_counter()
    data = _load(args)
    ds = build_dataset(data, FeatureSpec(), params)
    split = time_split(data.samples, params.reach)
    target = args.target
    x_tr, y_tr, _ = ds.xy(target, split.train)
    if len(y_tr) == 0 or (is_classifier(target) and len(np.unique(y_tr)) < 2):
        raise DataError(f"{args.data}: too few labelled training rows for {target} ({len(y_tr)})")
    print(
        f"data: {data.kind} {data.name} ({data.samples} samples, hash {data.data_hash}); target {target}; "
        f"labels {params.as_dict()}; rows train {len(split.train)}, valid {len(split.valid)}, test "
        f"{len(split.test)} (gap {params.reach}); read in {time.perf_counter() - started:.1f} s",
        file=out,
    )
    last_col = _last_return_column(ds.spec, params.horizon)
    fitted: dict[str, Any] = {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # convergence notes of the small models; their metrics say the rest
        for kind in MODEL_KINDS:
            t0 = time.perf_counter()
            fitted[kind] = make_model(kind, target, tiny=args.tiny, seed=args.seed).fit(to_float32(x_tr), y_tr)
            print(f"fitted {kind} in {time.perf_counter() - t0:.1f} s", file=out)
    metrics = _metrics(ds, target, {"valid": split.valid, "test": split.test}, fitted, y_tr, last_col)
    print(metric_table(metrics, target), file=out)
    chosen = fitted[args.model]
    names = model_features(ds.spec)
    classes = [float(c) for c in getattr(chosen.steps[-1][1], "classes_", [])]
    meta = ModelMeta(target, args.model, names, ds.spec.spec_hash(), ds.spec.to_json(), params.as_dict(), data.name,
                     data.data_hash, {k: {r: m for r, m in v.items() if r in (args.model, "always flat",
                     "last return")} for k, v in metrics.items()}, classes, versions())  # fmt: skip
    x_te, _, _ = ds.xy(target, split.test)
    check = parity(chosen, to_onnx_bytes(chosen, len(names), meta), x_te)
    path = export_model(chosen, args.out, meta)
    print(
        f"exported {args.model} to {path}: onnxruntime vs scikit-learn on {check.rows} test rows: max abs "
        f"{check.max_abs:.3g}, max rel {check.max_rel:.3g}, class mismatches {check.class_mismatches}",
        file=out,
    )
    return meta


def _metrics(
    ds: Dataset,
    target: str,
    splits: dict[str, npt.NDArray[np.int64]],
    models: dict[str, Any],
    y_train: npt.NDArray[np.float64],
    last_col: int,
) -> dict[str, dict[str, dict[str, float]]]:
    out: dict[str, dict[str, dict[str, float]]] = {}
    for split, rows in splits.items():
        x, y, _ = ds.xy(target, rows)
        table: dict[str, dict[str, float]] = {}
        classes = np.unique(y_train) if is_classifier(target) else None
        for kind, model in models.items():
            table[kind] = evaluate(target, y, _scores(model, x, target), getattr(model, "classes_", None))
        for name, scores in baseline_predictions(target, y_train, x[:, last_col], ds.params.flat_bps, len(y)).items():
            table[name] = evaluate(target, y, scores, classes)
        out[split] = table
    return out


def evaluate_file(args: argparse.Namespace, out: Any = None) -> dict[str, dict[str, float]]:
    """``proptrade ml eval``: the model file's metrics and the baselines' on all of ``--data``."""
    out = out or sys.stdout
    from .predictor import Predictor

    predictor = Predictor(args.model)
    meta = predictor.meta
    data = _load(args)
    if data.data_hash == meta.data_hash:
        raise DataError(f"{args.data} is the data {args.model} was trained on (hash {data.data_hash}): evaluate it "
                        "on data it never saw")  # fmt: skip
    params = LabelParams(**meta.label_params)
    ds = build_dataset(data, predictor.spec, params)
    x, y, _ = ds.xy(meta.target)
    session = predictor.session
    (scores,) = session.run(predictor.outputs, {session.get_inputs()[0].name: to_float32(x)})
    classes = np.array(meta.classes) if meta.classes else None
    table = {meta.kind: evaluate(meta.target, y, scores, classes)}
    trained = np.array(meta.classes)  # the baselines' "majority" is the evaluated data's own, said in the table
    y_major = y if len(y) else trained
    last_col = _last_return_column(ds.spec, params.horizon)
    for name, s in baseline_predictions(meta.target, y_major, x[:, last_col], params.flat_bps, len(y)).items():
        table[name] = evaluate(meta.target, y, s, np.unique(y_major) if classes is not None else None)
    print(f"model: {args.model} ({meta.kind} {meta.target}, trained on {meta.data_name}, hash {meta.data_hash})",
          file=out)  # fmt: skip
    print(f"data: {data.kind} {data.name} ({data.samples} samples, hash {data.data_hash})", file=out)
    print(metric_table({"eval": table}, meta.target), file=out)
    return table


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.command == "train":
            train(args)
        elif args.command == "eval":
            evaluate_file(args)
        else:
            backtest(args)
    except (DataError, SpecMismatch, ValueError, OSError) as e:
        print(f"proptrade ml {args.command}: {e}", file=sys.stderr)
        return 2
    return 0
