"""Each maker's quoting formula, and what QuotingStrategy does for all of them (fair value without its own
quotes, limits that count orders in flight, the requote interval)."""

from __future__ import annotations

import math

import pytest

from c_engine import Command, Flag, Op, Side, Tif, Units
from hotpath import L2Book
from strategies.avellaneda import ASParams, GLFTParams, as_quotes, glft_ask_half_spread, glft_bid_half_spread
from strategies.core import TradingCore
from strategies.makers import (
    AdaptiveParams,
    AdaptiveSpreadMaker,
    AvellanedaStoikovMaker,
    AvellanedaStoikovParams,
    EwmaVolatility,
    GlftMaker,
    GlftParams,
    InventorySkewMaker,
    InventorySkewParams,
    MakerParams,
    Quotes,
    QuotingStrategy,
    SymmetricMaker,
)

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
TICK = 0.01


def both(q: Quotes) -> tuple[float, float]:
    """The bid and ask of quotes that have both."""
    assert q.bid is not None and q.ask is not None
    return q.bid, q.ask


class FakeTrading(TradingCore):
    """The trading interface with a hand-set book and clock; commands are collected, not sent."""

    def __init__(self, strategy: QuotingStrategy) -> None:
        self.t = 0
        super().__init__(strategy, 100, {0: ("XYZ", Units(TICK, 1))}, lambda: self.t)
        self.l2 = L2Book()
        self.sent: list[Command] = []
        strategy.on_start(self)

    def book(self, symbol_id: int) -> L2Book:
        return self.l2

    def _send(self, cmd: Command) -> None:
        self.sent.append(cmd)

    def set_book(self, bid: int, ask: int, qty: int = 10) -> None:
        self.l2.replace([(bid, qty, 1)], [(ask, qty, 1)])

    def hold(self, position: int) -> None:
        self.accounting.state(self.client_id, 0).position = position


def test_the_symmetric_maker_quotes_half_spread_either_side_of_fair() -> None:
    maker = SymmetricMaker(MakerParams("XYZ", half_spread=0.03, size=2))
    trading = FakeTrading(maker)
    q = maker.quotes(trading, 1000.5, position=7)
    assert (q.bid, q.ask, q.bid_size, q.ask_size) == pytest.approx((997.5, 1003.5, 2, 2))


def test_the_inventory_skew_maker_moves_both_quotes_against_its_position() -> None:
    params = InventorySkewParams("XYZ", half_spread=0.02, size=10, max_position=100, skew=0.001)
    maker = InventorySkewMaker(params)
    trading = FakeTrading(maker)
    flat, long = maker.quotes(trading, 1000.0, 0), maker.quotes(trading, 1000.0, 40)
    assert (flat.bid, flat.ask) == pytest.approx((998.0, 1002.0))
    assert (long.bid, long.ask) == pytest.approx((998.0 - 4.0, 1002.0 - 4.0))  # 0.001 x 40 = 0.04 = 4 ticks


def test_the_inventory_skew_maker_shrinks_the_side_that_adds_to_its_position() -> None:
    maker = InventorySkewMaker(InventorySkewParams("XYZ", size=10, max_position=100))
    trading = FakeTrading(maker)
    long = maker.quotes(trading, 1000.0, 60)
    assert (long.bid_size, long.ask_size) == (4, 10)
    short_at_limit = maker.quotes(trading, 1000.0, -100)
    assert (short_at_limit.bid_size, short_at_limit.ask_size) == (10, 0)


def test_ewma_volatility_of_one_tick_a_second_is_one_tick_per_root_second() -> None:
    vol = EwmaVolatility(halflife_s=5.0)
    for i in range(400):
        vol.update(i * 1_000_000_000, 1000.0 + (i % 2))
    assert vol.sigma == pytest.approx(1.0, rel=1e-9)


def test_ewma_volatility_ignores_how_often_the_price_is_sampled_within_an_interval() -> None:
    vol = EwmaVolatility(halflife_s=5.0)
    for i in range(400):  # the same one-tick moves a second, with bursts of updates a microsecond apart
        for j in range(5):
            vol.update(i * 1_000_000_000 + j * 1_000, 1000.0 + (i % 2) + (0.5 if j < 4 else 0.0))
    assert vol.sigma == pytest.approx(1.0, rel=1e-6)


def test_the_adaptive_maker_widens_with_volatility_above_its_floor() -> None:
    params = AdaptiveParams("XYZ", half_spread=0.01, vol_halflife_s=5.0, vol_horizon_s=4.0, vol_multiplier=2.0)
    maker = AdaptiveSpreadMaker(params)
    trading = FakeTrading(maker)
    assert maker.quotes(trading, 1000.0, 0).ask == pytest.approx(1001.0)  # no move yet: the floor, 1 tick
    for i in range(400):
        trading.t = i * 1_000_000_000
        maker.observe_fair(trading, 1000.0 + 3 * (i % 2))  # 3 ticks a second: sigma 3
    q = maker.quotes(trading, 1000.0, 0)
    assert (q.bid, q.ask) == pytest.approx((1000.0 - 12.0, 1000.0 + 12.0))  # 2 x 3 x sqrt(4)


