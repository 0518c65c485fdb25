"""Accounting: exact against the engine's own position and cash, idempotent on fill ids, and equal to a naive
recompute for any sequence of fills."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from c_engine import Engine, Liquidity, Side, SymbolConfig
from strategies.accounting import Accounting, Fill, Instrument, PositionState

_BUY, _SELL = int(Side.BUY), int(Side.SELL)
EQUITY = Instrument("XYZ", tick_size=0.01, lot_size=1)


def _fill(side: int, price: int, qty: int, trade_id: int, maker: bool = True) -> Fill:
    liquidity = int(Liquidity.MAKER if maker else Liquidity.TAKER)
    return Fill(7, 0, side, price, qty, liquidity, trade_id, 100 + trade_id)


def test_a_round_trip_realises_the_price_difference_times_the_tick_value() -> None:
    books = Accounting({0: EQUITY})
    books.apply(_fill(_BUY, 10_000, 5, 1))
    books.apply(_fill(_SELL, 10_020, 5, 2))
    state = books.state(7, 0)
    assert state.position == 0 and state.avg_cost == 0.0
    assert state.realised == pytest.approx(20 * 5 * 0.01)
    assert state.cash_ticks == 20 * 5


def test_adding_to_a_position_moves_the_average_cost_to_the_weighted_mean() -> None:
    books = Accounting({0: EQUITY})
    books.apply(_fill(_SELL, 100, 2, 1))
    books.apply(_fill(_SELL, 103, 1, 2))
    state = books.state(7, 0)
    assert state.position == -3 and state.avg_cost == pytest.approx(101.0)
    assert state.unrealised(99.0) == pytest.approx(3 * 2 * 0.01)


def test_a_fill_through_flat_realises_the_closed_part_and_opens_the_rest_at_its_price() -> None:
    books = Accounting({0: EQUITY})
    books.apply(_fill(_BUY, 100, 2, 1))
    books.apply(_fill(_SELL, 110, 5, 2))
    state = books.state(7, 0)
    assert state.position == -3 and state.avg_cost == 110.0
    assert state.realised == pytest.approx(10 * 2 * 0.01)


def test_a_fill_booked_twice_is_counted_once() -> None:
    books = Accounting({0: EQUITY})
    fill = _fill(_BUY, 100, 2, 1)
    assert books.apply(fill) is True
    assert books.apply(fill) is False
    assert books.position(7, 0) == 2


def test_maker_rebates_and_taker_fees_are_basis_points_of_notional() -> None:
    inst = Instrument("BTCUSDT", tick_size=0.1, lot_size=0.001, currency="USDT", maker_fee_bps=-0.5, taker_fee_bps=4)
    books = Accounting({0: inst})
    books.apply(_fill(_BUY, 600_000, 1000, 1, maker=True))  # 1 BTC at 60,000
    books.apply(_fill(_SELL, 600_000, 1000, 2, maker=False))
    assert books.state(7, 0).fees == pytest.approx(60_000 * (-0.5 + 4) / 1e4)


def test_an_es_style_future_is_worth_fifty_dollars_a_point() -> None:
    es = Instrument("ES", tick_size=0.25, lot_size=1, multiplier=50)
    assert es.tick_lot_value == 12.5
    books = Accounting({0: es})
    books.apply(_fill(_BUY, 4 * 5000, 2, 1))  # 2 contracts at 5000.00
    books.apply(_fill(_SELL, 4 * 5000 + 6, 2, 2))  # +1.50 points
    assert books.state(7, 0).realised == pytest.approx(1.5 * 50 * 2)


def test_an_instrument_with_a_zero_or_infinite_size_is_refused() -> None:
    with pytest.raises(ValueError, match="tick_size"):
        Instrument("X", tick_size=0.0, lot_size=1)
    with pytest.raises(ValueError, match="multiplier"):
        Instrument("X", tick_size=1, lot_size=1, multiplier=float("inf"))


def test_books_kept_from_engine_fills_equal_the_engine_position_and_cash() -> None:
    engine = Engine()
    config = SymbolConfig("XYZ", tick_size=0.01)
    sid = engine.add_symbol(config)
    books = Accounting({sid: Instrument.from_symbol(config)})
    rng = random.Random(5)
    for i in range(3000):
        client = rng.randrange(4)
        side = rng.choice(("buy", "sell"))
        price = round(rng.uniform(99.5, 100.5), 2)
        events = engine.submit(client, "XYZ", side, rng.randrange(1, 20), price, tif=rng.choice(("GTC", "IOC")),
                               ts_ns=i)  # fmt: skip
        books.apply_events(events)
        if i % 50 == 0:
            engine.mass_cancel(rng.randrange(4), ts_ns=i)
    assert sum(state.fills for state in books.positions.values()) > 500
    for client in range(4):
        engine_pos = engine.position(client, sid)
        state = books.state(client, sid)
        assert (state.position, state.cash_ticks) == (engine_pos.position, engine_pos.cash)
        mark = 10_000.0
        assert state.realised + state.unrealised(mark) == pytest.approx(state.gross_ticks(mark) * 0.01, abs=1e-6)


_fills = st.lists(
    st.tuples(st.sampled_from((_BUY, _SELL)), st.integers(1, 1000), st.integers(1, 50), st.booleans()),
    min_size=1,
    max_size=60,
)


@settings(max_examples=200, deadline=None)
@given(_fills, st.floats(1, 1000, allow_nan=False))
def test_realised_plus_unrealised_equals_cash_plus_marked_position_for_any_fills(
    fills: list[tuple[int, int, int, bool]], mark: float
) -> None:
    inst = Instrument("X", tick_size=0.5, lot_size=2, multiplier=3, maker_fee_bps=-1, taker_fee_bps=3)
    state = PositionState(inst)
    position = cash = 0
    fees = 0.0
    for side, price, qty, maker in fills:
        state.apply(side, price, qty, maker)
        sign = 1 if side == _BUY else -1
        position += sign * qty
        cash -= sign * price * qty
        fees += price * qty * inst.tick_lot_value * (-1 if maker else 3) / 1e4
    assert (state.position, state.cash_ticks) == (position, cash)
    assert state.fees == pytest.approx(fees)
    total = (cash + position * mark) * inst.tick_lot_value
    assert state.realised + state.unrealised(mark) == pytest.approx(total, rel=1e-9, abs=1e-6)
    assert state.net(mark) == pytest.approx(total - fees, rel=1e-9, abs=1e-6)
