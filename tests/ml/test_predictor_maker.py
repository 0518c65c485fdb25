"""The predictor maker runs in the backtest venue, keeps features from what the interface shows, acts on its
models' scores, and with its predictions
switched off quotes exactly as the inventory-skew maker."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from ml.backtest import compare, default_config, summary_row
from ml.cli import main
from ml.data import load_synthetic
from ml.features import FeatureSpec, batch_features
from ml.predictor import Predictor
from ml.predictor_maker import PredictorMaker, PredictorMakerParams
from strategies.backtest import BacktestVenue, SyntheticSource


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory) -> tuple[Predictor, Predictor]:
    folder = tmp_path_factory.mktemp("models")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for target in ("direction", "adverse"):
            assert main(["train", "--data", "synthetic:3000:1", "--tiny", "--target", target, "--fill-horizon", "20",
                         "--markout", "20", "--out", str(folder / f"{target}.onnx")]) == 0  # fmt: skip
    return Predictor(folder / "direction.onnx"), Predictor(folder / "adverse.onnx")


def test_with_predictions_off_it_fills_exactly_as_the_inventory_skew_maker(models: tuple[Predictor, Predictor]) -> None:
    params = PredictorMakerParams(symbol="SYN", signal_weight=0.0, adverse_widen=0.0)
    runs = compare(lambda: SyntheticSource(4000, seed=7), params, *models, default_config(10.0))
    assert runs["predictor"]["fills"] > 0
    assert summary_row(runs["predictor"]) == pytest.approx(summary_row(runs["inventory_skew"]), nan_ok=True)


def test_its_predictions_move_its_quotes_in_a_backtest(models: tuple[Predictor, Predictor]) -> None:
    signal, adverse = models
    maker = PredictorMaker(PredictorMakerParams(symbol="SYN", signal_weight=1.0, adverse_widen=0.05), signal, adverse)
    maker.decision_ns = []
    BacktestVenue(maker, SyntheticSource(3000, seed=8), default_config(10.0)).run()
    assert maker.decisions > 300 and len(maker.decision_ns) == maker.decisions
    assert maker.score != 0.0 and 0.0 < maker.p_adverse < 1.0


def test_its_book_window_features_equal_the_batch_features_of_the_same_book_states() -> None:
    # At zero latency each on_book sees the engine's book right after a command (the venue calls it when a
    # command moves the top of the book or trades): the instantaneous book columns equal the batch side's row
    # of that command, found by its time.
    maker = PredictorMaker(PredictorMakerParams(symbol="SYN", size=0.0))
    rows: list[tuple[int, np.ndarray]] = []
    sample_to = maker._sample_to

    def keep(ts_ns: int) -> None:
        sample_to(ts_ns)
        rows.append((ts_ns, maker.row.copy()))

    maker._sample_to = keep
    BacktestVenue(maker, SyntheticSource(1500, seed=4), default_config(0.0)).run()
    data = load_synthetic(1500, seed=4)
    spec = FeatureSpec()
    batch = batch_features(spec, data.book, data.trades)
    names = spec.names()
    shape = [names.index(n) for n in ("spread_ticks", "imbalance_l1", f"imbalance_depth{spec.depth}",
                                      "wmid_offset_ticks")]  # fmt: skip
    at = np.searchsorted(data.book.ts_ns, [t for t, _ in rows])
    assert len(rows) > 200 and np.array_equal(data.book.ts_ns[at], [t for t, _ in rows])
    got = np.array([r for _, r in rows])[:, shape]
    np.testing.assert_allclose(got, batch[at][:, shape], rtol=0, atol=1e-12, equal_nan=True)


def test_a_model_in_the_wrong_slot_is_refused(models: tuple[Predictor, Predictor], tmp_path: Path) -> None:
    signal, adverse = models
    with pytest.raises(ValueError, match="predicts adverse"):
        PredictorMaker(PredictorMakerParams(symbol="SYN"), adverse, None)


def test_its_scores_are_its_models_scores_of_the_row_it_sampled(models: tuple[Predictor, Predictor]) -> None:
    signal, adverse = models
    for maker in (PredictorMaker(PredictorMakerParams(symbol="SYN"), signal, adverse),
                  PredictorMaker(PredictorMakerParams(symbol="SYN"), None, adverse)):  # fmt: skip
        BacktestVenue(maker, SyntheticSource(1500, seed=9), default_config(10.0)).run()
        # The row the last decision's models read is the one the features wrote into their bound input.
        assert maker.decisions > 200 and np.isfinite(maker.row[0])
        assert maker.p_adverse == pytest.approx(adverse.score(maker.row), abs=1e-6)
        assert maker.score == (pytest.approx(signal.score(maker.row), abs=1e-6) if maker.signal else 0.0)
