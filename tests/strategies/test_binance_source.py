"""A strategy in a Binance L2 replay: its order fills only after the book quantity ahead of it has traded, and
the queue models move its place on cancels as each one says; the sample replays with 0 gaps."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from c_engine import EventType, Side
from strategies.backtest import BacktestConfig, BacktestVenue, ConstantLatency
from strategies.backtest.binance_source import BinanceSource
from strategies.interface import OrderUpdate, Strategy, Trading
from strategies.makers import InventorySkewMaker, InventorySkewParams

SAMPLE = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "binance" / "usdm_btcusdt_20240808.gz"
_BUY = int(Side.BUY)
MS = 1_000_000


def _config() -> BacktestConfig:
    zero = ConstantLatency(0)
    return BacktestConfig(zero, zero, zero, maker_fee_bps=0.0, taker_fee_bps=0.0)


class Capture:
    """Writes a capture file line by line: a snapshot, then diffs and trades with consecutive update ids."""

    def __init__(self, bid_qty: str) -> None:
        self.lines: list[str] = []
        self.update_id = 100
        self.first = True
        self.t = 1000
        snap = {"lastUpdateId": self.update_id, "E": self.t, "T": self.t, "bids": [["100.0", bid_qty]],
                "asks": [["101.0", "1.000"]]}  # fmt: skip
        self._line(snap)

    def _line(self, obj: dict[str, object]) -> None:
        self.lines.append(f"{self.t * MS} {json.dumps(obj)}")

    def bid(self, qty: str) -> None:
        """A diff setting the 100.0 bid to ``qty``."""
        self.t += 1000
        # The first diff spans the snapshot's id (U <= lastUpdateId <= u); each later one follows on (pu = u).
        previous = self.update_id
        first = previous if self.first else previous + 1
        self.first, self.update_id = False, previous + 1
        data = {"e": "depthUpdate", "E": self.t, "T": self.t, "s": "BTCUSDT", "U": first, "u": self.update_id,
                "pu": previous, "b": [["100.0", qty]], "a": []}  # fmt: skip
        self._line({"stream": "btcusdt@depth@0ms", "data": data})

    def sell(self, qty: str) -> None:
        """A trade: a seller takes the 100.0 bid."""
        self.t += 1000
        data = {"e": "trade", "E": self.t, "T": self.t, "s": "BTCUSDT", "t": self.t, "p": "100.0", "q": qty,
                "X": "MARKET", "m": True}  # fmt: skip
        self._line({"stream": "btcusdt@trade", "data": data})

    def write(self, path: Path) -> Path:
        path.write_text("\n".join(self.lines) + "\n")
        return path


class OneBid(Strategy):
    symbols = ("BTCUSDT",)

    def __init__(self) -> None:
        self.updates: list[OrderUpdate] = []

    def on_book(self, trading: Trading, symbol_id: int) -> None:
        if not self.updates and not len(trading.orders):
            trading.submit(symbol_id, _BUY, 10, 1000)  # 0.010 at 100.0: behind the book's quantity

    def on_order(self, trading: Trading, update: OrderUpdate) -> None:
        self.updates.append(update)

    def filled(self) -> list[tuple[int, int]]:
        return [(u.qty, u.ts_ns // MS) for u in self.updates if u.type == EventType.FILL]


def _run(tmp_path: Path, capture: Capture, queue: str, impact: str = "extend") -> list[tuple[int, int]]:
    strategy = OneBid()
    source = BinanceSource(capture.write(tmp_path / f"{queue.replace(':', '_')}.txt"), queue=queue, impact=impact)
    BacktestVenue(strategy, source, _config()).run()
    assert source.counts["gaps"] == 0
    return strategy.filled()


def _trades_case() -> Capture:
    capture = Capture("0.300")
    capture.sell("0.200")
    capture.bid("0.100")
    capture.sell("0.100")  # the last 100 ahead: nothing for the strategy yet
    capture.bid("0")
    capture.sell("0.004")  # the next seller reaches the strategy's 10
    return capture


def test_an_order_behind_300_lots_fills_only_after_those_300_lots_trade(tmp_path: Path) -> None:
    # "extend": the aggressor that passed the order's place is taken to have filled all of it
    assert _run(tmp_path, _trades_case(), "risk_averse") == [(10, 6000)]


def test_with_displace_a_trade_fills_the_order_only_by_its_own_size(tmp_path: Path) -> None:
    assert _run(tmp_path, _trades_case(), "risk_averse", impact="displace") == [(4, 6000)]


def _cancels_case() -> Capture:
    capture = Capture("0.300")  # 300 ahead of the strategy
    capture.bid("0.500")  # 200 join behind it
    capture.bid("0.300")  # 200 cancelled: from behind (risk averse), from ahead (optimistic), or split
    capture.sell("0.150")  # 150 trade
    capture.bid("0.150")
    capture.sell("0.040")  # 40 more trade
    return capture


def test_risk_averse_cancels_come_from_behind_so_the_order_keeps_300_ahead(tmp_path: Path) -> None:
    assert _run(tmp_path, _cancels_case(), "risk_averse") == []  # 150 + 40 traded < 300 ahead


def test_optimistic_cancels_come_from_ahead_so_the_first_trade_reaches_the_order(tmp_path: Path) -> None:
    assert _run(tmp_path, _cancels_case(), "optimistic") == [(10, 4000)]  # 100 ahead < 150 traded


def test_a_proportional_split_puts_120_of_the_200_cancelled_ahead_of_the_order(tmp_path: Path) -> None:
    # 300 ahead, 200 behind: 300/500 of the cancels are ahead, 120; 180 stay ahead: 150 then 40 traded pass it
    assert _run(tmp_path, _cancels_case(), "power:1") == [(10, 6000)]


def test_a_higher_power_puts_more_of_the_cancels_on_the_larger_side(tmp_path: Path) -> None:
    # power 3: 300^3 / (300^3 + 200^3) = 0.77 of 200: 154 ahead, 146 stay: the first trade (150) passes it
    assert _run(tmp_path, _cancels_case(), "power:3") == [(10, 4000)]


def test_an_unknown_queue_model_is_refused(tmp_path: Path) -> None:
    path = Capture("0.300").write(tmp_path / "c.txt")
    with pytest.raises(ValueError, match="queue model"):
        BinanceSource(path, queue="power:-1")


def test_the_sample_replays_with_a_maker_attached_with_no_gap_and_books_equal_to_the_engine() -> None:
    if not SAMPLE.exists():
        pytest.skip(f"Binance sample not found at {SAMPLE} (the shared data folder beside the project)")
    source = BinanceSource(SAMPLE)
    maker = InventorySkewMaker(InventorySkewParams("BTCUSDT", half_spread=0.5, size=0.01, max_position=0.2, skew=2,
                                                   quote_interval_s=0.1))  # fmt: skip
    venue = BacktestVenue(maker, source, BacktestConfig(*(ConstantLatency(100_000),) * 3, 0.0, 0.0))
    result = venue.run()
    assert source.counts["gaps"] == 0 and source.counts["diffs"] == 6547
    assert source.counts["trades_off_price"] == 0
    assert len(result.fills) > 100
    engine = venue.engine.position(venue.client_id, 0)
    state = venue.accounting.state(venue.client_id, 0)
    assert (state.position, state.cash_ticks) == (engine.position, engine.cash)


def test_a_recording_of_the_capture_replays_exactly_as_the_capture_does(tmp_path: Path) -> None:
    from c_engine import record_binance

    capture = _cancels_case().write(tmp_path / "capture.txt")
    record_binance(capture, tmp_path / "capture.parquet", symbol="BTCUSDT", tick=0.1, lot=0.001)
    fills = []
    for path in (capture, tmp_path / "capture.parquet"):
        strategy = OneBid()
        BacktestVenue(strategy, BinanceSource(path, queue="power:1"), _config()).run()
        fills.append(strategy.filled())
    assert fills[0] == fills[1] == [(10, 6000)]