def test_the_avellaneda_stoikov_maker_quotes_the_paper_formula_in_price_units() -> None:
    params = AvellanedaStoikovParams("XYZ", size=5, gamma=0.1, k=1.5, sigma=0.02, horizon_s=100.0)
    maker = AvellanedaStoikovMaker(params)
    trading = FakeTrading(maker)
    trading.t = 0
    bid, ask = both(maker.quotes(trading, 10_000.0, position=10))  # q = 2 quote sizes, T - t = 100 s
    expected = as_quotes(100.0, 2.0, 100.0, ASParams(0.1, 0.02, 1.5))
    assert (bid * TICK, ask * TICK) == pytest.approx((expected.bid, expected.ask))
    trading.t = 75 * 1_000_000_000
    bid, ask = both(maker.quotes(trading, 10_000.0, position=10))
    expected = as_quotes(100.0, 2.0, 25.0, ASParams(0.1, 0.02, 1.5))
    assert (bid * TICK, ask * TICK) == pytest.approx((expected.bid, expected.ask))
    trading.t = 125 * 1_000_000_000  # the period restarts: 75 s left
    assert maker.time_left(trading.t) == pytest.approx(75.0)


def test_the_glft_maker_is_symmetric_when_flat_and_skews_down_when_long() -> None:
    params = GlftParams("XYZ", size=1, gamma=0.05, k=20.0, a=2.0, sigma=0.05)
    maker = GlftMaker(params)
    trading = FakeTrading(maker)
    flat_bid, flat_ask = both(maker.quotes(trading, 10_000.0, 0))
    assert 10_000.0 - flat_bid == pytest.approx(flat_ask - 10_000.0)
    long_bid, long_ask = both(maker.quotes(trading, 10_000.0, 3))
    model = GLFTParams(0.05, 0.05, 20.0, 2.0)
    assert long_bid * TICK == pytest.approx(100.0 - glft_bid_half_spread(3, model))
    assert long_ask * TICK == pytest.approx(100.0 + glft_ask_half_spread(3, model))
    assert long_bid < flat_bid and long_ask < flat_ask


def test_fair_value_leaves_out_the_makers_own_quantity() -> None:
    maker = SymmetricMaker(MakerParams("XYZ", half_spread=0.02, size=5))
    trading = FakeTrading(maker)
    trading.set_book(995, 1005)
    maker.requote(trading)
    bid = trading.orders.by_cloid[1]
    bid.order_id, bid.state = 11, bid.state.OPEN
    # The book now shows our 5 lots alone at 998 above the others' 995.
    trading.l2.replace([(998, 5, 1), (995, 10, 1)], [(1005, 10, 1)])
    assert maker.fair(trading) == 1000.0


def test_a_side_whose_fill_could_pass_the_position_limit_is_not_quoted() -> None:
    maker = SymmetricMaker(MakerParams("XYZ", half_spread=0.02, size=5, max_position=12))
    trading = FakeTrading(maker)
    trading.set_book(995, 1005)
    trading.hold(8)  # 8 + 5 > 12: no bid; the ask is fine
    maker.requote(trading)
    assert [(c.side, c.price) for c in trading.sent] == [(_SELL, 1002)]


def test_quotes_round_away_from_fair_and_are_post_only() -> None:
    maker = SymmetricMaker(MakerParams("XYZ", half_spread=0.015, size=1))
    trading = FakeTrading(maker)
    trading.set_book(995, 1006)  # fair 1000.5
    maker.requote(trading)
    assert [(c.side, c.price) for c in trading.sent] == [(_BUY, math.floor(999.0)), (_SELL, math.ceil(1002.0))]
    assert all(c.flags & Flag.POST_ONLY and c.tif == Tif.GTC for c in trading.sent)


def test_a_side_is_requoted_at_most_once_per_quote_interval() -> None:
    maker = SymmetricMaker(MakerParams("XYZ", half_spread=0.02, size=1, quote_interval_s=0.5))
    trading = FakeTrading(maker)
    trading.set_book(995, 1005)
    maker.requote(trading)
    for order in trading.orders.by_cloid.values():
        order.order_id, order.state = order.cloid + 10, order.state.OPEN
    trading.set_book(985, 995)
    trading.t = 100_000_000  # 0.1 s later: held back, a timer set for 0.5 s
    maker.requote(trading)
    assert len(trading.sent) == 2 and trading.timer_ns == 500_000_000
    trading.t = 500_000_000
    maker.requote(trading)
    assert [(c.op, c.price) for c in trading.sent[2:]] == [(Op.MODIFY, 988), (Op.MODIFY, 992)]


def test_after_on_stop_a_maker_sends_no_new_quote() -> None:
    maker = SymmetricMaker(MakerParams("XYZ", half_spread=0.02, size=1))
    trading = FakeTrading(maker)
    trading.set_book(995, 1005)
    maker.on_stop(trading)
    maker.requote(trading)  # as a fill arriving after the final mass cancel would
    assert trading.sent == []
