"""The predictor maker against the plain inventory-skew maker, on the same held-out market, side by side.

``compare`` runs both makers (same half spread, size, skew, limits, latencies and fees) through
``strategies.backtest.BacktestVenue`` on fresh copies of one source and returns each run's
``PerformanceMetrics`` as plain data: PnL, Sharpe, fills, adverse selection at the metrics' horizons. The
source should be data the models never saw: another synthetic seed, another day. ``proptrade ml backtest``
prints the comparison.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Any

from strategies.backtest import BacktestConfig, BacktestVenue, ConstantLatency, MarketSource
from strategies.interface import Strategy
from strategies.makers import InventorySkewMaker, InventorySkewParams
from strategies.metrics import MidSeries, PerformanceMetrics

from .predictor import Predictor
from .predictor_maker import PredictorMaker, PredictorMakerParams

__all__ = ["compare", "default_config", "run_one", "summary_row"]


def default_config(latency_us: float = 10.0, maker_fee_bps: float = 0.0, taker_fee_bps: float = 0.0) -> BacktestConfig:
    """Equal constant latencies each way and the fees given (the comparison's assumptions, printed with it)."""
    lat = ConstantLatency(int(latency_us * 1000))
    return BacktestConfig(lat, lat, lat, maker_fee_bps=maker_fee_bps, taker_fee_bps=taker_fee_bps)


def run_one(strategy: Strategy, source: MarketSource, config: BacktestConfig) -> dict[str, Any]:
    """One backtest's metrics as plain data (``PerformanceMetrics.as_dict``) plus its quote count."""
    result = BacktestVenue(strategy, source, config).run()
    mids = MidSeries(result.mids["ts_ns"], result.mids["mid"])
    metrics = PerformanceMetrics.compute_metrics(result.fills, result.records, quotes_sent=result.quotes_sent,
                                                 symbol_id=result.symbol_id,
                                                 instrument=result.instruments.get(result.symbol_id),
                                                 mid_series=mids)  # fmt: skip
    return metrics.as_dict()


def compare(
    make_source: Callable[[], MarketSource],
    params: PredictorMakerParams,
    signal: Predictor | None,
    adverse: Predictor | None,
    config: BacktestConfig,
) -> dict[str, dict[str, Any]]:
    """``{"inventory_skew": metrics, "predictor": metrics}`` on two fresh sources from ``make_source``."""
    base_fields = {f.name for f in dataclasses.fields(InventorySkewParams)}
    base = InventorySkewParams(**{k: v for k, v in dataclasses.asdict(params).items() if k in base_fields})
    baseline = InventorySkewMaker(base)
    baseline.book_updates = "all"  # called as often as the predictor maker: they differ by the predictions only
    return {
        "inventory_skew": run_one(baseline, make_source(), config),
        "predictor": run_one(PredictorMaker(params, signal, adverse), make_source(), config),
    }


def summary_row(metrics: dict[str, Any]) -> dict[str, float]:
    """The numbers the comparison table shows: PnL, Sharpe, fills, volume, adverse selection at each horizon
    (bps of mid, volume-weighted: positive is a loss to the maker), max |inventory|."""
    row = {
        "pnl": float(metrics["final_pnl"]),
        "sharpe": float(metrics["sharpe"]),
        "fills": float(metrics["fills"]),
        "volume": float(metrics["volume_lots"]),
        "max_inv": float(metrics["max_abs_inventory"]),
    }
    for stat in metrics["adverse_selection"]:
        row[f"adv_{stat['horizon_s']:g}s_bps"] = float(stat["bps"])
    return row
