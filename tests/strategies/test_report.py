"""Backtest reports: written from a small real backtest, the JSON holds the metrics and the PNGs are images."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import matplotlib.image
import pytest

from strategies.backtest import BacktestConfig, BacktestResult, BacktestVenue, ConstantLatency, SyntheticSource
from strategies.interface import Strategy
from strategies.makers import InventorySkewMaker, InventorySkewParams
from strategies.report import write_report

US = 1_000
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _config() -> BacktestConfig:
    return BacktestConfig(ConstantLatency(30 * US), ConstantLatency(30 * US), ConstantLatency(30 * US),
                          maker_fee_bps=-0.5, taker_fee_bps=2.0, record_interval_ns=100_000_000)  # fmt: skip


@pytest.fixture(scope="module")
def skew_run() -> tuple[BacktestResult, int]:
    """20 s of synthetic flow against the inventory-skew maker; the result and the quotes it sent."""
    params = InventorySkewParams("SYN", half_spread=0.02, size=5, max_position=50, quote_interval_s=0.005, skew=0.002)
    maker = InventorySkewMaker(params)
    result = BacktestVenue(maker, SyntheticSource(20_000, seed=4), _config()).run()
    assert len(result.fills) > 10  # the scenario must trade for the report to show anything
    return result, maker.quotes_sent


def _strict_json(text: str) -> Any:
    def refuse(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    return json.loads(text, parse_constant=refuse)


def test_a_report_writes_a_summary_and_four_png_plots(skew_run: tuple[BacktestResult, int], tmp_path: Path) -> None:
    result, quotes = skew_run
    files = write_report(result, tmp_path / "report", title="inventory skew on synthetic", quotes_sent=quotes)
    assert [p.name for p in files] == ["summary.json", "mid_quotes_fills.png", "inventory.png", "pnl.png",
                                       "drawdown.png"]  # fmt: skip
    for png in files[1:]:
        assert png.read_bytes()[:8] == PNG_SIGNATURE
        image = matplotlib.image.imread(png)
        assert image.shape[0] >= 300 and image.shape[1] >= 800 and image.shape[2] in (3, 4)
        assert image.std() > 0  # something was drawn


def test_the_summary_holds_the_metrics_config_source_and_counts(
    skew_run: tuple[BacktestResult, int], tmp_path: Path
) -> None:
    result, quotes = skew_run
    files = write_report(result, tmp_path, title="inventory skew on synthetic", quotes_sent=quotes)
    summary = _strict_json(files.summary.read_text())
    assert list(summary) == ["title", "source", "config", "instrument", "counts", "metrics", "plots"]
    assert summary["title"] == "inventory skew on synthetic" and summary["source"] == "synthetic"
    assert summary["config"] == result.config.describe()
    assert summary["instrument"]["maker_fee_bps"] == -0.5
    counts = summary["counts"]
    assert counts == {"messages": 20_000, "commands_sent": result.commands_sent, "quotes_sent": quotes,
                      "fills": len(result.fills), "records": len(result.records)}  # fmt: skip
    metrics = summary["metrics"]
    assert metrics["fills"] == len(result.fills)
    assert metrics["fill_rate"] == pytest.approx(len(result.fills) / quotes)
    assert metrics["volume_lots"] == sum(f.qty for f in result.fills)
    assert metrics["final_pnl"] == pytest.approx(float(result.records["pnl"][-1]))
    assert metrics["fees"] == pytest.approx(float(result.records["fees"][-1]))
    # the engine's position from the fills equals the strategy's once every fill has reached it
    assert metrics["final_position"] == int(result.records["position"][-1])
    assert [h["horizon_s"] for h in metrics["adverse_selection"]] == [1.0, 5.0, 30.0]
    assert metrics["effective_spread"]["ticks"] > 0  # a post-only maker earns the spread at its fills
    assert summary["plots"] == ["mid_quotes_fills.png", "inventory.png", "pnl.png", "drawdown.png"]


def test_an_unmeasurable_metric_is_null_in_the_summary(skew_run: tuple[BacktestResult, int], tmp_path: Path) -> None:
    result, quotes = skew_run
    files = write_report(result, tmp_path, title="t", quotes_sent=quotes)
    text = files.summary.read_text()
    assert "NaN" not in text and "Infinity" not in text
    # the run covers 20 s of data: no fill has a mid 30 s later
    thirty = _strict_json(text)["metrics"]["adverse_selection"][2]
    assert (thirty["ticks"], thirty["bps"], thirty["fills"]) == (None, None, 0)


def test_the_same_run_gives_the_same_report_bytes(skew_run: tuple[BacktestResult, int], tmp_path: Path) -> None:
    result, quotes = skew_run
    first = write_report(result, tmp_path / "a", title="t", quotes_sent=quotes)
    second = write_report(result, tmp_path / "b", title="t", quotes_sent=quotes)
    for a, b in zip(first, second, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name


def test_a_report_of_a_run_without_fills_or_quote_count_still_writes_every_file(tmp_path: Path) -> None:
    class Idle(Strategy):
        symbols = ("SYN",)

    result = BacktestVenue(Idle(), SyntheticSource(2_000, seed=2), _config()).run()
    assert result.fills == []
    files = write_report(result, tmp_path, title="idle", quotes_sent=None)
    metrics = _strict_json(files.summary.read_text())["metrics"]
    assert (metrics["fills"], metrics["quotes_sent"], metrics["fill_rate"]) == (0, None, None)
    assert metrics["effective_spread"]["ticks"] is None and metrics["final_pnl"] == 0.0
    for png in files[1:]:
        assert png.read_bytes()[:8] == PNG_SIGNATURE
