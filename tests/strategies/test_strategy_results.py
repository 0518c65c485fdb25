"""docs/STRATEGIES.md's results: the script's quick setting reproduces the doc's AAPL table byte for byte, its
runs are the CLI's backtests, and the doc's generated sections and pictures are the script's."""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from strategies.backtest_cli import build_parser, run_backtest
from strategies.registry import STRATEGIES

ROOT = Path(__file__).resolve().parents[2]
DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"
DOC = ROOT / "docs" / "STRATEGIES.md"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _load_script() -> ModuleType:
    spec = importlib.util.spec_from_file_location("strategy_results", ROOT / "scripts" / "strategy_results.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # its dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


script = _load_script()


def _need_aapl() -> None:
    if not (DATA / "lobster" / script.AAPL[0]).exists():
        pytest.skip(f"the LOBSTER AAPL sample is not in {DATA / 'lobster'} (shared data absent)")


@pytest.fixture(scope="module")
def quick() -> list[Any]:
    """The quick setting: the AAPL sample (whole, as in the full setting) and a short synthetic flow."""
    _need_aapl()
    return [script.run_dataset(ds, log=False) for ds in script.QUICK]


def test_the_docs_aapl_table_is_what_the_script_writes_now(quick: list[Any]) -> None:
    aapl = next(r for r in quick if r.dataset.key == "aapl")
    rendered = script.render_dataset(aapl, "img/strategies")
    assert rendered in script.section(DOC.read_text(), "results")


def test_every_strategy_traded_on_the_aapl_sample(quick: list[Any]) -> None:
    aapl = next(r for r in quick if r.dataset.key == "aapl")
    assert [run.strategy for run in aapl.runs] == list(script.ORDER)
    assert all(run.error is None and run.metrics["fills"] > 0 for run in aapl.runs)


def test_a_run_of_the_script_is_the_clis_backtest_of_its_command_line(quick: list[Any]) -> None:
    run = next(r for r in quick if r.dataset.key == "aapl").runs[1]
    summary = run_backtest(build_parser().parse_args(run.argv))
    assert json.dumps(summary["metrics"]) == json.dumps(run.metrics)  # NaN as NaN on both sides
    assert summary["replay"] == run.replay


def test_the_docs_parameter_table_is_the_registrys() -> None:
    assert script.section(DOC.read_text(), "parameters") == script.parameter_table()


def test_the_parameter_table_has_every_field_of_the_five_makers() -> None:
    table = script.parameter_table()
    assert set(script.ORDER) <= set(STRATEGIES)
    for name in script.ORDER:
        for field in script.parameter_fields(name):
            assert f"| `{field.name}` |" in table


def test_the_figure_of_a_data_set_is_a_png(quick: list[Any], tmp_path: Path) -> None:
    synthetic = next(r for r in quick if r.dataset.key == "synthetic")
    written = script.write_plots(synthetic, tmp_path)
    assert [p.name for p in written] == ["synthetic.png"]
    assert written[0].read_bytes().startswith(PNG_SIGNATURE)


def test_every_picture_the_doc_shows_is_committed_beside_it() -> None:
    pictures = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", DOC.read_text())
    assert len(pictures) >= 8
    for picture in pictures:
        path = DOC.parent / picture
        assert path.is_file(), picture
        assert path.read_bytes().startswith(PNG_SIGNATURE), picture


def test_replace_section_keeps_what_lies_outside_the_markers() -> None:
    text = "a\n<!-- x:begin -->\nold\n<!-- x:end -->\nb\n"
    assert script.replace_section(text, "x", "new\n") == "a\n<!-- x:begin -->\nnew\n<!-- x:end -->\nb\n"
    assert script.section(script.replace_section(text, "x", "new"), "x") == "new\n"
    with pytest.raises(ValueError, match="no <!-- y:begin -->"):
        script.replace_section(text, "y", "z")
