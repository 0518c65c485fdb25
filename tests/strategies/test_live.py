"""One strategy class, unchanged, in a backtest and live against the launched platform; live, its books equal
the engine's position and cash for its account at the end. Also ``proptrade strategy run`` as a process.

The platform is ``proptrade up`` with two flow agents and no maker, on a unique prefix, stopped at the end with
nothing left behind (as tests/hotpath/test_launcher.py does).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from hotpath import BookView, Client
from hotpath.md_view import control_snapshot
from hotpath.testing import FLOW_ONLY_CONFIG, launched_platform
from strategies.backtest import BacktestConfig, BacktestVenue, ConstantLatency, SyntheticSource
from strategies.live import LiveTrading, run_live
from strategies.makers import InventorySkewMaker, InventorySkewParams


@pytest.fixture
def platform(tmp_path: Path) -> Iterator[str]:
    """A launched platform; yields its prefix; stopped at the end with nothing left behind."""
    with launched_platform(FLOW_ONLY_CONFIG, tmp_path) as run:
        yield run.prefix


def _maker(symbol: str) -> InventorySkewMaker:
    return InventorySkewMaker(InventorySkewParams(symbol, half_spread=0.01, size=5, max_position=100,
                                                  quote_interval_s=0.02, skew=0.0005))  # fmt: skip


def test_the_same_strategy_class_runs_in_a_backtest_and_live_and_its_live_books_equal_the_engine(
    platform: str,
) -> None:
    config = BacktestConfig(ConstantLatency(20_000), ConstantLatency(20_000), ConstantLatency(20_000), 0.0, 0.0)
    result = BacktestVenue(_maker("SYN"), SyntheticSource(5_000, seed=2), config).run()
    assert result.commands_sent > 0 and result.fills

    strategy = _maker("SIM")
    with Client("mm_1", prefix=platform) as client:
        sid = client.symbol_id("SIM")
        view = BookView(client.market_data(), [sid], control_snapshot(client.request, client.symbol_names))
        view.resync()
        trading = LiveTrading(strategy, client, view)
        run_live(trading, threading.Event(), seconds=6.0)
        state = trading.accounting.state(client.client_id, sid)
        engine = client.request("position", client=client.client_id, symbol="SIM")
    assert strategy.quotes_sent > 10
    assert state.fills > 0, "the maker never traded with the flow in 6 s"
    assert (state.position, state.cash_ticks) == (engine["position"], engine["cash"])
    assert engine["open_orders"] == 0


def test_proptrade_strategy_run_attaches_quotes_and_prints_books_equal_to_the_engine(platform: str) -> None:
    run = subprocess.run([sys.executable, "-m", "hotpath.cli", "strategy", "run", "--strategy", "avellaneda",
                          "--account", "mm_1", "--prefix", platform, "--half-spread", "0.02", "--size", "2",
                          "--quote-interval", "0.05", "--gamma", "0.5", "--k", "50", "--seconds", "3"],
                         capture_output=True, text=True, timeout=60)  # fmt: skip
    assert run.returncode == 0, run.stderr
    books = json.loads(run.stdout.strip().splitlines()[-1])
    assert books["quotes_sent"] > 0
    acks = books["latency_us"]["order_to_ack"]
    assert acks["n"] > 0 and 0 < acks["p50"] <= acks["p99"] <= acks["max"]
    with Client("mm_1", prefix=platform) as client:
        engine = client.request("position", client=client.client_id, symbol="SIM")
    assert (books["position"], books["cash_ticks"]) == (engine["position"], engine["cash"])


def test_an_unknown_parameter_for_the_strategy_is_one_line_and_exit_2() -> None:
    run = subprocess.run([sys.executable, "-m", "hotpath.cli", "strategy", "run", "--strategy", "symmetric",
                          "--account", "mm_1", "--endpoint", "ipc://@nowhere", "--gamma", "0.1"],
                         capture_output=True, text=True, timeout=30)  # fmt: skip
    assert run.returncode == 2
    assert run.stderr.strip().count("\n") == 0 and "gamma" in run.stderr
