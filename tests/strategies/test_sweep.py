"""Parameter sweeps: grids parsed and checked before running, the same table in process, on a pool and on Ray."""

from __future__ import annotations

import argparse
import csv
import io
import math
from pathlib import Path
from typing import Any

import pytest

from strategies.backtest_cli import main as backtest_main
from strategies.backtest_cli import run_backtest
from strategies.sweep import GridError, SweepError, SweepTable, load_grid, parse_grid, run_sweep

#: a small sweep: 4 points of 3,000 synthetic messages each
SMALL_GRID = """
[source]
kind = "synthetic"
messages = 3000
seed = 1

[backtest]
maker_fee_bps = -0.2
md_latency_us = 50

[strategy]
name = "inventory_skew"
size = 2
quote_interval_s = 0.01

[sweep]
half_spread = [0.01, 0.03]
"source.seed" = [1, 2]
"""


def _same(a: Any, b: Any) -> bool:
    """Equal, NaN equal to NaN (a metric that could not be measured is NaN in both)."""
    return bool(a == b or (isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b)))


def _grid(text: str, tmp_path: Path) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


@pytest.fixture(scope="module")
def small_grid(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _grid(SMALL_GRID, tmp_path_factory.mktemp("sweep"))


@pytest.fixture(scope="module")
def pool_table(small_grid: Path) -> SweepTable:
    return run_sweep(load_grid(small_grid), workers=2)


def test_points_are_the_cartesian_product_with_the_last_key_fastest(small_grid: Path) -> None:
    points = load_grid(small_grid).points()
    assert [p.values for p in points] == [
        (("half_spread", 0.01), ("source.seed", 1)),
        (("half_spread", 0.01), ("source.seed", 2)),
        (("half_spread", 0.03), ("source.seed", 1)),
        (("half_spread", 0.03), ("source.seed", 2)),
    ]
    assert [(p.args.param_half_spread, p.args.seed) for p in points] == [(0.01, 1), (0.01, 2), (0.03, 1), (0.03, 2)]


def test_fixed_fields_land_in_the_cli_namespace_as_the_cli_would_parse_them(small_grid: Path) -> None:
    args = load_grid(small_grid).points()[0].args
    assert (args.kind, args.strategy, args.messages) == ("synthetic", "inventory_skew", 3000)
    assert (args.maker_fee_bps, args.md_latency_us, args.entry_latency_us) == (-0.2, 50.0, 100.0)
    assert (args.param_size, args.param_quote_interval_s, args.param_skew) == (2.0, 0.01, None)


def test_a_parameter_the_strategy_does_not_have_is_refused_before_anything_runs() -> None:
    grid = {"source": {"kind": "synthetic"}, "strategy": {"name": "symmetric"}, "sweep": {"skew": [0.1]}}
    with pytest.raises(GridError, match="no field 'skew'"):
        parse_grid(grid)


def test_a_value_the_registry_refuses_names_its_point() -> None:
    grid = {"source": {"kind": "synthetic"}, "strategy": {"name": "symmetric"}, "sweep": {"size": [1, 0]}}
    with pytest.raises(GridError, match=r"point 1 \(size=0.0\): size and max_position must be positive"):
        parse_grid(grid)


def test_an_unknown_source_field_is_refused_with_the_fields_there_are() -> None:
    grid = {"source": {"kind": "synthetic", "messagez": 10}, "strategy": {"name": "glft"}}
    with pytest.raises(GridError, match="no source field 'messagez'.*mean_gap_us, messages, seed"):
        parse_grid(grid)


def test_a_value_of_the_wrong_type_is_refused() -> None:
    grid = {"source": {"kind": "synthetic", "messages": 1.5}, "strategy": {"name": "glft"}}
    with pytest.raises(GridError, match=r"\[source\] messages: argument --messages: '1.5' is not a number of mes"):
        parse_grid(grid)


def test_a_value_outside_the_flags_range_is_refused_as_the_command_line_refuses_it() -> None:
    grid = {"source": {"kind": "synthetic"}, "strategy": {"name": "glft"}, "sweep": {"md_latency_us": [1, -1]}}
    with pytest.raises(GridError, match=r"md_latency_us\[1\]: argument --md-latency-us: '-1' is not microseconds"):
        parse_grid(grid)


def test_a_recorded_source_needs_its_files() -> None:
    with pytest.raises(GridError, match="the lobster source needs message, orderbook"):
        parse_grid({"source": {"kind": "lobster"}, "strategy": {"name": "glft"}})


def test_relative_file_paths_are_relative_to_the_grid_file(tmp_path: Path) -> None:
    text = '[source]\nkind = "binance"\ncapture = "data/x.gz"\nqueue = "optimistic"\n[strategy]\nname = "adaptive"\n'
    args = load_grid(_grid(text, tmp_path)).points()[0].args
    assert (args.capture, args.queue) == (str(tmp_path / "data" / "x.gz"), "optimistic")


def test_a_point_whose_backtest_fails_is_named(tmp_path: Path) -> None:
    text = '[source]\nkind = "lobster"\nmessage = "m.csv"\norderbook = "o.csv"\n[strategy]\nname = "symmetric"\n'
    with pytest.raises(SweepError, match=r"point 0 \(the only point\) failed: FileNotFoundError"):
        run_sweep(load_grid(_grid(text, tmp_path)), workers=0)


def test_a_row_is_what_the_cli_backtest_of_that_point_gives(small_grid: Path, pool_table: SweepTable) -> None:
    point = load_grid(small_grid).points()[3]
    summary = run_backtest(argparse.Namespace(**vars(point.args)))
    row = dict(zip(pool_table.columns, pool_table.rows[3], strict=True))
    assert (row["point"], row["half_spread"], row["source.seed"]) == (3, 0.03, 2)
    assert row["messages"] == summary["messages"] == 3000
    metrics = summary["metrics"]
    for key in ("fills", "quotes_sent", "final_pnl", "final_position", "sharpe"):
        assert _same(row[key], metrics[key])
    assert _same(row["drawdown.max_currency"], metrics["drawdown"]["max_currency"])
    assert _same(row["realised_spread[1s].ticks"], metrics["realised_spread"][0]["ticks"])
    assert row["fills"] > 0 and not math.isnan(row["realised_spread[1s].ticks"])


def test_the_pool_gives_the_table_of_a_run_in_process(small_grid: Path, pool_table: SweepTable) -> None:
    assert run_sweep(load_grid(small_grid), workers=0).to_csv() == pool_table.to_csv()
    assert any(row[pool_table.columns.index("fills")] > 0 for row in pool_table.rows)  # the sweep traded


def test_a_local_ray_instance_gives_the_table_of_the_process_pool(small_grid: Path, pool_table: SweepTable) -> None:
    try:
        import ray  # noqa: F401
    except ImportError:
        pytest.skip("ray is not installed (an optional extra: pip install '.[ray]')")
    table = run_sweep(load_grid(small_grid), workers=2, ray_address="local")
    assert table.to_csv() == pool_table.to_csv()


def test_the_command_writes_the_csv_and_prints_the_table(
    small_grid: Path, pool_table: SweepTable, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "table.csv"
    assert backtest_main(["sweep", "--grid", str(small_grid), "--workers", "0", "--out", str(out)]) == 0
    text = out.read_text()
    assert text == pool_table.to_csv()
    rows: list[dict[str, Any]] = list(csv.DictReader(io.StringIO(text)))
    assert [r["point"] for r in rows] == ["0", "1", "2", "3"]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].split()[:5] == ["point", "half_spread", "source.seed", "fills", "quotes_sent"]
    assert len(printed) == 5


def test_the_command_refuses_a_bad_grid_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = _grid('[source]\nkind = "tape"\n[strategy]\nname = "glft"\n', tmp_path)
    assert backtest_main(["sweep", "--grid", str(path)]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"proptrade backtest sweep: {path}: [source] kind must be one of synthetic, lobster, binance, "
                   "journal, not 'tape'"]  # fmt: skip
