"""The backtest venue: queue position is the engine's, latencies decide what a stale quote meets, runs are
deterministic, and the strategy's books equal the engine's."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import numpy.typing as npt

from c_engine import COMMAND_DTYPE, Command, EventType, Side, SymbolConfig, Tif
from strategies.backtest import (
    BacktestConfig,
    BacktestVenue,
    CommandSource,
    ConstantLatency,
    SyntheticSource,
)
from strategies.interface import OrderUpdate, Strategy, Trading
from strategies.makers import InventorySkewMaker, InventorySkewParams

SYMBOL = SymbolConfig("XYZ", tick_size=0.01, lot_size=1)
_BUY, _SELL = int(Side.BUY), int(Side.SELL)
US = 1_000


def _commands(*cmds: Command) -> npt.NDArray[np.void]:
    return np.frombuffer(b"".join(c.pack() for c in cmds), dtype=COMMAND_DTYPE).copy()


def _config(entry_us: int = 0, response_us: int = 0, md_us: int = 0) -> BacktestConfig:
    return BacktestConfig(ConstantLatency(entry_us * US), ConstantLatency(response_us * US),
                          ConstantLatency(md_us * US), maker_fee_bps=0.0, taker_fee_bps=0.0)  # fmt: skip


class Scripted(Strategy):
    """Calls ``act(trading)`` once, on its first book update; records its own order updates."""

    symbols = ("XYZ",)

    def __init__(self, act: Callable[[Trading], object]) -> None:
        self.act = act
        self.acted = False
        self.updates: list[OrderUpdate] = []

    def on_book(self, trading: Trading, symbol_id: int) -> None:
        if not self.acted:
            self.acted = True
            self.act(trading)

    def on_order(self, trading: Trading, update: OrderUpdate) -> None:
        self.updates.append(update)

    def filled(self) -> int:
        return sum(u.qty for u in self.updates if u.type == EventType.FILL)


def test_an_order_behind_300_lots_fills_only_after_those_300_lots_trade_or_cancel() -> None:
    ahead = [Command.new(1, 0, _BUY, 100, 1000, ts_ns=t * US) for t in (1, 2, 3)]  # 300 lots at 1000
    later = [
        Command.new(2, 0, _SELL, 150, 1000, tif=Tif.IOC, ts_ns=100 * US),  # 150 of the 300 trade (orders 1, 2)
        Command.cancel(1, 3, ts_ns=110 * US),  # 100 more leave (order 3: the last of the 300)
        Command.new(2, 0, _SELL, 49, 1000, tif=Tif.IOC, ts_ns=120 * US),  # the last 50 ahead less one
        Command.new(2, 0, _SELL, 5, 1000, tif=Tif.IOC, ts_ns=130 * US),  # 1 ahead, then 4 of ours
    ]
    strategy = Scripted(lambda t: t.submit(t.symbol_id("XYZ"), _BUY, 10, 1000))
    venue = BacktestVenue(strategy, CommandSource([SYMBOL], _commands(*ahead, *later)), _config(1, 1, 1))
    result = venue.run()
    fills = [u for u in strategy.updates if u.type == EventType.FILL]
    assert [(f.qty, f.leaves, f.ts_ns) for f in fills] == [(4, 6, 130 * US)]
    assert result.fills[0].price == 1000 and result.fills[0].qty == 4


def _stale_quote_case(entry_us: int) -> int:
    """The strategy sees an ask at 1000 (market data 5 us late) and sends an IOC buy for it; the ask is
    cancelled 30 us after it appeared. Returns how much the strategy bought."""
    market = [
        Command.new(1, 0, _SELL, 10, 1000, ts_ns=10 * US),
        Command.cancel(1, 1, ts_ns=40 * US),
        Command.new(1, 0, _BUY, 1, 900, ts_ns=1000 * US),  # keeps the data running past the cancel
    ]
    strategy = Scripted(lambda t: t.submit(t.symbol_id("XYZ"), _BUY, 10, 1000, tif=Tif.IOC))
    BacktestVenue(strategy, CommandSource([SYMBOL], _commands(*market)), _config(entry_us, 5, 5)).run()
    return strategy.filled()


def test_a_quote_sent_on_a_stale_book_fills_when_it_arrives_before_the_cancel() -> None:
    assert _stale_quote_case(entry_us=20) == 10  # seen at 15 us, arrives at 35 us < 40 us


def test_a_quote_sent_on_a_stale_book_misses_when_it_arrives_after_the_cancel() -> None:
    assert _stale_quote_case(entry_us=30) == 0  # arrives at 45 us: the ask left at 40 us


def test_the_strategy_sees_the_book_only_after_the_market_data_delay() -> None:
    seen: list[tuple[int, int | None]] = []

    class Watcher(Strategy):
        symbols = ("XYZ",)

        def on_book(self, trading: Trading, symbol_id: int) -> None:
            bid, _ = trading.book(symbol_id).best()
            seen.append((trading.now_ns(), None if bid is None else bid[0]))

    market = [Command.new(1, 0, _BUY, 5, 990, ts_ns=10 * US), Command.new(1, 0, _BUY, 5, 995, ts_ns=20 * US)]
    BacktestVenue(Watcher(), CommandSource([SYMBOL], _commands(*market)), _config(0, 0, 7)).run()
    assert seen == [(17 * US, 990), (27 * US, 995)]


def _skew_run(seed: int) -> tuple[bytes, list[tuple[int, ...]]]:
    params = InventorySkewParams("SYN", half_spread=0.02, size=5, max_position=50, quote_interval_s=0.005, skew=0.002)
    venue = BacktestVenue(InventorySkewMaker(params), SyntheticSource(20_000, seed=seed), _config(30, 30, 30))
    result = venue.run()
    return result.records.tobytes(), [tuple(f) for f in result.fills]


def test_the_same_data_strategy_and_seed_give_identical_fills_and_pnl() -> None:
    assert _skew_run(4) == _skew_run(4)
    assert _skew_run(4) != _skew_run(5)


def test_the_strategy_books_equal_the_engine_position_and_cash_at_the_end() -> None:
    params = InventorySkewParams("SYN", half_spread=0.01, size=3, max_position=30, quote_interval_s=0.002, skew=0.002)
    venue = BacktestVenue(InventorySkewMaker(params), SyntheticSource(20_000, seed=9), _config(10, 10, 10))
    result = venue.run()
    assert len(result.fills) > 10
    engine_pos = venue.engine.position(venue.client_id, 0)
    state = venue.accounting.state(venue.client_id, 0)
    assert (state.position, state.cash_ticks) == (engine_pos.position, engine_pos.cash)
    assert engine_pos.open_orders == 0  # the run ends with everything cancelled
    assert abs(state.position) <= 30


def test_a_backtest_config_refuses_a_strategy_client_id_among_the_market_ids() -> None:
    import pytest

    with pytest.raises(ValueError, match="client id"):
        BacktestConfig(ConstantLatency(0), ConstantLatency(0), ConstantLatency(0), 0.0, 0.0, client_id=5)


def _book_calls(book_updates: str) -> list[int]:
    """The times on_book is called for a bid at 990, then a deeper bid at 980, then a better one at 995."""
    calls: list[int] = []

    class Watcher(Strategy):
        symbols = ("XYZ",)

        def on_book(self, trading: Trading, symbol_id: int) -> None:
            calls.append(trading.now_ns())

    Watcher.book_updates = book_updates
    market = [Command.new(1, 0, _BUY, 5, 990, ts_ns=10 * US), Command.new(1, 0, _BUY, 5, 980, ts_ns=20 * US),
              Command.new(1, 0, _BUY, 5, 995, ts_ns=30 * US)]  # fmt: skip
    BacktestVenue(Watcher(), CommandSource([SYMBOL], _commands(*market)), _config(0, 0, 1)).run()
    return calls


def test_a_top_of_book_strategy_is_not_called_for_a_deeper_level_but_sees_it_in_its_book() -> None:
    assert _book_calls("top") == [11 * US, 31 * US]


def test_a_strategy_that_wants_every_change_is_called_for_the_deeper_level_too() -> None:
    assert _book_calls("all") == [11 * US, 21 * US, 31 * US]
