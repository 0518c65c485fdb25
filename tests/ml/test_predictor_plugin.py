"""The predictor maker joins the strategies by name through the ``proptrade.strategies`` entry point, so
``proptrade strategy|backtest --strategy predictor --model M`` build it while ``strategies`` never imports ``ml``."""

from __future__ import annotations

import pytest

from ml.predictor_maker import PredictorMaker
from strategies.backtest import BacktestConfig, BacktestVenue, ConstantLatency, SyntheticSource
from strategies.registry import OPTIONS, STRATEGIES, StrategyError, build_strategy, load_plugins


def test_the_entry_point_registers_the_predictor_maker_with_its_model_options() -> None:
    load_plugins()
    assert "predictor" in STRATEGIES
    assert set(OPTIONS["predictor"]) == {"model", "adverse_model"}


def test_the_registry_builds_it_by_name_and_refuses_options_it_does_not_have() -> None:
    maker = build_strategy("predictor", "SYN", {"size": 5, "skew": 0.001}, {"model": None})
    assert isinstance(maker, PredictorMaker) and maker.signal is None
    with pytest.raises(StrategyError, match="no option"):
        build_strategy("predictor", "SYN", {}, {"weights": "x.onnx"})
    with pytest.raises(StrategyError, match="takes no option"):
        build_strategy("symmetric", "SYN", {}, {"model": "x.onnx"})


def test_without_models_it_backtests_like_any_registered_maker() -> None:
    maker = build_strategy("predictor", "SYN", {"size": 5, "half_spread": 0.02, "quote_interval_s": 0.01})
    zero = ConstantLatency(50_000)
    result = BacktestVenue(maker, SyntheticSource(20_000, seed=3), BacktestConfig(zero, zero, zero, 0.0, 0.0)).run()
    assert result.quotes_sent > 0


def test_proptrade_backtest_runs_the_predictor_maker_by_name(capsys: pytest.CaptureFixture[str]) -> None:
    from strategies.backtest_cli import main

    assert main(["synthetic", "--messages", "5000", "--strategy", "predictor", "--size", "5"]) == 0
    assert "predictor on synthetic SYN" in capsys.readouterr().out
