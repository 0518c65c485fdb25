"""A strategy in a LOBSTER replay: its queue place is exact, a recorded execution that meets its better-priced
quote fills it and still trades the recorded order its recorded size, and every recorded row is reproduced on
the recorded orders (the sample, and the full GOOG day)."""

from __future__ import annotations

from pathlib import Path

import pytest

from c_engine import EventType, Side
from strategies.backtest import BacktestConfig, BacktestVenue, ConstantLatency
from strategies.backtest.lobster_source import LobsterSource
from strategies.interface import OrderUpdate, Strategy, Trading
from strategies.makers import InventorySkewMaker, InventorySkewParams

LOBSTER = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "lobster"
AAPL = ("AAPL_2012-06-21_34200000_57600000_message_10.csv", "AAPL_2012-06-21_34200000_57600000_orderbook_10.csv")
GOOG = ("GOOG_2012-06-21_34200000_57600000_message_10.csv.gz", "GOOG_2012-06-21_34200000_57600000_orderbook_10.csv.gz")
_BUY = int(Side.BUY)
S = 1_000_000_000


def _config(latency_ns: int = 0) -> BacktestConfig:
    lat = ConstantLatency(latency_ns)
    return BacktestConfig(lat, lat, lat, maker_fee_bps=0.0, taker_fee_bps=0.0)


def _write(tmp_path: Path, messages: list[str], rows: list[list[int]]) -> tuple[Path, Path]:
    m, b = tmp_path / "XYZ_2012-06-21_0_0_message_2.csv", tmp_path / "XYZ_2012-06-21_0_0_orderbook_2.csv"
    m.write_text("".join(line + "\n" for line in messages))
    b.write_text("".join(",".join(map(str, row)) + "\n" for row in rows))
    return m, b


class OneBid(Strategy):
    """Bids ``qty`` at ``price`` ticks on the first book it sees; records its updates."""

    symbols = ("XYZ",)

    def __init__(self, price: int, qty: int) -> None:
        self.price, self.qty = price, qty
        self.updates: list[OrderUpdate] = []

    def on_book(self, trading: Trading, symbol_id: int) -> None:
        if not self.updates and not len(trading.orders):
            trading.submit(symbol_id, _BUY, self.qty, self.price)

    def on_order(self, trading: Trading, update: OrderUpdate) -> None:
        self.updates.append(update)


def _book(bid1: int, bid1_qty: int) -> list[int]:
    # LOBSTER units (tick 100): ask 101.00 x 100, bid1, ask2 102.00 x 100, bid 98.00 x 100
    return [1010000, 100, bid1, bid1_qty, 1020000, 100, 980000, 100]


def test_a_recorded_execution_meeting_a_better_priced_quote_fills_it_and_still_trades_the_recorded_size(
    tmp_path: Path,
) -> None:
    messages = [
        "34200.0,1,1,100,1010000,-1",  # seeded from row 1
        "34201.0,4,777,30,990000,1",  # 30 of the bid at 99.00 execute (a seed order: unknown id)
        "34202.0,1,2,5,970000,1",  # something later, so the data runs past the execution
    ]
    rows = [_book(990000, 100), _book(990000, 70), _book(990000, 70)]
    strategy = OneBid(price=10000, qty=10)  # 100.00: better than the 99.00 bid
    source = LobsterSource(*_write(tmp_path, messages, rows))
    result = BacktestVenue(strategy, source, _config()).run()
    fills = [u for u in strategy.updates if u.type == EventType.FILL]
    assert [(f.price, f.qty) for f in fills] == [(10000, 10)]
    assert result.fills[0].ts_ns == 34201 * S
    report = source.report
    assert report is not None and report.mismatches == 0 and not report.anomalies


def test_a_quote_joins_the_back_of_its_level_and_fills_only_after_the_recorded_orders_ahead(tmp_path: Path) -> None:
    messages = [
        "34200.0,1,1,100,1010000,-1",
        "34201.0,1,2,20,990000,1",  # a recorded order joins 99.00 behind the strategy's
        "34202.0,4,777,60,990000,1",  # 60 of the 100 ahead execute: nothing for the strategy
        "34203.0,4,777,40,990000,1",  # the last 40 ahead: still nothing
        "34204.0,4,2,15,990000,1",  # the order behind trades: the strategy's 10 ahead of it go first
        "34205.0,1,3,5,970000,1",
    ]
    rows = [_book(990000, 100), _book(990000, 120), _book(990000, 60), _book(990000, 20), _book(990000, 5),
            _book(990000, 5)]  # fmt: skip
    strategy = OneBid(price=9900, qty=10)  # 99.00: behind the 100 there
    source = LobsterSource(*_write(tmp_path, messages, rows))
    BacktestVenue(strategy, source, _config()).run()
    fills = [(u.qty, u.leaves, u.ts_ns) for u in strategy.updates if u.type == EventType.FILL]
    assert fills == [(10, 0, 34204 * S)]
    report = source.report
    assert report is not None and report.mismatches == 0 and not report.anomalies


def _maker(symbol: str, size: float) -> InventorySkewMaker:
    return InventorySkewMaker(InventorySkewParams(symbol, half_spread=0.02, size=size, max_position=10 * size,
                                                  quote_interval_s=0.1, skew=0.00002))  # fmt: skip


def _replay_with_maker(files: tuple[str, str]) -> tuple[LobsterSource, BacktestVenue, int]:
    paths = [LOBSTER / f for f in files]
    if not all(p.exists() for p in paths):
        pytest.skip(f"LOBSTER files not found in {LOBSTER} (the shared data folder beside the project)")
    source = LobsterSource(*paths)
    venue = BacktestVenue(_maker(source.symbol, 100), source, _config(100_000))
    result = venue.run()
    return source, venue, len(result.fills)


def test_with_a_maker_attached_the_aapl_sample_still_reproduces_every_recorded_row() -> None:
    source, venue, fills = _replay_with_maker(AAPL)
    report = source.report
    assert report is not None
    assert (report.rows_compared, report.mismatches, len(report.anomalies)) == (998, 0, 0)
    assert fills > 10
    engine = venue.engine.position(venue.client_id, 0)
    state = venue.accounting.state(venue.client_id, 0)
    assert (state.position, state.cash_ticks) == (engine.position, engine.cash)


def test_with_a_maker_attached_the_full_goog_day_still_reproduces_every_recorded_row() -> None:
    source, venue, fills = _replay_with_maker(GOOG)
    report = source.report
    assert report is not None
    assert (report.rows_compared, report.mismatches, len(report.anomalies)) == (147_915, 0, 0)
    assert fills > 1000


def test_a_recording_of_the_files_replays_exactly_as_the_files_do(tmp_path: Path) -> None:
    from c_engine import record_lobster

    paths = [LOBSTER / f for f in AAPL]
    if not all(p.exists() for p in paths):
        pytest.skip(f"LOBSTER files not found in {LOBSTER} (the shared data folder beside the project)")
    record_lobster(paths[0], paths[1], tmp_path / "aapl.parquet")
    results = []
    for source in (LobsterSource(*paths), LobsterSource(tmp_path / "aapl.parquet")):
        result = BacktestVenue(_maker(source.symbol, 100), source, _config(100_000)).run()
        results.append((source.symbol, [tuple(f) for f in result.fills], result.records.tobytes()))
    assert results[0] == results[1] and results[0][1]
